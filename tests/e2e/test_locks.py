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
import time
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
