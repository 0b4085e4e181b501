"""The lock service as part of a cluster: `stripefs cluster up` starts
stripefs-dlm (first) and hands its address to the MDS, `cluster status` shows
it with its sessions and locks, and `stripefs server stop/start dlm` (SIGTERM)
or a kill -9 plus `server start dlm` under two mounts running I/O loops makes
no syscall fail; the data verifies afterwards and both mounts keep working.

This module runs its own cluster (2 OSS, two mounts) so that restarting the
DLM cannot disturb tests that use the session cluster.

An fcntl lock held across each restart: `RestartChecks` below takes it on
mount A before the DLM goes down and checks afterwards that mount B is still
refused, then that B gets it once A unlocks.
"""

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import make_cluster, mount_daemon_pid, wait_for
from helpers import ask, two_mount_cluster

LOOP_MAX_SECONDS = 60      # a worker never runs longer than this
LOOP_MAX_FILES = 400       # nor writes more files than this
WORKERS_PER_MOUNT = 2
JOIN_TIMEOUT = 90          # a worker that has not exited by then is a failure

# A worker: create/write/fsync/close, reopen/read/verify, repeated until the
# stop file appears (or its bounds are hit). Each file's bytes derive from its
# name so any mount can verify it later. Prints one JSON line at exit.
WORKER = r"""
import hashlib, json, os, sys, time
d, prefix, stop, max_files, max_s = sys.argv[1:6]
max_files, max_s = int(max_files), float(max_s)
def content(name):
    seed = hashlib.sha256(name.encode()).digest()
    return seed * (1 + (seed[0] % 64) * 32)   # 32 B .. 64 KiB
errors, ops, names, slowest = [], 0, [], 0.0
start = time.monotonic()
i = 0
while (i < max_files and time.monotonic() - start < max_s
       and not os.path.exists(stop)):
    name = "%s-%05d" % (prefix, i)
    path = os.path.join(d, name)
    data = content(name)
    t0 = time.monotonic()
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            n = os.write(fd, data)
            if n != len(data):
                errors.append("%s: short write %d/%d" % (name, n, len(data)))
            os.fsync(fd)
        finally:
            os.close(fd)
        with open(path, "rb") as f:
            back = f.read()
        if back != data:
            errors.append("%s: read back %d bytes, differ" % (name, len(back)))
        st = os.stat(path)
        if st.st_size != len(data):
            errors.append("%s: size %d != %d" % (name, st.st_size, len(data)))
        ops += 1
        names.append(name)
        slowest = max(slowest, time.monotonic() - t0)
    except OSError as e:
        errors.append("%s: %s" % (name, e))
    i += 1
print(json.dumps({"ops": ops, "errors": errors[:20], "nerrors": len(errors),
                  "names": names, "slowest": slowest}))
"""


def content(name):
    seed = hashlib.sha256(name.encode()).digest()
    return seed * (1 + (seed[0] % 64) * 32)


