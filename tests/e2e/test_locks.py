"""fcntl record locks (classic and OFD) and flock(2) across two mounts of one
cluster with a lock service: a lock taken through one mount excludes
conflicting locks through the other, waiters get the lock when it is
released, and a signal interrupts a waiter with EINTR without hurting the
holder.

Fixture two_mounts (module-wide, also used by test_coherence_data.py): a
cluster of its own started with `stripefs cluster up` (which starts the DLM)
and mounted twice.
"""

import errno
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import uuid

import pytest

from conftest import make_cluster, wait_for


@pytest.fixture(scope="module")
def two_mounts():
    tmp_root = tempfile.mkdtemp(prefix="stripefs-dlm-e2e-")
    os.chmod(tmp_root, 0o755)
    c = make_cluster(tmp_root)
    try:
        c.up(mount=True)
        if not any(s["role"] == "dlm" for s in c.config()["servers"]):
            pytest.fail("`stripefs cluster up` did not start a lock service")
        os.chmod(c.mnt, 0o777)
        b = c.mount_again(os.path.join(tmp_root, "mnt2"))
        yield c, c.mnt, b
    finally:
        c.down()
        c.force_cleanup()
        shutil.rmtree(tmp_root, ignore_errors=True)


def new_file(two_mounts, data=b""):
    """A fresh file; returns (path on mount A, path on mount B)."""
    _, a, b = two_mounts
    name = "f-" + uuid.uuid4().hex[:12]
    with open(os.path.join(a, name), "wb") as f:
        f.write(data)
    return os.path.join(a, name), os.path.join(b, name)


# A helper process that takes a lock, says "locked" (or the errno name),
# then waits for a line on stdin and exits (closing its fd drops the lock).
HOLDER = r"""
import errno, fcntl, os, signal, struct, sys
path, kind, mode, wait = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
class Alarm(Exception):
    pass
def on_alarm(signum, frame):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
if len(sys.argv) > 5:
    signal.alarm(int(sys.argv[5]))
fd = os.open(path, os.O_RDWR)
try:
    if kind == "flock":
        op = fcntl.LOCK_EX if mode == "w" else fcntl.LOCK_SH
        fcntl.flock(fd, op | (0 if wait else fcntl.LOCK_NB))
    else:
        t = fcntl.F_WRLCK if mode == "w" else fcntl.F_RDLCK
        if kind == "ofd":
            cmd = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
        else:
            cmd = fcntl.F_SETLKW if wait else fcntl.F_SETLK
        fcntl.fcntl(fd, cmd, struct.pack("hh4xqqi4x", t, 0, 0, 0, 0))
    signal.alarm(0)
    print("locked", flush=True)
except Alarm:
    print("EINTR", flush=True)
    sys.exit(0)
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
    sys.exit(0)
sys.stdin.readline()
"""


