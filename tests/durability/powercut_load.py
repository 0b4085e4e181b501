#!/usr/bin/env python3
"""Load and verifier for tests/durability/power_cut.sh.

  powercut_load.py write  --root MNT --dir NAME --log LOG --seconds S [--seed N]
  powercut_load.py verify --root MNT --logs LOG... [--details N]

`write` works in MNT/NAME (its own directory, created and made durable
first) until S seconds have passed or an operation fails (the cut): create a
file, write 64 KiB derived from its name and generation, fsync it, close it,
fsync the directory, and only then log it as acknowledged; rename or unlink
an acknowledged file, fsync the directory, then log the new state. Before
each operation an intent record is logged (flushed), after it the ack record
(flushed and fsynced). LOG must live outside the filesystem under test.

`verify` rebuilds the acknowledged state of every log and checks it against
MNT: every acknowledged file exists with exactly its bytes, unlinked files
and old names of renamed files are gone. The one operation a writer had in
flight (intent without ack) may have happened or not: both states pass; a
file being created may also be short or have holes (zeros) but no byte that
is not its own. Prints one JSON summary line last.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import sys
import time

SIZE = 64 * 1024


def content(origname, gen):
    out = bytearray()
    i = 0
    while len(out) < SIZE:
        out += hashlib.sha256(f"{origname}/{gen}/{i}".encode()).digest()
        i += 1
    return bytes(out[:SIZE])


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def intent(self, **rec):
        rec["t"] = "intent"
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()

    def ack(self, **rec):
        rec["t"] = "ack"
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def note(self, **rec):
        rec["t"] = "note"
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())


def cmd_write(a):
    log = Log(a.log)
    rng = random.Random(a.seed)
    d = os.path.join(a.root, a.dir)
    deadline = time.monotonic() + a.seconds
    acked = []  # names present in the acknowledged state
    n = 0
    ops = 0
    try:
        log.intent(op="mkdir", dir=a.dir)
        os.mkdir(d)
        fsync_dir(d)
        fsync_dir(a.root)
        log.ack(op="mkdir", dir=a.dir)
        while time.monotonic() < deadline:
            n += 1
            r = rng.random()
            if acked and r < 0.15:
                old = acked.pop(rng.randrange(len(acked)))
                new = f"r{n:06d}"
                log.intent(op="rename", dir=a.dir, src=old, dst=new)
                os.rename(os.path.join(d, old), os.path.join(d, new))
                fsync_dir(d)
                log.ack(op="rename", dir=a.dir, src=old, dst=new)
                acked.append(new)
            elif acked and r < 0.30:
                old = acked.pop(rng.randrange(len(acked)))
                log.intent(op="unlink", dir=a.dir, name=old)
                os.unlink(os.path.join(d, old))
                fsync_dir(d)
                log.ack(op="unlink", dir=a.dir, name=old)
            else:
                name = f"f{n:06d}"
                gen = n
                data = content(f"{a.dir}/{name}", gen)
                log.intent(op="create", dir=a.dir, name=name, gen=gen)
                fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                try:
                    off = 0
                    while off < len(data):
                        off += os.write(fd, data[off:])
                    os.fsync(fd)
                finally:
                    os.close(fd)
                fsync_dir(d)
                log.ack(op="create", dir=a.dir, name=name, gen=gen)
                acked.append(name)
            ops += 1
    except OSError as e:
        log.note(op="error", dir=a.dir, errno=e.errno, error=str(e), ops=ops)
        print(f"writer {a.dir}: stopped after {ops} operations: {e}", file=sys.stderr)
        return 0
    log.note(op="done", dir=a.dir, ops=ops)
    return 0


class Writer:
    """Acknowledged state of one writer's directory, rebuilt from its log."""

    def __init__(self, path):
        self.path = path
        self.dir = None
        self.dir_acked = False
        self.files = {}      # name -> (origname, gen), acknowledged present
        self.gone = set()    # acknowledged gone (unlinked, or renamed away)
        self.pending = None  # the intent without an ack, if any
        self.origin = {}     # name -> (origname, gen) of anything ever created
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line (the log is outside the cut, but be safe)
                self.apply(rec)

    def apply(self, rec):
        t, op = rec.get("t"), rec.get("op")
        if t == "intent":
            self.pending = rec
            self.dir = rec["dir"]
            if op == "create":
                self.origin[rec["name"]] = (f"{rec['dir']}/{rec['name']}", rec["gen"])
            return
        if t != "ack":
            return
        self.pending = None
        if op == "mkdir":
            self.dir_acked = True
        elif op == "create":
            self.files[rec["name"]] = self.origin[rec["name"]]
        elif op == "rename":
            self.files[rec["dst"]] = self.files.pop(rec["src"])
            self.origin[rec["dst"]] = self.files[rec["dst"]]
            self.gone.add(rec["src"])
        elif op == "unlink":
            self.files.pop(rec["name"])
            self.gone.add(rec["name"])