class RestartChecks:
    """An fcntl lock held across a DLM restart.

    before(a, b): a helper process takes an exclusive fcntl lock on a file
    through mount A and keeps it; mount B must be refused (EAGAIN/EACCES).
    after(a, b): the holder is still alive, B is still refused, so the lock
    survived the restart; then the holder unlocks and B gets the lock at
    once, so the lock state is live and coherent. close() stops the holder
    also on failure."""

    HOLDER = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "fcntl.lockf(fd, fcntl.LOCK_UN)\n"
        "print('unlocked', flush=True)\n"
        "sys.stdin.readline()\n")

    def __init__(self):
        self.holder = None
        self.name = "held-lock-" + uuid.uuid4().hex[:8]

    @staticmethod
    def _try_lock(path):
        """True if this process can lock `path` exclusively right now."""
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            assert e.errno in (errno.EAGAIN, errno.EACCES), e
            return False
        finally:
            os.close(fd)  # also drops a lock we got
        return True

    def before(self, mnt_a, mnt_b):
        path_a = os.path.join(mnt_a, self.name)
        with open(path_a, "wb") as f:
            f.write(b"lock me")
        self.holder = subprocess.Popen(
            [sys.executable, "-c", self.HOLDER, path_a],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout.readline().strip() == "locked"
        assert not self._try_lock(os.path.join(mnt_b, self.name)), \
            "mount B got a lock that mount A holds"

    def after(self, mnt_a, mnt_b):
        path_b = os.path.join(mnt_b, self.name)
        assert self.holder.poll() is None, "lock holder died"
        assert not self._try_lock(path_b), \
            "the fcntl lock held on mount A was lost across the DLM restart"
        self.holder.stdin.write("\n")
        self.holder.stdin.flush()
        assert self.holder.stdout.readline().strip() == "unlocked"
        assert self._try_lock(path_b), "mount B still refused after unlock"

    def close(self):
        """Releases whatever before() took; called also on failure."""
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait(timeout=30)


@pytest.fixture(scope="module")
def dlm_cluster():
    tmp_root = tempfile.mkdtemp(prefix="stripefs-dlm-e2e-")
    os.chmod(tmp_root, 0o755)
    c = make_cluster(tmp_root, oss=2)
    try:
        c.up(mount=True)
        os.chmod(c.mnt, 0o777)
        c.mnt_b = c.mount_again(os.path.join(tmp_root, "mnt-b"))
        yield c
    finally:
        c.down()
        c.force_cleanup()
        shutil.rmtree(tmp_root, ignore_errors=True)


def dlm_entry(c):
    for s in c.status():
        if s["target"] == "dlm":
            return s
    raise AssertionError(f"no dlm in status: {c.status()}")


def pid_of(c, target):
    with open(os.path.join(c.home, "run", f"{target}.pid")) as f:
        return int(f.read().strip())


def test_config_and_mds_point_at_the_dlm(dlm_cluster):
    c = dlm_cluster
    dlm = c.server("dlm")
    assert dlm["role"] == "dlm"
    assert dlm["address"].startswith("127.0.0.1:")
    assert os.path.isdir(dlm["data"])
    addrs = [s["address"] for s in c.config()["servers"]]
    assert len(set(addrs)) == len(addrs)
    with open(f"/proc/{pid_of(c, 'mdt0')}/cmdline", "rb") as f:
        cmd = f.read().decode().split("\0")
    assert "--dlm" in cmd and cmd[cmd.index("--dlm") + 1] == dlm["address"]
    with open(f"/proc/{pid_of(c, 'dlm')}/cmdline", "rb") as f:
        cmd = f.read().split(b"\0")
    assert os.path.basename(cmd[0]) == b"stripefs-dlm"


def test_status_shows_dlm_sessions_locks_and_rpc_counts(dlm_cluster):
    c = dlm_cluster
    # Some activity on both mounts so that they hold sessions (and locks).
    for m in (c.mnt, c.mnt_b):
        p = os.path.join(m, "status-probe-" + os.path.basename(m))
        with open(p, "wb") as f:
            f.write(b"x" * 100)
        os.stat(p)
    status = c.status()
    by_target = {s["target"]: s for s in status}
    assert set(by_target) == {"mdt0", "ost0", "ost1", "dlm"}
    for s in status:
        assert s["state"] == "running", s
        assert isinstance(s["rpc_counts"], dict), s
    assert sum(by_target["mdt0"]["rpc_counts"].values()) > 0
    d = by_target["dlm"]
    assert d["role"] == "dlm"
    assert isinstance(d["sessions"], int) and isinstance(d["locks"], int)
    # Both mounts connected to the lock service.
    assert wait_for(lambda: dlm_entry(c)["sessions"] >= 2, timeout=10), \
        dlm_entry(c)
    assert "sessions" not in by_target["mdt0"]
    out = c.cli("cluster", "status", "--home", c.home).stdout
    lines = [l for l in out.splitlines() if l.split()[:1] == ["dlm"]]
    assert len(lines) == 1, out
    assert "sessions=" in lines[0] and "locks=" in lines[0]
    assert f"pid={d['pid']}" in lines[0]


def test_server_stop_start_unknown_target(dlm_cluster):
    c = dlm_cluster
    p = c.cli("server", "stop", "--home", c.home, "nosuch", check=False)
    assert p.returncode != 0 and "nosuch" in p.stderr
    # Starting a running server is a no-op that succeeds.
    pid = pid_of(c, "dlm")
    c.cli("server", "start", "--home", c.home, "dlm")
    assert pid_of(c, "dlm") == pid


def stuck_report(pid):
    """Where a stuck process waits (wchan, syscall) for the failure text."""
    out = []
    for f in ("wchan", "syscall"):
        try:
            with open(f"/proc/{pid}/{f}") as fh:
                out.append(f"{f}={fh.read().strip()}")
        except OSError:
            pass
    return " ".join(out)


def log_tails(home, lines=8):
    out = []
    log = os.path.join(home, "log")
    for name in sorted(os.listdir(log)):
        with open(os.path.join(log, name), errors="replace") as f:
            tail = f.readlines()[-lines:]
        out.append(f"--- {name}\n" + "".join(tail))
    return "\n".join(out)


class Loops:
    """WORKERS_PER_MOUNT worker processes per mount, bounded in time and
    files; stop() collects their reports, kill() is the cleanup."""

    def __init__(self, mounts, tag):
        self.stop_file = tempfile.mktemp(prefix="stripefs-dlm-stop-")
        self.procs = []
        for m in mounts:
            d = os.path.join(m, f"loop-{tag}")
            os.makedirs(d, exist_ok=True)
            for w in range(WORKERS_PER_MOUNT):
                prefix = f"{tag}-{os.path.basename(m)}-{w}"
                p = subprocess.Popen(
                    [sys.executable, "-c", WORKER, d, prefix, self.stop_file,
                     str(LOOP_MAX_FILES), str(LOOP_MAX_SECONDS)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.procs.append((m, d, p))

    def stop(self, home):
        with open(self.stop_file, "w"):
            pass
        reports = []
        deadline = time.monotonic() + JOIN_TIMEOUT
        for m, d, p in self.procs:
            try:
                out, err = p.communicate(
                    timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"a worker on {m} is stuck (> {JOIN_TIMEOUT}s): "
                    f"{stuck_report(p.pid)}\n{log_tails(home)}")
            assert p.returncode == 0, f"worker on {m} exited {p.returncode}: {err}"
            reports.append((m, d, json.loads(out.strip().splitlines()[-1])))
        return reports

    def kill(self):
        for _, _, p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.path.exists(self.stop_file):
            os.unlink(self.stop_file)


def restart_under_io(c, tag, how):
    a, b = c.mnt, c.mnt_b
    checks = RestartChecks()
    loops = Loops([a, b], tag)
    try:
        time.sleep(1.0)  # let the loops get going
        checks.before(a, b)
        old_pid = pid_of(c, "dlm")
        if how == "sigterm":
            c.cli("server", "stop", "--home", c.home, "dlm")
        else:
            os.kill(old_pid, signal.SIGKILL)
        assert wait_for(lambda: not os.path.exists(f"/proc/{old_pid}"),
                        timeout=15), "old stripefs-dlm still running"
        assert dlm_entry(c)["state"] == "stopped"
        time.sleep(1.0)  # I/O continues (or waits) with the DLM down
        c.cli("server", "start", "--home", c.home, "dlm")
        new_pid = pid_of(c, "dlm")
        assert new_pid != old_pid
        time.sleep(2.0)  # and after it is back
        reports = loops.stop(c.home)
        checks.after(a, b)
    finally:
        loops.kill()
        checks.close()
    total = 0
    for m, d, r in reports:
        assert r["nerrors"] == 0, f"syscalls failed on {m}: {r['errors']}"
        assert r["ops"] > 0, f"no I/O done on {m}"
        total += r["ops"]
    slowest = max(r["slowest"] for _, _, r in reports)
    print(f"{tag}: {total} create/write/fsync/read/verify rounds across "
          f"{len(reports)} workers, slowest round {slowest:.1f}s")
    # Every file verifies, read through the other mount.
    for m, d, r in reports:
        other = b if m == a else a
        od = os.path.join(other, os.path.relpath(d, m))
        for name in r["names"]:
            with open(os.path.join(od, name), "rb") as f:
                assert f.read() == content(name), f"{name} via {other}"
    # The DLM is back with both mounts' sessions, and the mounts work:
    # a file written on A is read on B, a new entry on B is seen by A.
    assert wait_for(lambda: dlm_entry(c)["state"] == "running", timeout=10)
    assert wait_for(lambda: (dlm_entry(c)["sessions"] or 0) >= 2, timeout=30), \
        dlm_entry(c)
    p = os.path.join(a, f"after-{tag}")
    with open(p, "wb") as f:
        f.write(b"after restart " + tag.encode())
    with open(os.path.join(b, f"after-{tag}"), "rb") as f:
        assert f.read() == b"after restart " + tag.encode()
    os.mkdir(os.path.join(b, f"dir-{tag}"))
    assert f"dir-{tag}" in os.listdir(a)
    return total


def test_dlm_sigterm_restart_under_io(dlm_cluster):
    assert restart_under_io(dlm_cluster, "term", "sigterm") > 0


def test_dlm_kill9_restart_under_io(dlm_cluster):
    assert restart_under_io(dlm_cluster, "kill", "kill9") > 0


def test_down_stops_dlm_last_and_up_restarts_it(dlm_cluster):
    c = dlm_cluster
    out = c.cli("cluster", "down", "--home", c.home).stdout
    order = [l.split()[0] for l in out.splitlines()
             if l.split()[1:2] in (["stopped"], ["killed"])]
    assert order and order[-1] == "dlm", out
    assert order.index("mdt0") < order.index("dlm")
    assert all(s["state"] == "stopped" for s in c.status())
    out = c.cli("cluster", "up", "--home", c.home, "--mount", c.mnt).stdout
    ups = [l.split()[0] for l in out.splitlines() if " up at " in l]
    assert ups and ups[0] == "dlm", out
    c.mnt_b = c.mount_again(c.mnt_b)
    assert all(s["state"] == "running" for s in c.status())
    # Data written before the restarts is still there.
    assert [n for n in os.listdir(os.path.join(c.mnt, "loop-term"))]


def test_no_dlm_cluster_runs_without_lock_service(tmp_path):
    c = make_cluster(str(tmp_path), oss=1)
    try:
        os.makedirs(c.mnt, exist_ok=True)
        c.cli("cluster", "up", "--home", c.home, "--oss", 1, "--no-dlm",
              "--mount", c.mnt)
        assert "dlm" not in [s["role"] for s in c.config()["servers"]]
        assert [s["target"] for s in c.status()] == ["mdt0", "ost0"]
        with open(f"/proc/{pid_of(c, 'mdt0')}/cmdline", "rb") as f:
            assert b"--dlm" not in f.read().split(b"\0")
        p = os.path.join(c.mnt, "plain")
        with open(p, "wb") as f:
            f.write(b"no lock service" * 1000)
        with open(p, "rb") as f:
            assert f.read() == b"no lock service" * 1000
        p = c.cli("server", "start", "--home", c.home, "dlm", check=False)
        assert p.returncode != 0 and "no server 'dlm'" in p.stderr
    finally:
        c.down()
        c.force_cleanup()


# ---- Eviction: a mount that stops answering is evicted and carries on.

EVICT_CALLBACK_TIMEOUT = 2  # seconds (stripefs-dlm --callback-timeout)


@pytest.fixture
def evict_cluster():
    """A cluster whose DLM evicts after EVICT_CALLBACK_TIMEOUT seconds
    (passed to stripefs-dlm through its environment), mounted twice."""
    with two_mount_cluster("stripefs-evict-e2e-",
                           EVICT_CALLBACK_TIMEOUT) as c:
        yield c


# Runs one operation on a path; prints "ok <result>" or the errno name.
# Run with a timeout: a hang is the failure this guards against.
OP = r"""
import errno, fcntl, os, struct, sys
op, path = sys.argv[1], sys.argv[2]
def lk(t):
    return struct.pack("hh4xqqi4x", t, 0, 0, 0, 0)
try:
    if op == "stat":
        r = os.stat(path).st_size
    elif op == "read":
        with open(path, "rb") as f:
            r = f.read().decode()
    elif op == "write":
        with open(path, "r+b") as f:
            f.write(sys.argv[3].encode())
        r = ""
    elif op == "setlkw":
        fd = os.open(path, os.O_RDWR)
        fcntl.fcntl(fd, fcntl.F_SETLKW, lk(fcntl.F_WRLCK))
        print("ok locked", flush=True)
        sys.stdin.readline()
        sys.exit(0)
    elif op == "setlk":
        fd = os.open(path, os.O_RDWR)
        fcntl.fcntl(fd, fcntl.F_SETLK, lk(fcntl.F_WRLCK))
        os.close(fd)
        r = "locked"
    elif op == "getlk":
        fd = os.open(path, os.O_RDWR)
        t = struct.unpack("hh4xqqi4x",
                          fcntl.fcntl(fd, fcntl.F_GETLK, lk(fcntl.F_WRLCK)))[0]
        r = {fcntl.F_UNLCK: "U", fcntl.F_RDLCK: "R", fcntl.F_WRLCK: "W"}[t]
    print("ok", r, flush=True)
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
"""


def run_op(op, path, *args, timeout=20):
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-c", OP, op, path, *args],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{op} {path} hung for {timeout}s")
    return p.stdout.strip(), time.monotonic() - t0


# Holds an fcntl write lock on a file; on each stdin line ("getlk",
# "setlk", "unlock") runs that on its own lock and prints the outcome.
LOCK_HOLDER = r"""
import errno, fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
def lk(t):
    return struct.pack("hh4xqqi4x", t, 0, 0, 0, 0)
fcntl.fcntl(fd, fcntl.F_SETLK, lk(fcntl.F_WRLCK))
print("locked", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    try:
        if cmd == "getlk":
            t = struct.unpack("hh4xqqi4x",
                              fcntl.fcntl(fd, fcntl.F_GETLK,
                                          lk(fcntl.F_WRLCK)))[0]
            print({fcntl.F_UNLCK: "U", fcntl.F_RDLCK: "R",
                   fcntl.F_WRLCK: "W"}[t], flush=True)
        elif cmd == "setlk":
            fcntl.fcntl(fd, fcntl.F_SETLK, lk(fcntl.F_WRLCK))
            print("locked", flush=True)
        elif cmd == "unlock":
            fcntl.fcntl(fd, fcntl.F_SETLK, lk(fcntl.F_UNLCK))
            print("unlocked", flush=True)
        else:
            break
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


def test_evicted_mount_never_hangs(evict_cluster):
    """Mount A's daemon is stopped (SIGSTOP) while it holds a cached write
    data lock and an fcntl lock; B's conflicting write and F_SETLKW are
    granted once the DLM evicted A (not hung). After SIGCONT, A notices,
    drops what it lost and carries on: its stat/read/write/fcntl calls all
    return within a bounded time, with B's data and B's lock visible, and
    the lost fcntl lock is reported as lost (ENOLCK), never as held."""
    c = evict_cluster
    name = "evict-" + uuid.uuid4().hex[:8]
    fa, fb = os.path.join(c.mnt, name), os.path.join(c.mnt_b, name)
    la, lb = fa + ".lock", fb + ".lock"
    with open(fa, "wb") as f:
        f.write(b"AAAA")  # A now caches a write data lock on it
    with open(la, "wb") as f:
        f.write(b"x")
    assert run_op("stat", fb)[0] == "ok 4"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, la],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    waiter = None
    pid = mount_daemon_pid(c.mnt)
    stopped = False
    try:
        assert holder.stdout.readline().strip() == "locked"
        with open(fa, "r+b") as f:  # a fresh write under the data lock
            f.write(b"aaaa")
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        # B's conflicting write: granted after A's eviction, not hung.
        out, took = run_op("write", fb, "BBBB", timeout=EVICT_CALLBACK_TIMEOUT + 25)
        assert out == "ok", out
        # B's blocking fcntl lock on A's locked file is granted too.
        waiter = subprocess.Popen([sys.executable, "-c", OP, "setlkw", lb],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        import select
        r, _, _ = select.select([waiter.stdout], [], [],
                                EVICT_CALLBACK_TIMEOUT + 25)
        assert r, "B's F_SETLKW was not granted after A's eviction"
        assert waiter.stdout.readline().strip() == "ok locked"
        assert run_op("read", fb)[0] == "ok BBBB"
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
    # The DLM said whom it evicted and why.
    assert subprocess.run(["grep", "-rq", "evicting client", c.home]
                          ).returncode == 0, log_tails(c.home)
    try:
        # A carries on, each call bounded; it sees B's data and B's lock.
        assert run_op("stat", fa, timeout=30)[0] == "ok 4"
        assert run_op("read", fa, timeout=30)[0] == "ok BBBB"
        assert run_op("getlk", la, timeout=30)[0] == "ok W"
        assert run_op("setlk", la, timeout=30)[0] in ("EAGAIN", "EACCES")
        # The holder's lost lock: F_GETLK shows B's lock (not its own as
        # held); its next F_SETLK says the lock was lost, then B's holds.
        assert ask(holder, "getlk", timeout=30) == "W"
        assert ask(holder, "setlk", timeout=30) == "ENOLCK"
        assert ask(holder, "setlk", timeout=30) in ("EAGAIN", "EACCES")
        # A writes again (after B): B reads A's bytes.
        assert run_op("write", fa, "CC", timeout=30)[0] == "ok"
        assert run_op("read", fb)[0] == "ok CCBB"
        # B lets go: A's holder gets the lock again.
        waiter.stdin.write("\n")
        waiter.stdin.flush()
        waiter.wait(timeout=20)
        assert wait_for(lambda: ask(holder, "setlk") == "locked", timeout=10)
        assert run_op("getlk", lb)[0] == "ok W"
    finally:
        for p in (holder, waiter):
            if p is None:
                continue
            if p.poll() is None:
                p.kill()
            p.wait()
