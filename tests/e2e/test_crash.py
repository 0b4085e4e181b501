"""Crash recovery, the mounts' side (issue 5, must-show 2 and 3): a server
killed with -9 in the middle of a workload on two mounts and started again
(`stripefs server start TARGET`, no --force). The mounts resend what was
cut (same xid; the MDS answers a resent modifying request from its reply
record), re-establish their open files on the new MDS instance, and the
workloads finish with no syscall error.

 (a) MDS: four metadata workers (two per mount), each in a directory of its
     own plus a shared one: create, mkdir, rename, unlink, link, chmod,
     truncate. Afterwards the namespace holds exactly what the acknowledged
     operations made (names, link counts, modes, sizes), nothing else. Two
     files held open across the crash (one unlinked while open) stay
     readable and writable.
 (b) OSS: four writers (two per mount) write patterned blocks striped over
     both OSTs and fsync after each; all fsync'd bytes read back intact on
     both mounts.

Workers are this file run as a script (`--md-worker` / `--writer`), under
`timeout`; each prints one line per acknowledged step and `ERR ...` (exit 1)
at its first failed syscall. Each test has its own cluster (DLM, MDS, two
OSS, two mounts); everything is stopped in teardown, also on failure.
"""

import argparse
import errno
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from conftest import wait_for  # noqa: E402
from helpers import mount_log, two_mount_cluster  # noqa: E402
from rawprocs import BIN_N1, free_port, log_of, procs_fixture  # noqa: E402

CALLBACK_TIMEOUT = 3      # seconds (stripefs-dlm --callback-timeout)
WORKER_MAX_SECONDS = 150  # no worker lives longer than this
MD_ITERATIONS = 40        # per metadata worker
BLOCK = 64 * 1024         # one writer block (= the stripe size used)
WRITER_BLOCKS = 320       # per writer (20 MiB)


# ---------------------------------------------------------------- workers

