"""A mount daemon killed with -9 (issue 5, must-show 6).

Cluster of its own: a DLM with a short callback timeout and an MDS with a
short client lease (both through the environment `stripefs cluster up`
hands its servers), mounted twice (A = c.mnt, B = c.mnt_b). Mount A opens a
file, unlinks it while open and writes to it, holds an fcntl lock on a
shared file and has written to a shared file; then its daemon is killed
with -9. Mount B carries on: it gets the lock, writes the shared file and
creates in the shared directory with no error (the DLM evicts A at the
callback timeout). Once A's MDS lease has run out the file A kept
unlinked-while-open is gone: the inode count is back and its OSS object
files are destroyed, while B's own open file keeps working. A's dead
mountpoint (ENOTCONN) is cleaned with `stripefs umount` and mounted again,
and the new mount sees B's data.
"""

import errno
import os
import re
import signal
import subprocess
import sys
import uuid

import pytest

from conftest import _mounted, mount_daemon_pid, wait_for
from helpers import ask, two_mount_cluster

CALLBACK_TIMEOUT = 2  # seconds, stripefs-dlm --callback-timeout
# Seconds, stripefs-mds --client-lease: three keepalive periods (5 s) so
# that the live mount B is never evicted.
CLIENT_LEASE = 15
MARGIN = 30  # seconds allowed beyond a timeout before a wait fails


@pytest.fixture
def kill_cluster():
    with two_mount_cluster(
            "stripefs-clientkill-e2e-", CALLBACK_TIMEOUT,
            env={"STRIPEFS_MDS_CLIENT_LEASE": str(CLIENT_LEASE)}) as c:
        yield c


