#!/usr/bin/env python3
"""What each system call costs on a stripefs mount, in RPCs, cold and warm.

Starts its own cluster (1 MDS, OSS_COUNT OSS, the DLM) in a temporary home
with two mounts, A and B. For each system call it runs the call on N files
(or directories) and reads mount B's own RPC counts (the xattr
`user.stripefs.stats`) before and after, then prints one table: the RPCs per
call to the MDS, to the OSTs and to the DLM, by method.

  cold: the first time mount B touches the objects (mount A made them, so B
        has nothing cached and holds no lock on them);
  warm: the same call again on the same objects, right after.

The figures are counts, not timings: they do not depend on the machine's
load, and docs/internals.md quotes them.

Usage: tests/bench/syscall_costs.py [--build DIR] [-n N] [--markdown]
Everything it starts is stopped and unmounted on exit, also on failure.
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stats(mnt):
    """This mount's RPC counts: {(group, method): count}; group mds/ost/dlm."""
    out = collections.Counter()
    raw = os.getxattr(mnt, "user.stripefs.stats").decode()
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        target, method, count = parts
        if target.startswith("ost"):
            target = "ost"
        if target not in ("mds", "ost", "dlm"):
            continue
        if method in ("Connect", "Status", "Ping", "Session", "Replay"):
            continue  # connection upkeep, not the call's cost
        out[(target, method)] += int(count)
    return out


def per_call(before, after, n):
    diff = {k: after[k] - before.get(k, 0) for k in after}
    return {k: v / n for k, v in diff.items() if v > 0}


def fmt(cost, group):
    items = sorted((m, v) for (g, m), v in cost.items() if g == group)
    if not items:
        return "0"
    total = sum(v for _, v in items)
    detail = ", ".join(f"{m} {v:.2g}" for m, v in items)
    return f"{total:.2g} ({detail})"