def md_steps(k, i):
    """The steps of iteration i of metadata worker k, as
    (name, function(own_dir, shared_dir)). Every step's effect is
    recomputed by expected_namespace()."""
    def create(d, s):
        fd = os.open(os.path.join(d, f"f{i}"),
                     os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"x" * (100 + i))
        finally:
            os.close(fd)

    def mkdir(d, s):
        os.mkdir(os.path.join(d, f"d{i}"), 0o755)

    def link(d, s):
        os.link(os.path.join(d, f"f{i}"), os.path.join(d, f"d{i}", f"h{i}"))

    def chmod(d, s):
        os.chmod(os.path.join(d, f"f{i}"), 0o600 | (i % 8) << 3)

    def truncate(d, s):
        os.truncate(os.path.join(d, f"f{i}"), 7 * (i % 5))

    def rename(d, s):
        os.rename(os.path.join(d, f"f{i}"), os.path.join(d, f"g{i}"))

    def unlink_link(d, s):
        os.unlink(os.path.join(d, f"d{i}", f"h{i}"))

    def shared_create(d, s):
        fd = os.open(os.path.join(s, f"w{k}-{i}.tmp"),
                     os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
        os.close(fd)

    def shared_rename(d, s):
        os.rename(os.path.join(s, f"w{k}-{i}.tmp"),
                  os.path.join(s, f"w{k}-{i}"))

    def shared_unlink(d, s):
        os.unlink(os.path.join(s, f"w{k}-{i - 2}"))

    steps = [("create", create), ("mkdir", mkdir), ("link", link),
             ("chmod", chmod), ("truncate", truncate), ("rename", rename)]
    if i % 3 == 0:
        steps.append(("unlink_link", unlink_link))
    steps += [("shared_create", shared_create),
              ("shared_rename", shared_rename)]
    if i % 4 == 2:  # w{k}-{i-2} exists: made two iterations ago
        steps.append(("shared_unlink", shared_unlink))
    return steps


def run_md_worker(k, own, shared, iterations):
    for i in range(iterations):
        for name, fn in md_steps(k, i):
            try:
                fn(own, shared)
            except OSError as e:
                print(f"ERR {i} {name} {errno.errorcode.get(e.errno, e.errno)}"
                      f" {e}", flush=True)
                return 1
            print(f"OK {i} {name}", flush=True)
    print("DONE", flush=True)
    return 0


def block(tag, n):
    """Block n of writer `tag`: verifiable from anywhere."""
    head = f"<{tag}:{n:06d}>".encode()
    return (head * (BLOCK // len(head) + 1))[:BLOCK]


def run_writer(path, tag, blocks):
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except OSError as e:
        print(f"ERR open {e}", flush=True)
        return 1
    try:
        for n in range(blocks):
            data = block(tag, n)
            done = 0
            while done < len(data):
                w = os.pwrite(fd, data[done:], n * BLOCK + done)
                if w <= 0:
                    raise OSError(errno.EIO, f"pwrite returned {w}")
                done += w
            os.fsync(fd)
            print(f"SYNCED {(n + 1) * BLOCK}", flush=True)
        os.close(fd)
    except OSError as e:
        print(f"ERR {e}", flush=True)
        return 1
    print("DONE", flush=True)
    return 0


# ---------------------------------------------------------------- harness

def expected_namespace(k, iterations):
    """{relative path: (kind, mode, size, nlink)} of worker k's own
    directory, and {name} it owns in the shared one, after `iterations`
    whole iterations. Link pairs are checked separately (same inode)."""
    own, shared = {}, set()
    for i in range(iterations):
        names = [n for n, _ in md_steps(k, i)]
        mode = 0o600 | (i % 8) << 3
        size = 7 * (i % 5)
        linked = "unlink_link" not in names
        own[f"d{i}"] = ("dir", 0o755, None, 2)
        own[f"g{i}"] = ("file", mode, size, 2 if linked else 1)
        if linked:
            own[f"d{i}/h{i}"] = ("file", mode, size, 2)
        shared.add(f"w{k}-{i}")
        if "shared_unlink" in names:
            shared.discard(f"w{k}-{i - 2}")
    return own, shared


class Proc:
    """A worker process whose stdout lines are collected without blocking."""

    def __init__(self, args):
        self.p = subprocess.Popen(
            ["timeout", str(WORKER_MAX_SECONDS), sys.executable,
             os.path.abspath(__file__), *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.fd = self.p.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.lines = []
        self._buf = b""

    def poll_lines(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._buf += chunk
        *done, self._buf = self._buf.split(b"\n")
        self.lines += [line.decode() for line in done if line]
        return self.lines

    def finished(self):
        return self.p.poll() is not None

    def finish(self, timeout):
        """Waits for the exit (bounded); returns (rc, lines, stderr)."""
        end = time.monotonic() + timeout
        while not self.finished() and time.monotonic() < end:
            select.select([self.fd], [], [], 0.2)
            self.poll_lines()
        if not self.finished():
            self.kill()
        rc = self.p.wait(timeout=10)
        self.poll_lines()
        if self._buf:
            self.lines.append(self._buf.decode())
            self._buf = b""
        return rc, self.lines, self.p.stderr.read().decode(errors="replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)


def server_pid(c, target):
    """Pid of the running server `target`, or 0."""
    try:
        with open(os.path.join(c.home, "run", f"{target}.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[-1].startswith("Z"):
                return 0
    except (OSError, ValueError):
        return 0
    return pid


def kill9_and_restart(c, target, down_seconds=1.0):
    pid = server_pid(c, target)
    assert pid, f"{target} is not running"
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: server_pid(c, target) == 0, timeout=20), \
        f"{target} (pid {pid}) survived SIGKILL"
    time.sleep(down_seconds)  # requests meanwhile are cut and resent
    c.cli("server", "start", "--home", c.home, target, timeout=90)


@pytest.fixture
def crash_cluster():
    # Teardown starts the servers a failed test left dead.
    with two_mount_cluster("stripefs-crash-e2e-", CALLBACK_TIMEOUT,
                           restart=("ost0", "ost1", "mdt0")) as c:
        c.procs = []
        try:
            yield c
        finally:
            for p in c.procs:
                p.kill()


def test_mds_kill9_during_metadata_workload_on_two_mounts(crash_cluster):
    c = crash_cluster
    shared = os.path.join(c.mnt, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    mounts = [c.mnt, c.mnt, c.mnt_b, c.mnt_b]
    for k in range(len(mounts)):
        os.mkdir(os.path.join(c.mnt, f"w{k}"))

    # Held open across the crash: one on each mount, B's unlinked while open.
    held_a_path = os.path.join(c.mnt, "held-a")
    held_a = os.open(held_a_path, os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(held_a, b"A-before;", 0)
    os.fsync(held_a)
    held_b_path = os.path.join(c.mnt_b, "held-b")
    held_b = os.open(held_b_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.pwrite(held_b, b"B-before;", 0)
        os.fsync(held_b)
        os.unlink(held_b_path)

        workers = []
        for k, m in enumerate(mounts):
            w = Proc(["--md-worker", k, os.path.join(m, f"w{k}"),
                      os.path.join(m, "shared"), MD_ITERATIONS])
            c.procs.append(w)
            workers.append(w)
        # Kill once every worker is under way (and none is done).
        assert wait_for(lambda: all(len(w.poll_lines()) >= 10 or
                                    w.finished() for w in workers),
                        timeout=60)
        assert not any(w.finished() for w in workers), \
            [w.finish(1) for w in workers]
        before = [len(w.poll_lines()) for w in workers]
        # Down longer than the client takes to replace a failing channel.
        kill9_and_restart(c, "mdt0", down_seconds=3.0)

        results = [w.finish(WORKER_MAX_SECONDS) for w in workers]
        for k, (rc, lines, err) in enumerate(results):
            assert rc == 0 and lines and lines[-1] == "DONE", \
                (k, rc, lines[-3:], err[-2000:])
            assert not [x for x in lines if x.startswith("ERR")], (k, lines)
            assert len(lines) > before[k] + 1, k  # it worked across the kill

        # The descriptors held across the crash still work (read, write,
        # fsync), also the unlinked one.
        assert os.pread(held_a, 9, 0) == b"A-before;"
        assert os.pwrite(held_a, b"A-after", 9) == 7
        os.fsync(held_a)
        assert os.pread(held_b, 9, 0) == b"B-before;"
        assert os.pwrite(held_b, b"B-after", 9) == 7
        os.fsync(held_b)
        assert os.pread(held_b, 100, 0) == b"B-before;B-after"
        with open(os.path.join(c.mnt_b, "held-a"), "rb") as f:
            assert f.read() == b"A-before;A-after"
    finally:
        os.close(held_a)
        os.close(held_b)
    assert not os.path.exists(os.path.join(c.mnt, "held-b"))

    # Every acknowledged operation's effect, exactly once; nothing else.
    # Checked through both mounts.
    for m in (c.mnt, c.mnt_b):
        all_shared = set()
        for k in range(len(mounts)):
            own, mine = expected_namespace(k, MD_ITERATIONS)
            all_shared |= mine
            root = os.path.join(m, f"w{k}")
            found = {}
            for dirpath, dirnames, filenames in os.walk(root):
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    st = os.lstat(p)
                    kind = "dir" if os.path.isdir(p) else "file"
                    found[os.path.relpath(p, root)] = (
                        kind, st.st_mode & 0o7777,
                        None if kind == "dir" else st.st_size, st.st_nlink)
            assert found == own, (m, k, sorted(set(found.items()) ^
                                               set(own.items()))[:10])
            for rel in own:
                if rel.startswith("d") and "/h" in rel:
                    i = rel.split("/h")[1]
                    assert os.stat(os.path.join(root, rel)).st_ino == \
                        os.stat(os.path.join(root, f"g{i}")).st_ino, rel
        assert set(os.listdir(os.path.join(m, "shared"))) == all_shared, m
        assert sorted(os.listdir(m)) == sorted(
            ["shared", "held-a"] + [f"w{k}" for k in range(len(mounts))])
    # The mounts found the new instance and re-established their open file.
    for m in (c.mnt, c.mnt_b):
        log = mount_log(c, m)
        reopened = re.findall(r"re-established (\d+) of (\d+) open files", log)
        assert reopened and all(a == b for a, b in reopened), log[-3000:]


def test_oss_kill9_during_fsync_writers(crash_cluster):
    c = crash_cluster
    d = os.path.join(c.mnt, "data")
    os.mkdir(d)
    os.chmod(d, 0o777)
    # Every file striped over both OSTs: a kill of ost0 cuts every writer.
    os.setxattr(d, "user.stripefs.layout",
                f"stripe_count=2 stripe_size={BLOCK}".encode())
    mounts = [c.mnt, c.mnt, c.mnt_b, c.mnt_b]
    writers = []
    for k, m in enumerate(mounts):
        w = Proc(["--writer", os.path.join(m, "data", f"file{k}"), k,
                  WRITER_BLOCKS])
        c.procs.append(w)
        writers.append(w)
    assert wait_for(lambda: all(len(w.poll_lines()) >= 3 or w.finished()
                                for w in writers), timeout=60)
    assert not any(w.finished() for w in writers), \
        [w.finish(1) for w in writers]
    before = [len(w.poll_lines()) for w in writers]
    kill9_and_restart(c, "ost0")

    for k, w in enumerate(writers):
        rc, lines, err = w.finish(WORKER_MAX_SECONDS)
        assert rc == 0 and lines and lines[-1] == "DONE", \
            (k, rc, lines[-3:], err[-2000:])
        synced = [int(x.split()[1]) for x in lines if x.startswith("SYNCED")]
        assert synced and synced[-1] == WRITER_BLOCKS * BLOCK, (k, synced[-3:])
        assert len(synced) > before[k], k  # it wrote across the kill
    # All fsync'd bytes, through both mounts.
    for m in (c.mnt, c.mnt_b):
        for k in range(len(mounts)):
            with open(os.path.join(m, "data", f"file{k}"), "rb") as f:
                data = f.read()
            assert len(data) == WRITER_BLOCKS * BLOCK, (m, k, len(data))
            for n in range(WRITER_BLOCKS):
                assert data[n * BLOCK:(n + 1) * BLOCK] == block(k, n), \
                    (m, k, n)


procs = procs_fixture("stripefs-crash-idle-")

REOPEN_WINDOW = 8  # seconds (stripefs-mds --reopen-window) in the idle test


def test_idle_mount_reopens_by_keepalive_within_the_reopen_window(procs):
    """(c) An idle mount (no request of it fails: it sends none) holds a
    file that it unlinked while open when the MDS is killed with -9 and
    started again with a short reopen window. Its keepalive finds the new
    instance and re-establishes the handle inside the window, so when the
    window is over the file's data is still there and the descriptor keeps
    working (a handle not reopened would be discarded and the unlinked
    file's objects destroyed)."""
    po, pm = free_port(), free_port()
    procs.serve(BIN_N1, "stripefs-oss", po, "--target", "ost0", "--data",
                procs.data("ost0"))
    mds_args = ["--target", "mdt0", "--data", procs.data("mdt0"), "--ost",
                f"0=127.0.0.1:{po}", "--reopen-window", REOPEN_WINDOW]
    mds = procs.serve(BIN_N1, "stripefs-mds", pm, *mds_args)
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, pm, mnt)
    data = block("idle", 0) * 3
    path = os.path.join(mnt, "held")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert os.pwrite(fd, data, 0) == len(data)
        os.fsync(fd)
        os.unlink(path)
        mds.kill()  # SIGKILL
        mds.wait(timeout=20)
        mds2 = procs.serve(BIN_N1, "stripefs-mds", pm, *mds_args)
        # Past the window (plus the MDS's once-a-second check), untouched.
        time.sleep(REOPEN_WINDOW + 4)
        assert mds2.poll() is None, log_of(mds2)
        assert os.pread(fd, len(data) + 10, 0) == data
        assert os.pwrite(fd, b"after", len(data)) == 5
        os.fsync(fd)
        assert os.pread(fd, len(data) + 10, 0) == data + b"after"
    finally:
        os.close(fd)
    assert os.listdir(mnt) == []
    assert "reopen window over" not in log_of(mds2) or \
        "discarded 0 open handles" in log_of(mds2), log_of(mds2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--md-worker", nargs=4,
                    metavar=("K", "OWN_DIR", "SHARED_DIR", "ITERATIONS"))
    ap.add_argument("--writer", nargs=3, metavar=("PATH", "TAG", "BLOCKS"))
    a = ap.parse_args()
    if a.md_worker:
        k, own, shared, n = a.md_worker
        return run_md_worker(int(k), own, shared, int(n))
    if a.writer:
        path, tag, n = a.writer
        return run_writer(path, tag, int(n))
    ap.error("--md-worker or --writer")
    return 2


if __name__ == "__main__":
    sys.exit(main())