def read_file(path):
    """bytes, or None if absent; raises OSError on other errors."""
    try:
        with open(path, "rb") as f:
            return f.read(SIZE * 4)
    except FileNotFoundError:
        return None


def diff_bytes(got, want):
    n = sum(1 for x, y in zip(got, want) if x != y)
    return n + abs(len(got) - len(want))


def cmd_verify(a):
    tot = dict(writers=0, acked=0, lost=0, wrong_files=0, wrong_bytes=0,
               resurrected=0, unexpected=0, foreign=0, unreadable=0,
               inflight=0, lost_dirs=0)
    details = []

    def problem(msg):
        if len(details) < a.details:
            details.append(msg)

    for lp in a.logs:
        w = Writer(lp)
        if w.dir is None:
            continue
        tot["writers"] += 1
        d = os.path.join(a.root, w.dir)
        p = w.pending
        if p is not None:
            tot["inflight"] += 1
        tot["acked"] += len(w.files)
        if not w.dir_acked:
            continue  # mkdir in flight: the directory may or may not exist, and it is empty
        try:
            listing = set(os.listdir(d))
        except FileNotFoundError:
            tot["lost_dirs"] += 1
            tot["lost"] += len(w.files)
            problem(f"{w.dir}: acknowledged directory missing ({len(w.files)} acknowledged files in it)")
            continue
        except OSError as e:
            tot["lost_dirs"] += 1
            tot["lost"] += len(w.files)
            tot["unreadable"] += 1
            problem(f"{w.dir}: cannot list the directory: {e}")
            continue

        def check_present(name, want_spec):
            """Returns 'ok', 'absent', or 'wrong' (counted)."""
            if name not in listing:
                return "absent"
            try:
                got = read_file(os.path.join(d, name))
            except OSError as e:
                tot["unreadable"] += 1
                tot["wrong_files"] += 1
                tot["wrong_bytes"] += SIZE
                problem(f"{w.dir}/{name}: unreadable: {e}")
                return "wrong"
            if got is None:
                return "absent"
            want = content(*want_spec)
            if got != want:
                nb = diff_bytes(got, want)
                tot["wrong_files"] += 1
                tot["wrong_bytes"] += nb
                problem(f"{w.dir}/{name}: wrong bytes: size {len(got)} (want {len(want)}), {nb} bytes differ")
                return "wrong"
            return "ok"

        expected_names = set(w.files)
        allowed_extra = set()
        for name, spec in w.files.items():
            if p and p["op"] == "rename" and p["src"] == name:
                allowed_extra.add(p["dst"])
                r1 = check_present(name, spec)
                r2 = check_present(p["dst"], spec)
                if r1 == "absent" and r2 == "absent":
                    tot["lost"] += 1
                    problem(f"{w.dir}/{name}: lost (rename to {p['dst']} in flight; neither name exists)")
                elif r1 != "absent" and r2 != "absent":
                    tot["unexpected"] += 1
                    problem(f"{w.dir}/{name}: both {name} and {p['dst']} exist after an in-flight rename")
                continue
            if p and p["op"] == "unlink" and p["name"] == name:
                check_present(name, spec)  # either state is fine, but its bytes must be right
                continue
            r = check_present(name, spec)
            if r == "absent":
                tot["lost"] += 1
                problem(f"{w.dir}/{name}: acknowledged file lost")

        for name in w.gone:
            if name in listing:
                tot["resurrected"] += 1
                problem(f"{w.dir}/{name}: acknowledged unlink/rename undone (the old name exists)")

        if p and p["op"] == "create":
            allowed_extra.add(p["name"])
            if p["name"] in listing:
                try:
                    got = read_file(os.path.join(d, p["name"])) or b""
                    want = content(*w.origin[p["name"]])
                    bad = len(got) > SIZE or any(x != y and x != 0 for x, y in zip(got, want))
                    if bad:
                        tot["foreign"] += 1
                        problem(f"{w.dir}/{p['name']}: in-flight create holds bytes that are not its own")
                except OSError as e:
                    problem(f"{w.dir}/{p['name']}: in-flight create unreadable: {e}")

        for name in listing - expected_names - allowed_extra - w.gone:
            tot["unexpected"] += 1
            problem(f"{w.dir}/{name}: unexpected entry")

    for line in details:
        print("  " + line)
    print(json.dumps(tot))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--root", required=True)
    w.add_argument("--dir", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--seed", type=int, default=0)
    v = sub.add_parser("verify")
    v.add_argument("--root", required=True)
    v.add_argument("--logs", nargs="*", default=[])
    v.add_argument("--details", type=int, default=10)
    a = ap.parse_args()
    return cmd_write(a) if a.cmd == "write" else cmd_verify(a)


if __name__ == "__main__":
    sys.exit(main())