class Cluster:
    def __init__(self, build, oss):
        self.bin = os.path.join(build, "bin")
        self.tmp = tempfile.mkdtemp(prefix="stripefs-costs-", dir="/var/tmp")
        self.home = os.path.join(self.tmp, "home")
        self.mnt_a = os.path.join(self.tmp, "a")
        self.mnt_b = os.path.join(self.tmp, "b")
        os.makedirs(self.mnt_a)
        os.makedirs(self.mnt_b)
        self.oss = oss

    def cli(self, *args):
        subprocess.run([os.path.join(self.bin, "stripefs"), *args],
                       check=True, stdout=subprocess.DEVNULL)

    def up(self):
        self.cli("cluster", "up", "--home", self.home, "--oss", str(self.oss),
                 "--mount", self.mnt_a, "--bin-dir", self.bin)
        self.cli("mount", "--home", self.home, self.mnt_b)

    def down(self):
        for m in (self.mnt_b, self.mnt_a):
            if os.path.ismount(m):
                subprocess.run(["fusermount3", "-u", m], check=False)
            if os.path.ismount(m):
                subprocess.run(["fusermount3", "-u", "-z", m], check=False)
        if os.path.exists(self.home):
            subprocess.run([os.path.join(self.bin, "stripefs"), "cluster", "down",
                            "--home", self.home], check=False,
                           stdout=subprocess.DEVNULL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_files(d, n, size=0):
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            if size:
                f.write(b"x" * size)


def measure(mnt, n, fn):
    """Runs fn(i) for i in range(n) twice; returns (cold, warm) costs."""
    out = []
    for _ in range(2):
        before = stats(mnt)
        for i in range(n):
            fn(i)
        out.append(per_call(before, stats(mnt), n))
    return out


def calls(a, b, n):
    """(name, setup on mount A, call on mount B given i)."""
    buf4k = b"y" * 4096
    buf1m = b"z" * (1 << 20)

    def in_dir(mnt, name):
        return os.path.join(mnt, name)

    def stat(i):
        os.stat(in_dir(b, f"st/f{i}"))

    def open_close(i):
        os.close(os.open(in_dir(b, f"oc/f{i}"), os.O_RDONLY))

    def read4k(i):
        fd = os.open(in_dir(b, f"rd/f{i}"), os.O_RDONLY)
        os.pread(fd, 4096, 0)
        os.close(fd)

    fds = {}

    def write4k(i):
        if i not in fds:
            fds[i] = os.open(in_dir(b, f"wr/f{i}"), os.O_WRONLY)
        os.pwrite(fds[i], buf4k, 0)

    sizes = collections.Counter()

    def write1m_append(i):
        if ("ap", i) not in fds:
            fds[("ap", i)] = os.open(in_dir(b, f"ap/f{i}"), os.O_WRONLY)
        os.pwrite(fds[("ap", i)], buf1m, sizes[i] << 20)
        sizes[i] += 1

    def fsync(i):
        fd = fds[("ap", i)]
        os.pwrite(fd, buf4k, 0)
        os.fsync(fd)

    created = collections.Counter()

    def create(i):
        k = created[i]
        created[i] += 1
        os.close(os.open(in_dir(b, f"cr/n{i}.{k}"), os.O_CREAT | os.O_WRONLY, 0o644))

    def mkdir(i):
        k = created[("d", i)]
        created[("d", i)] += 1
        os.mkdir(in_dir(b, f"mk/d{i}.{k}"))

    def readdir(i):
        os.listdir(in_dir(b, f"ls/d{i}"))

    def chmod(i):
        os.chmod(in_dir(b, f"ch/f{i}"), 0o600 + (created[("c", i)] % 2) * 0o40)
        created[("c", i)] += 1

    renamed = collections.Counter()

    def rename(i):
        k = renamed[i]
        renamed[i] += 1
        os.rename(in_dir(b, f"rn/f{i}" + (f".{k}" if k else "")),
                  in_dir(b, f"rn/f{i}.{k + 1}"))

    unlinked = collections.Counter()

    def unlink(i):
        k = unlinked[i]
        unlinked[i] += 1
        os.unlink(in_dir(b, f"ul/f{i}" if k == 0 else f"ul/g{i}"))

    def setup_ls():
        for i in range(n):
            make_files(in_dir(a, f"ls/d{i}"), 8)

    def setup_ul():
        make_files(in_dir(a, "ul"), n)
        for i in range(n):
            open(in_dir(a, f"ul/g{i}"), "wb").close()

    return [
        ("stat", lambda: make_files(in_dir(a, "st"), n), stat),
        ("open + close (read-only)", lambda: make_files(in_dir(a, "oc"), n), open_close),
        ("open + read 4 KiB + close", lambda: make_files(in_dir(a, "rd"), n, 8192), read4k),
        ("write 4 KiB in place (cold: + open)", lambda: make_files(in_dir(a, "wr"), n, 8192), write4k),
        ("write 1 MiB past EOF (cold: + open)", lambda: make_files(in_dir(a, "ap"), n), write1m_append),
        ("write 4 KiB + fsync, file open", lambda: None, fsync),
        ("create (open O_CREAT + close)", lambda: os.makedirs(in_dir(a, "cr")), create),
        ("mkdir", lambda: os.makedirs(in_dir(a, "mk")), mkdir),
        ("readdir (8 entries)", setup_ls, readdir),
        ("chmod", lambda: make_files(in_dir(a, "ch"), n), chmod),
        ("rename in one directory", lambda: make_files(in_dir(a, "rn"), n), rename),
        ("unlink", setup_ul, unlink),
    ], fds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.environ.get(
        "STRIPEFS_BUILD", os.path.join(REPO, "build")))
    ap.add_argument("-n", type=int, default=50, help="objects per call (50)")
    ap.add_argument("--oss", type=int, default=4)
    args = ap.parse_args()
    if args.n < 1:
        sys.exit("syscall_costs: -n must be at least 1")
    c = Cluster(args.build, args.oss)
    try:
        c.up()
        rows, fds = calls(c.mnt_a, c.mnt_b, args.n)
        table = []
        for name, setup, fn in rows:
            setup()
            cold, warm = measure(c.mnt_b, args.n, fn)
            table.append((name, cold, warm))
        for fd in fds.values():
            os.close(fd)
    finally:
        c.down()
    print(f"RPCs per call on one mount (N={args.n}; cold: first touch by "
          "this mount, warm: the same call again)\n")
    print("| call | cold: MDS | cold: OST | cold: DLM | warm: MDS | warm: OST | warm: DLM |")
    print("|---|---|---|---|---|---|---|")
    for name, cold, warm in table:
        cells = [fmt(cold, g) for g in ("mds", "ost", "dlm")] + \
                [fmt(warm, g) for g in ("mds", "ost", "dlm")]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