class Holder:
    def __init__(self, path, kind="posix", mode="w", wait=False, alarm=None):
        args = [sys.executable, "-c", HOLDER, path, kind, mode,
                "1" if wait else "0"]
        if alarm is not None:
            args.append(str(alarm))
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def result(self, timeout=20):
        """The first line the helper printed ("locked", "EAGAIN", ...)."""
        import select
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            return None
        return self.p.stdout.readline().strip()

    def pending(self, seconds):
        """True when the helper printed nothing within `seconds`."""
        import select
        r, _, _ = select.select([self.p.stdout], [], [], seconds)
        return not r

    def release(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("\n")
                self.p.stdin.flush()
            except BrokenPipeError:
                pass
        try:
            self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def holders():
    hs = []

    def make(*args, **kw):
        h = Holder(*args, **kw)
        hs.append(h)
        return h

    yield make
    for h in hs:
        h.release()


def flock_struct(t, start=0, length=0):
    return struct.pack("hh4xqqi4x", t, 0, start, length, 0)


def test_fcntl_lock_excludes_other_mount(two_mounts, holders):
    a, b = new_file(two_mounts, b"x" * 100)
    h = holders(a, "posix", "w")
    assert h.result() == "locked"
    # Write and read locks through the other mount are refused.
    assert holders(b, "posix", "w").result() == "EAGAIN"
    assert holders(b, "posix", "r").result() == "EAGAIN"
    # F_GETLK through the other mount reports the write lock.
    fd = os.open(b, os.O_RDWR)
    try:
        got = fcntl.fcntl(fd, fcntl.F_GETLK, flock_struct(fcntl.F_WRLCK))
        assert struct.unpack("hh4xqqi4x", got)[0] == fcntl.F_WRLCK
    finally:
        os.close(fd)
    h.release()
    assert holders(b, "posix", "w").result() == "locked"


def test_read_locks_share_across_mounts(two_mounts, holders):
    a, b = new_file(two_mounts, b"x" * 100)
    assert holders(a, "posix", "r").result() == "locked"
    assert holders(b, "posix", "r").result() == "locked"
    assert holders(b, "posix", "w").result() == "EAGAIN"


GETLK_HELPER = r"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
start, length = int(sys.argv[2]), int(sys.argv[3])
got = fcntl.fcntl(fd, fcntl.F_GETLK,
                  struct.pack("hh4xqqi4x", fcntl.F_WRLCK, 0, start, length, 0))
t, _, s, l, _ = struct.unpack("hh4xqqi4x", got)
print({fcntl.F_UNLCK: "U", fcntl.F_RDLCK: "R", fcntl.F_WRLCK: "W"}[t], s, l)
"""


def getlk_other_process(path, start, length):
    p = subprocess.run([sys.executable, "-c", GETLK_HELPER, path, str(start),
                        str(length)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_byte_ranges_and_same_owner(two_mounts):
    a, b = new_file(two_mounts, b"x" * 100)
    fa = os.open(a, os.O_RDWR)
    fa2 = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDWR)
    try:
        fcntl.lockf(fa, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)  # [0, 10)
        # The same process (same owner) never conflicts with itself, even
        # through another fd, and may convert parts of its lock.
        fcntl.lockf(fa2, fcntl.LOCK_SH | fcntl.LOCK_NB, 5, 0)  # [0,5) read
        fcntl.lockf(fa2, fcntl.LOCK_EX | fcntl.LOCK_NB, 20, 0)  # [0, 20)
        # The other mount cannot take any of it.
        for start in (0, 15, 19):
            with pytest.raises(OSError) as e:
                fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, start)
            assert e.value.errno in (errno.EAGAIN, errno.EACCES)
        # Unlock the middle: another process on this mount sees exactly
        # the ranges that are left.
        fcntl.lockf(fa, fcntl.LOCK_UN, 5, 10)  # [10, 15)
        assert getlk_other_process(a, 10, 5) == ["U", "10", "5"]
        assert getlk_other_process(a, 12, 10) == ["W", "15", "5"]
        assert getlk_other_process(a, 0, 1) == ["W", "0", "10"]
        # A process on the other mount sees a write lock too.
        assert getlk_other_process(b, 0, 1)[0] == "W"
        # Dropping all of it frees the file for the other mount.
        fcntl.lockf(fa, fcntl.LOCK_UN, 0, 0)
        fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 12)
    finally:
        os.close(fa)
        os.close(fa2)
        os.close(fb)


def test_close_drops_posix_locks(two_mounts):
    a, b = new_file(two_mounts, b"x" * 100)
    fa = os.open(a, os.O_RDWR)
    fa2 = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDWR)
    try:
        fcntl.lockf(fa, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # POSIX: closing ANY fd of the file drops the process's locks.
        os.close(fa2)
        fa2 = -1
        fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        for fd in (fa, fa2, fb):
            if fd >= 0:
                os.close(fd)


def test_blocked_waiter_gets_lock_on_release(two_mounts, holders):
    a, b = new_file(two_mounts, b"x" * 100)
    h = holders(a, "posix", "w")
    assert h.result() == "locked"
    w = holders(b, "posix", "w", wait=True)
    assert w.pending(1.5), "waiter got the lock while it was held"
    h.release()
    assert w.result(timeout=20) == "locked"


def test_signal_interrupts_waiter(two_mounts, holders):
    a, b = new_file(two_mounts, b"x" * 100)
    h = holders(a, "posix", "w")
    assert h.result() == "locked"
    w = holders(b, "posix", "w", wait=True, alarm=1)
    assert w.result(timeout=20) == "EINTR"
    w.release()
    # The holder still holds it.
    assert holders(b, "posix", "w").result() == "EAGAIN"
    h.release()
    assert holders(b, "posix", "w").result() == "locked"


def test_flock_excludes_other_mount(two_mounts, holders):
    a, b = new_file(two_mounts, b"x")
    h = holders(a, "flock", "w")
    assert h.result() == "locked"
    assert holders(b, "flock", "w").result() == "EAGAIN"
    assert holders(b, "flock", "r").result() == "EAGAIN"
    w = holders(b, "flock", "w", wait=True)
    assert w.pending(1.0)
    h.release()
    assert w.result(timeout=20) == "locked"


def test_flock_shared(two_mounts, holders):
    a, b = new_file(two_mounts, b"x")
    assert holders(a, "flock", "r").result() == "locked"
    assert holders(b, "flock", "r").result() == "locked"
    assert holders(b, "flock", "w").result() == "EAGAIN"


def test_ofd_locks(two_mounts):
    a, b = new_file(two_mounts, b"x" * 100)
    f1 = os.open(a, os.O_RDWR)
    f2 = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDWR)
    try:
        fcntl.fcntl(f1, fcntl.F_OFD_SETLK, flock_struct(fcntl.F_WRLCK))
        # Another open file description conflicts, even in this process
        # and on this mount; so does one on the other mount.
        for fd in (f2, fb):
            with pytest.raises(OSError) as e:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                            flock_struct(fcntl.F_WRLCK))
            assert e.value.errno == errno.EAGAIN
        got = fcntl.fcntl(fb, fcntl.F_OFD_GETLK, flock_struct(fcntl.F_RDLCK))
        assert struct.unpack("hh4xqqi4x", got)[0] == fcntl.F_WRLCK
        # The last close of the description drops its lock (FUSE sends
        # that release asynchronously, right after close returns).
        os.close(f1)
        f1 = -1

        def try_lock():
            try:
                fcntl.fcntl(fb, fcntl.F_OFD_SETLK, flock_struct(fcntl.F_WRLCK))
                return True
            except BlockingIOError:
                return False

        assert wait_for(try_lock, timeout=5)
        with pytest.raises(OSError):
            fcntl.fcntl(f2, fcntl.F_OFD_SETLK, flock_struct(fcntl.F_WRLCK))
    finally:
        for fd in (f1, f2, fb):
            if fd >= 0:
                os.close(fd)


# (setlk, getlk, l_pid that F_GETLK reports for a holder on another mount:
# 0 for classic locks (the pid is not known there), -1 for OFD locks).
LOCK_KINDS = [
    pytest.param(fcntl.F_SETLK, fcntl.F_GETLK, 0, id="posix"),
    pytest.param(fcntl.F_OFD_SETLK, fcntl.F_OFD_GETLK, -1, id="ofd"),
]


def setlk(fd, cmd, t, start, length):
    fcntl.fcntl(fd, cmd, flock_struct(t, start, length))


def getlk(fd, cmd, t, start, length):
    """(type, start, len, pid) of the lock F_GETLK reports."""
    t, _, s, l, pid = struct.unpack(
        "hh4xqqi4x", fcntl.fcntl(fd, cmd, flock_struct(t, start, length)))
    return t, s, l, pid


def refused(fd, cmd, t, start, length):
    with pytest.raises(OSError) as e:
        setlk(fd, cmd, t, start, length)
    return e.value.errno in (errno.EAGAIN, errno.EACCES)


@pytest.mark.parametrize("setcmd,getcmd,remote_pid", LOCK_KINDS)
def test_disjoint_ranges_across_mounts_are_exact(two_mounts, setcmd, getcmd,
                                                 remote_pid):
    a, b = new_file(two_mounts, b"x" * 1000)
    fa = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDWR)
    try:
        # [0, 99] on A, then the adjacent [100, 199] and a far range on B:
        # nothing is widened, so all are granted at once.
        setlk(fa, setcmd, fcntl.F_WRLCK, 0, 100)
        setlk(fb, setcmd, fcntl.F_WRLCK, 100, 100)
        setlk(fb, setcmd, fcntl.F_RDLCK, 300, 50)
        setlk(fa, setcmd, fcntl.F_RDLCK, 300, 10)  # read locks share
        setlk(fa, setcmd, fcntl.F_WRLCK, 400, 1)
        # One byte of overlap is enough to be refused, both ways.
        assert refused(fb, setcmd, fcntl.F_RDLCK, 99, 2)
        assert refused(fa, setcmd, fcntl.F_WRLCK, 199, 1)
        assert refused(fa, setcmd, fcntl.F_WRLCK, 349, 1)
        # F_GETLK names the other mount's lock with its exact range.
        assert getlk(fb, getcmd, fcntl.F_WRLCK, 0, 1000) == (
            fcntl.F_WRLCK, 0, 100, remote_pid)
        assert getlk(fb, getcmd, fcntl.F_WRLCK, 50, 1) == (
            fcntl.F_WRLCK, 0, 100, remote_pid)
        assert getlk(fa, getcmd, fcntl.F_WRLCK, 150, 10) == (
            fcntl.F_WRLCK, 100, 100, remote_pid)
        assert getlk(fa, getcmd, fcntl.F_WRLCK, 340, 5) == (
            fcntl.F_RDLCK, 300, 50, remote_pid)
        # A read lock does not conflict with a read lock; the gap is free.
        assert getlk(fa, getcmd, fcntl.F_RDLCK, 300, 50)[0] == fcntl.F_UNLCK
        assert getlk(fb, getcmd, fcntl.F_WRLCK, 200, 100)[0] == fcntl.F_UNLCK
    finally:
        os.close(fa)
        os.close(fb)


@pytest.mark.parametrize("setcmd,getcmd,remote_pid", LOCK_KINDS)
def test_unlocking_a_sub_range_splits_the_lock(two_mounts, setcmd, getcmd,
                                               remote_pid):
    a, b = new_file(two_mounts, b"x" * 1000)
    fa = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDWR)
    try:
        setlk(fa, setcmd, fcntl.F_WRLCK, 0, 200)
        setlk(fa, setcmd, fcntl.F_UNLCK, 50, 50)  # [50, 99]
        setlk(fb, setcmd, fcntl.F_WRLCK, 50, 50)
        assert refused(fb, setcmd, fcntl.F_WRLCK, 0, 50)
        assert refused(fb, setcmd, fcntl.F_RDLCK, 49, 1)
        assert refused(fb, setcmd, fcntl.F_RDLCK, 100, 1)
        assert getlk(fb, getcmd, fcntl.F_RDLCK, 0, 10) == (
            fcntl.F_WRLCK, 0, 50, remote_pid)
        assert getlk(fb, getcmd, fcntl.F_RDLCK, 120, 0) == (
            fcntl.F_WRLCK, 100, 100, remote_pid)
        # Down-convert a part: B may then read-lock it, not write-lock it.
        setlk(fa, setcmd, fcntl.F_RDLCK, 150, 50)
        setlk(fb, setcmd, fcntl.F_RDLCK, 160, 10)
        assert refused(fb, setcmd, fcntl.F_WRLCK, 160, 1)
        assert refused(fb, setcmd, fcntl.F_RDLCK, 149, 1)
        # Unlocking everything on A frees all of it.
        setlk(fa, setcmd, fcntl.F_UNLCK, 0, 0)
        setlk(fb, setcmd, fcntl.F_WRLCK, 0, 50)
        setlk(fb, setcmd, fcntl.F_WRLCK, 100, 50)
    finally:
        os.close(fa)
        os.close(fb)


@pytest.mark.parametrize("kind", ["flock", "ofd"])
def test_last_close_releases_at_once(two_mounts, kind):
    """close(2) of the last fd of an open file on A drops its flock / OFD
    lock before close returns: B's non-blocking lock right after succeeds,
    every time."""
    a, b = new_file(two_mounts, b"x")

    def lock(fd):
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            setlk(fd, fcntl.F_OFD_SETLK, fcntl.F_WRLCK, 0, 0)

    def unlock(fd):
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            setlk(fd, fcntl.F_OFD_SETLK, fcntl.F_UNLCK, 0, 0)

    failures = 0
    for _ in range(200):
        fa = os.open(a, os.O_RDWR)
        lock(fa)
        os.close(fa)
        fb = os.open(b, os.O_RDWR)
        try:
            try:
                lock(fb)
            except BlockingIOError:
                failures += 1
                continue
            unlock(fb)
        finally:
            os.close(fb)
    assert failures == 0, f"{failures}/200 locks on B refused right after close on A"


SETLKW_HELPER = r"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_SETLKW, struct.pack("hh4xqqi4x", fcntl.F_WRLCK, 0,
                                            int(sys.argv[2]),
                                            int(sys.argv[3]), 0))
print("locked", flush=True)
sys.stdin.readline()
"""


def test_split_keeps_what_the_owner_keeps_from_a_waiter(two_mounts):
    """A holds [0, 199]; a waiter on B wants [0, 49]. A unlocks [50, 99]
    and downgrades [150, 199] to read: the waiter must not slip into what
    A keeps; it gets [0, 49] only when A lets go of it."""
    a, b = new_file(two_mounts, b"x" * 1000)
    fa = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDWR)
    setlk(fa, fcntl.F_SETLK, fcntl.F_WRLCK, 0, 200)
    waiter = subprocess.Popen([sys.executable, "-c", SETLKW_HELPER, b, "0",
                               "50"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        w = Holder.__new__(Holder)
        w.p = waiter
        assert w.pending(1.0), "the waiter got a lock A holds"
        setlk(fa, fcntl.F_SETLK, fcntl.F_UNLCK, 50, 50)
        setlk(fa, fcntl.F_SETLK, fcntl.F_RDLCK, 150, 50)
        assert w.pending(1.0), "the waiter slipped into what A kept"
        # What A gave up is free, what it kept is not.
        setlk(fb, fcntl.F_SETLK, fcntl.F_WRLCK, 50, 50)
        setlk(fb, fcntl.F_SETLK, fcntl.F_RDLCK, 160, 10)
        assert refused(fb, fcntl.F_SETLK, fcntl.F_RDLCK, 0, 1)
        assert refused(fb, fcntl.F_SETLK, fcntl.F_RDLCK, 120, 1)
        assert refused(fb, fcntl.F_SETLK, fcntl.F_WRLCK, 199, 1)
        setlk(fa, fcntl.F_SETLK, fcntl.F_UNLCK, 0, 50)
        assert w.result(timeout=20) == "locked"
    finally:
        if waiter.poll() is None:
            waiter.kill()
        waiter.wait()
        os.close(fa)
        os.close(fb)
