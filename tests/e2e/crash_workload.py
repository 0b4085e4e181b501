"""Seeded filesystem workload on two mounts of one cluster, for the
randomized crash test (test_crash_random.py).

    crash_workload.py --seed S --ops N --dir NAME MOUNT_A MOUNT_B

Runs N operations in MOUNT_x/NAME (created first, through MOUNT_A): creates
(O_EXCL, data written and fsync'd before close), overwrites and appends
(fsync'd), renames, unlinks, mkdirs, and reads through a random mount that
compare what they get with what was written. Every choice (operation, mount,
names, sizes, bytes) comes from random.Random(S) and never from what a
syscall returned, so the same seed runs the same operations; the caller
measures time in operations.

Output, one line each, flushed: `OK <i> <op>` after operation i was
acknowledged (i from 1), and at the end `MODEL <json>`: what the directory
must hold, {"dirs": [...], "files": {path: [size, sha256]}} (paths relative
to NAME). The first syscall error (or a read that differs) prints
`ERR <i> <op>: <error>` and exits 1: each operation is applied
exactly once, so a request executed twice (EEXIST, ENOENT) is an error too.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import sys

MAX_FILE = 192 * 1024   # bytes of a new file, at most
MAX_WRITE = 64 * 1024   # bytes of one overwrite/append, at most


class Failed(Exception):
    pass


def write_all(fd, data, offset):
    done = 0
    while done < len(data):
        n = os.pwrite(fd, data[done:], offset + done)
        if n <= 0:
            raise OSError(errno.EIO, f"pwrite returned {n}")
        done += n


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


class Workload:
    def __init__(self, seed, mounts, name):
        self.rng = random.Random(seed)
        self.roots = [os.path.join(m, name) for m in mounts]
        self.dirs = [""]            # relative paths, "" = NAME itself
        self.files = {}             # relative path -> bytes
        self.serial = 0
        self.doing = ""             # the operation under way, for errors

    def fresh(self, prefix):
        self.serial += 1
        return f"{prefix}{self.serial:04d}"

    def at(self, root, rel):
        return os.path.join(root, rel) if rel else root

    def pick_file(self):
        return self.rng.choice(sorted(self.files))

    def step(self):
        """Chooses and runs one operation; returns its description."""
        r = self.rng
        root = r.choice(self.roots)
        mount = "A" if root == self.roots[0] else "B"
        # Creates outweigh unlinks, so the directory fills up.
        ops = ["create", "create", "mkdir"]
        if self.files:
            ops += ["create", "write", "write", "rename", "unlink", "read"]
        op = r.choice(ops)
        if op == "create":
            rel = os.path.join(r.choice(self.dirs), self.fresh("f"))
            data = r.randbytes(r.randrange(0, MAX_FILE + 1))
            self.doing = f"{mount} create {rel} {len(data)}B"
            fd = os.open(self.at(root, rel),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                write_all(fd, data, 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.files[rel] = data
            return self.doing
        if op == "mkdir":
            rel = os.path.join(r.choice(self.dirs), self.fresh("d"))
            self.doing = f"{mount} mkdir {rel}"
            os.mkdir(self.at(root, rel))
            self.dirs.append(rel)
            return self.doing
        rel = self.pick_file()
        if op == "write":
            old = self.files[rel]
            offset = r.randrange(0, len(old) + 1)
            data = r.randbytes(r.randrange(1, MAX_WRITE + 1))
            self.doing = f"{mount} write {rel} {offset}+{len(data)}"
            fd = os.open(self.at(root, rel), os.O_WRONLY)
            try:
                write_all(fd, data, offset)
                os.fsync(fd)
            finally:
                os.close(fd)
            new = old[:offset] + data + old[offset + len(data):]
            self.files[rel] = new
            return self.doing
        if op == "rename":
            to = os.path.join(r.choice(self.dirs), self.fresh("r"))
            self.doing = f"{mount} rename {rel} {to}"
            os.rename(self.at(root, rel), self.at(root, to))
            self.files[to] = self.files.pop(rel)
            return self.doing
        if op == "unlink":
            self.doing = f"{mount} unlink {rel}"
            os.unlink(self.at(root, rel))
            del self.files[rel]
            return self.doing
        self.doing = f"{mount} read {rel}"
        got = read_all(self.at(root, rel))
        want = self.files[rel]
        if got != want:
            raise Failed(f"read {rel} on {mount}: {len(got)} bytes, sha256 "
                         f"{hashlib.sha256(got).hexdigest()[:16]}, want "
                         f"{len(want)} bytes, "
                         f"{hashlib.sha256(want).hexdigest()[:16]}")
        return f"{mount} read {rel} {len(got)}B"

    def model(self):
        return {"dirs": sorted(self.dirs),
                "files": {p: [len(d), hashlib.sha256(d).hexdigest()]
                          for p, d in sorted(self.files.items())}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--ops", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("mounts", nargs=2)
    a = ap.parse_args()
    w = Workload(a.seed, a.mounts, a.dir)
    try:
        os.mkdir(w.roots[0])
    except OSError as e:
        print(f"ERR 0 A mkdir {a.dir}: errno {e.errno} {e.strerror}",
              flush=True)
        return 1
    for i in range(1, a.ops + 1):
        try:
            desc = w.step()
        except OSError as e:
            print(f"ERR {i} {w.doing}: errno {e.errno} {e.strerror}",
                  flush=True)
            return 1
        except Failed as e:
            print(f"ERR {i} {w.doing}: {e}", flush=True)
            return 1
        print(f"OK {i} {desc}", flush=True)
    print("MODEL " + json.dumps(w.model()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