# A helper on one mount, driven by stdin lines; answers "ok ..." or the
# errno name on stdout, one line per command.
#   orphan PATH: open PATH, unlink it, write 256 KiB to it, fsync; keep it
#   lock PATH:   open PATH and take an fcntl write lock (F_SETLKW); keep it
#   open PATH:   open PATH read-write; keep it
#   write DATA:  pwrite DATA at 0 through the kept fd, fsync
#   pwrite DATA: pwrite DATA at 0 through the kept fd (no fsync)
#   read N:      pread N bytes at 0 through the kept fd
#   truncate N:  ftruncate the kept fd to N bytes
HELPER = r"""
import errno, fcntl, os, struct, sys
fd = None
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\n").partition(" ")
    try:
        if cmd == "orphan":
            fd = os.open(arg, os.O_RDWR)
            os.unlink(arg)
            os.pwrite(fd, b"o" * (256 << 10), 0)
            os.fsync(fd)
            r = ""
        elif cmd == "lock":
            fd = os.open(arg, os.O_RDWR)
            fcntl.fcntl(fd, fcntl.F_SETLKW,
                        struct.pack("hh4xqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
            r = "locked"
        elif cmd == "open":
            fd = os.open(arg, os.O_RDWR)
            r = ""
        elif cmd == "truncate":
            os.ftruncate(fd, int(arg))
            r = ""
        elif cmd == "write":
            os.pwrite(fd, arg.encode(), 0)
            os.fsync(fd)
            r = ""
        elif cmd == "pwrite":
            r = str(os.pwrite(fd, arg.encode(), 0))
        elif cmd == "read":
            r = os.pread(fd, int(arg), 0).decode()
        else:
            break
        print("ok", r, flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


class Helper:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, "-c", HELPER],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def ask(self, cmd, timeout=20):
        return ask(self.p, cmd, timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


# One operation in a process of its own, bounded by a timeout (a hang is a
# failure): prints "ok" or the errno name.
OP = r"""
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "write":
        with open(path, "r+b") as f:
            f.write(sys.argv[3].encode())
    elif op == "create":
        with open(path, "xb") as f:
            f.write(sys.argv[3].encode())
    print("ok", flush=True)
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
"""


def run_op(op, path, *args, timeout=CALLBACK_TIMEOUT + MARGIN):
    try:
        p = subprocess.run([sys.executable, "-c", OP, op, path, *args],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{op} {path} hung for {timeout}s")
    return p.stdout.strip()


def used_inodes(path):
    st = os.statvfs(path)
    return st.f_files - st.f_ffree


def object_files(c, layout):
    """OSS object files of a layout xattr ('... objects=OST:OID,...')."""
    objects = dict(kv.split("=", 1) for kv in layout.split())["objects"]
    out = []
    for o in objects.split(","):
        ost, oid = (int(x) for x in o.split(":"))
        out.append(os.path.join(c.oss_data(ost), "objects",
                                "%02x" % (oid % 256), str(oid)))
    return out


def process_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def log_tails(home):
    out = []
    logs = os.path.join(home, "log")
    for name in sorted(os.listdir(logs)):
        with open(os.path.join(logs, name), errors="replace") as f:
            out.append(f"--- {name}\n" + "".join(f.readlines()[-15:]))
    return "\n".join(out)


def test_killed_mount_is_evicted_and_the_others_carry_on(kill_cluster):
    c = kill_cluster
    d = "shared-" + uuid.uuid4().hex[:8]
    da, db = os.path.join(c.mnt, d), os.path.join(c.mnt_b, d)
    os.mkdir(da)
    # A writes the shared file (it caches a write data lock on its object).
    with open(os.path.join(da, "data"), "wb") as f:
        f.write(b"A" * 8192)
    with open(os.path.join(da, "lock"), "wb") as f:
        f.write(b"x")
    # The file A will keep open unlinked, with data on its OSS objects.
    with open(os.path.join(da, "orphan"), "wb") as f:
        f.write(b"o")
    layout = os.getxattr(os.path.join(da, "orphan"),
                         "user.stripefs.layout").decode()
    files = object_files(c, layout)

    helpers = []
    try:
        orphan, locker = Helper(), Helper()
        helpers += [orphan, locker]
        assert orphan.ask("orphan " + os.path.join(da, "orphan")) == "ok"
        assert locker.ask("lock " + os.path.join(da, "lock")) == "ok locked"
        with open(os.path.join(da, "data"), "r+b") as f:
            f.write(b"a" * 100)  # a fresh write just before the kill
        assert not os.path.exists(os.path.join(db, "orphan"))
        assert all(os.path.exists(p) for p in files), files
        inodes_with_orphan = used_inodes(c.mnt_b)

        pid = mount_daemon_pid(c.mnt)
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: process_gone(pid), timeout=10)
        # A's mountpoint is dead; its applications get errors, not hangs.
        with pytest.raises(OSError) as e:
            os.listdir(c.mnt)
        # ENOTCONN, or ECONNABORTED for a request the kernel had already
        # queued when the daemon died.
        assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        for h in helpers:
            h.kill()
        helpers = []

        # B carries on: the lock A held, a write to what A wrote, a create
        # in the directory A cached.
        b_locker = Helper()
        helpers.append(b_locker)
        assert b_locker.ask("lock " + os.path.join(db, "lock"),
                            timeout=CALLBACK_TIMEOUT + MARGIN) == "ok locked"
        assert run_op("write", os.path.join(db, "data"), "BBBB") == "ok"
        assert run_op("create", os.path.join(db, "fromB"), "hello") == "ok"
        with open(os.path.join(db, "data"), "rb") as f:
            assert f.read() == b"BBBB" + b"a" * 96 + b"A" * (8192 - 100)
        assert b_locker.ask("write LOCKED-BY-B") == "ok"

        # A's lease runs out: the MDS drops its handles and reclaims the
        # file it kept unlinked-while-open, objects included.
        expected = inodes_with_orphan + 1 - 1  # + fromB, - the orphan
        assert wait_for(lambda: used_inodes(c.mnt_b) == expected,
                        timeout=CLIENT_LEASE + MARGIN), (
            used_inodes(c.mnt_b), expected, log_tails(c.home))
        assert wait_for(lambda: not any(os.path.exists(p) for p in files),
                        timeout=MARGIN), (files, log_tails(c.home))
        # One line says whom the MDS evicted (A's name ends in its pid).
        with open(os.path.join(c.home, "log", "mdt0.log")) as f:
            evictions = [l for l in f if "evicted client" in l]
        assert len(evictions) == 1, evictions
        assert f":{pid})" in evictions[0], evictions
        assert re.search(r"dropped [2-9] open handles, reclaimed 1 "
                         r"unlinked-while-open", evictions[0]), evictions
        # B was never evicted: the file it kept open all along still works.
        assert b_locker.ask("write B-AFTER-LEASE") == "ok"
        assert b_locker.ask("read 13") == "ok B-AFTER-LEASE"
        b_locker.kill()
        helpers = []

        # The dead mountpoint is cleaned and mounted again. Mounting over
        # it first is refused, saying what to do.
        p = c.cli("mount", "--home", c.home, c.mnt, check=False)
        assert p.returncode != 0 and "stripefs umount" in p.stderr, p
        p = c.cli("umount", "--home", c.home, c.mnt)
        assert "daemon is gone" in p.stdout + p.stderr, p
        assert not _mounted(c.mnt)
        assert os.listdir(c.mnt) == []  # the bare directory again
        c.cli("mount", "--home", c.home, c.mnt)
        assert _mounted(c.mnt)
        with open(os.path.join(da, "data"), "rb") as f:
            assert f.read(4) == b"BBBB"
        with open(os.path.join(da, "fromB"), "rb") as f:
            assert f.read() == b"hello"
        with open(os.path.join(da, "lock"), "rb") as f:
            assert f.read() == b"B-AFTER-LEASE"
        assert sorted(os.listdir(da)) == ["data", "fromB", "lock"]
        # The new mount writes; B sees it.
        with open(os.path.join(da, "again"), "wb") as f:
            f.write(b"remounted")
        with open(os.path.join(db, "again"), "rb") as f:
            assert f.read() == b"remounted"
    finally:
        for h in helpers:
            h.kill()


def test_mount_silent_past_its_lease_gets_eio_on_its_old_files(kill_cluster):
    """Mount A's daemon is stopped (SIGSTOP) for longer than its MDS lease:
    the MDS evicts it. Resumed, A's keepalive learns of the eviction (the
    MDS tells it on Status) and fails every file it had open at once: a
    plain read() and write() of the old fd give EIO and the write leaves
    the OSS data as it was, as do ftruncate and fsync; a shrinking
    ftruncate right after the resume (before the keepalive ran) asks the
    MDS first and cuts nothing either; opening the file again works."""
    c = kill_cluster
    name = "silent-" + uuid.uuid4().hex[:8]
    fa, fb = os.path.join(c.mnt, name), os.path.join(c.mnt_b, name)
    with open(fa, "wb") as f:
        f.write(b"0123456789")
    holder = Helper()
    pid = mount_daemon_pid(c.mnt)
    stopped = False
    try:
        assert holder.ask("open " + fa) == "ok"
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        mds_log = os.path.join(c.home, "log", "mdt0.log")

        def evicted():
            with open(mds_log) as f:
                return any("evicted client" in l and f":{pid})" in l
                           for l in f)
        assert wait_for(evicted, timeout=CLIENT_LEASE + MARGIN, interval=0.5), (
            log_tails(c.home))
        layout = os.getxattr(fb, "user.stripefs.layout").decode()
        os.kill(pid, signal.SIGCONT)
        stopped = False
        logs = os.path.join(c.home, "log")

        def mount_a_log():
            paths = [os.path.join(logs, n) for n in os.listdir(logs)
                     if n.startswith("mount-") and "mnt-b" not in n]
            return "".join(open(p, errors="replace").read() for p in paths)
        # A shrinking ftruncate right away (the keepalive may not have run
        # yet): the mount asks the MDS first, so it fails and cuts nothing.
        assert holder.ask("truncate 4", timeout=MARGIN) == "EIO"
        # Its keepalive (every 5 s) hears of the eviction and says so.
        assert wait_for(lambda: "evicted by the MDS" in mount_a_log(),
                        timeout=MARGIN, interval=0.2), log_tails(c.home)
        assert "1 open files lost" in mount_a_log(), log_tails(c.home)
        # The old open file: every operation on that fd fails with EIO,
        # plain reads and writes too (they never reach an OSS).
        assert holder.ask("read 4", timeout=MARGIN) == "EIO"
        assert holder.ask("pwrite XX", timeout=MARGIN) == "EIO"
        assert holder.ask("write XX", timeout=MARGIN) == "EIO"
        assert holder.ask("truncate 2", timeout=MARGIN) == "EIO"
        # The OSS object files still hold all that was written before.
        stored = b""
        for p in object_files(c, layout):
            if os.path.exists(p):
                with open(p, "rb") as f:
                    stored += f.read()
        assert stored.startswith(b"0123456789"), stored[:32]
        # New opens work, on both mounts.
        with open(fa, "r+b") as f:
            f.truncate(3)
            f.write(b"new")
        with open(fa, "rb") as f:
            assert f.read() == b"new"
        with open(fb, "rb") as f:
            assert f.read() == b"new"
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        holder.kill()
