"""Controlled failover, the clients' side (issue 4): a server stopped with
`stripefs server stop --controlled` (SIGUSR2: EX on active:<target>) while
two mounts keep files open. The mounts hold requests to that target at its
gate, reconnect to the next instance (`stripefs server start`), re-establish
their open files and carry on.

Each test runs its own cluster (DLM + MDS + 2 OSS, two mounts) because it
stops servers. The DLM evicts a holder that does not answer a callback after
CALLBACK_TIMEOUT seconds (the SIGSTOP cases rely on it).

Every helper process is bounded in time and killed in teardown; every mount
is unmounted and every server stopped, also on failure.
"""

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import BIN, mount_daemon_pid, wait_for, _mounted
from helpers import (HELPER_MAX_SECONDS, WRITER, ask, block, helper,
                     mount_log, server_log, two_mount_cluster)

CALLBACK_TIMEOUT = 3   # seconds (stripefs-dlm --callback-timeout)


@pytest.fixture
def fo_cluster():
    # A test may leave the MDS stopped: teardown starts it again.
    with two_mount_cluster("stripefs-failover-e2e-", CALLBACK_TIMEOUT,
                           restart=("mdt0",)) as c:
        c.direct_mounts = []
        try:
            yield c
        finally:
            for m in c.direct_mounts:
                if _mounted(m):
                    subprocess.run(["fusermount3", "-u", "-z", m],
                                   check=False)


def controlled_stop(c, target):
    t0 = time.monotonic()
    c.cli("server", "stop", "--controlled", "--home", c.home, target,
          timeout=90)
    return time.monotonic() - t0


def start(c, target):
    c.cli("server", "start", "--home", c.home, target, timeout=90)


def test_controlled_mds_restart_with_files_open_on_both_mounts(fo_cluster):
    """(a) Writers on both mounts hold a file open and keep writing while
    the MDS is stopped (controlled) and started again: no syscall fails,
    every byte is right (read back through the other mount), and the same
    descriptors keep working after the restart."""
    c = fo_cluster
    name = "fo-" + uuid.uuid4().hex[:8]
    paths, w = run_writers(c, name)
    before = {k: int(ask(p, "n")) for k, p in w.items()}
    stop_s = controlled_stop(c, "mdt0")
    time.sleep(1.0)  # the MDS stays down a while; writers wait or write
    start(c, "mdt0")
    # The same descriptors keep going after the restart.
    assert wait_for(
        lambda: all(int(ask(p, "n")) > before[k] + 16 for k, p in w.items()),
        timeout=60), "writers did not make progress after the MDS restart"
    results = {k: json.loads(ask(p, "stop", timeout=60)) for k, p in w.items()}
    for k, r in results.items():
        assert r["errors"] == [], (k, r)
    for m in (c.mnt, c.mnt_b):
        log = mount_log(c, m)
        assert "mdt0: the server asks for the target" in log, log
        assert "re-established 1 of 1 open files on the MDS" in log, log
    # Every record, read through the OTHER mount.
    for k, r in results.items():
        other = paths[k].replace(c.mnt_b, c.mnt) if k == "b" else \
            paths[k].replace(c.mnt, c.mnt_b)
        with open(other, "rb") as f:
            data = f.read()
        assert len(data) == r["n"] * 4096, (k, len(data), r["n"])
        for i in range(r["n"]):
            assert data[i * 4096:(i + 1) * 4096] == block(i, k), (k, i)
    print(f"controlled stop took {stop_s:.2f}s; slowest write+fsync "
          f"{max(r['slowest'] for r in results.values()):.2f}s")


# One syscall on request: "stat PATH" -> "ok SIZE" | errno name |
# "interrupted" when SIGUSR1 arrived while it was blocked (the handler
# raises, which Python does only once the syscall returned EINTR).
BLOCKER = r"""
import errno, os, signal, sys
class Interrupted(Exception):
    pass
def on_usr1(sig, frame):
    raise Interrupted()
signal.signal(signal.SIGUSR1, on_usr1)
print("ready", flush=True)
for line in sys.stdin:
    op, path = line.split()
    try:
        if op == "stat":
            print("ok", os.stat(path).st_size, flush=True)
        elif op == "create":
            with open(path, "wb") as f:
                f.write(b"created")
            print("ok", flush=True)
    except Interrupted:
        print("interrupted", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


def test_blocked_syscall_is_interrupted_while_mds_is_stopped(fo_cluster):
    """(b) With the MDS stopped (controlled) and not started again, a stat
    of a name the mount has not cached blocks at the MDS gate; SIGUSR1
    interrupts it (EINTR). After the MDS is back the mount works."""
    c = fo_cluster
    name = "fo-" + uuid.uuid4().hex[:8]
    with open(os.path.join(c.mnt, name), "wb") as f:
        f.write(b"x" * 100)
    # A directory the mount has never looked into: the root may be
    # "complete" in its cache (listed whole), which answers a missing name
    # with no MDS request.
    os.mkdir(os.path.join(c.mnt, name + "-d"))
    controlled_stop(c, "mdt0")
    p = helper(c, BLOCKER)
    assert p.stdout.readline().strip() == "ready"
    p.stdin.write(f"stat {os.path.join(c.mnt, name + '-d', 'new')}\n")
    p.stdin.flush()
    time.sleep(1.5)  # blocked at the gate, not failing
    import select
    r, _, _ = select.select([p.stdout], [], [], 0)
    assert not r, f"stat did not wait: {p.stdout.readline().strip()}"
    t0 = time.monotonic()
    os.kill(python_child(p.pid), signal.SIGUSR1)
    r, _, _ = select.select([p.stdout], [], [], 10)
    assert r, "stat was not interrupted within 10s"
    assert p.stdout.readline().strip() == "interrupted"
    assert time.monotonic() - t0 < 5
    start(c, "mdt0")
    assert ask(p, f"stat {os.path.join(c.mnt, name)}") == "ok 100"
    assert ask(p, f"create {os.path.join(c.mnt, name + '-2')}") == "ok"
    assert ask(p, f"stat {os.path.join(c.mnt_b, name + '-2')}") == "ok 7"


def python_child(timeout_pid):
    """The python process `timeout` runs (helpers run under timeout(1))."""
    with open(f"/proc/{timeout_pid}/task/{timeout_pid}/children") as f:
        kids = f.read().split()
    assert kids, "helper has no child process"
    return int(kids[0])


def test_new_mount_during_controlled_stop_waits_then_works(fo_cluster):
    """(c) A mount started while the MDS is stopped (controlled; its EX on
    active:mdt0 still held) waits instead of failing, and works once the
    next MDS instance is up."""
    c = fo_cluster
    mds_addr = c.server("mdt0")["address"]
    controlled_stop(c, "mdt0")
    mnt_c = os.path.join(os.path.dirname(c.mnt), "mnt-c")
    os.makedirs(mnt_c, exist_ok=True)
    c.direct_mounts.append(mnt_c)
    log = os.path.join(c.home, "log", "mount-failover-c.log")
    m = subprocess.Popen(
        ["timeout", str(HELPER_MAX_SECONDS),
         os.path.join(BIN, "stripefs-mount"), "--mds", mds_addr,
         "--log-file", log, mnt_c],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    c.helpers.append(m)
    time.sleep(2.0)
    assert m.poll() is None, f"mount gave up: {m.communicate()}"
    start(c, "mdt0")
    out, err = m.communicate(timeout=60)
    assert m.returncode == 0, err
    assert _mounted(mnt_c)
    name = "fo-" + uuid.uuid4().hex[:8]
    with open(os.path.join(mnt_c, name), "wb") as f:
        f.write(b"from the new mount")
    with open(os.path.join(c.mnt, name), "rb") as f:
        assert f.read() == b"from the new mount"


def test_new_mount_while_mds_is_stopping_waits_then_works(fo_cluster):
    """(c') The MDS is IN its controlled shutdown (its EX on active:mdt0 is
    queued: mount A, stopped with SIGSTOP, does not answer the callback
    until the DLM evicts it) when a new mount starts through the CLI: the
    mount gets its configuration, queues its PR behind the EX and waits;
    once the next MDS instance is up it completes and works."""
    c = fo_cluster
    pid_a = mount_daemon_pid(c.mnt)
    c.stopped_pids = [pid_a]
    mnt_c = os.path.join(os.path.dirname(c.mnt), "mnt-c")
    os.makedirs(mnt_c, exist_ok=True)
    c.direct_mounts.append(mnt_c)
    os.kill(pid_a, signal.SIGSTOP)
    try:
        stopper = subprocess.Popen(
            ["timeout", str(HELPER_MAX_SECONDS),
             os.path.join(BIN, "stripefs"), "server", "stop", "--controlled",
             "--home", c.home, "mdt0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c.helpers.append(stopper)
        time.sleep(0.3)  # the MDS asked for EX; A cannot answer
        mounter = subprocess.Popen(
            ["timeout", str(HELPER_MAX_SECONDS),
             os.path.join(BIN, "stripefs"), "mount", "--home", c.home, mnt_c],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c.helpers.append(mounter)
        out, err = stopper.communicate(timeout=60)
        assert stopper.returncode == 0, err
        time.sleep(0.5)
        assert mounter.poll() is None, mounter.communicate()
        start(c, "mdt0")
        out, err = mounter.communicate(timeout=60)
        assert mounter.returncode == 0, err
    finally:
        os.kill(pid_a, signal.SIGCONT)
    assert _mounted(mnt_c)
    # It reached the old MDS (configuration), then waited for the active
    # lock and connected again to the new one.
    assert mount_log(c, mnt_c).count("connected to mdt0") >= 2, \
        mount_log(c, mnt_c)
    name = "fo-" + uuid.uuid4().hex[:8]
    with open(os.path.join(mnt_c, name), "wb") as f:
        f.write(b"from the new mount")
    with open(os.path.join(c.mnt_b, name), "rb") as f:
        assert f.read() == b"from the new mount"
    # A (evicted, nothing open) carries on too.
    assert wait_for(lambda: os.path.exists(os.path.join(c.mnt, name)),
                    timeout=30)
    c.cli("umount", "--home", c.home, mnt_c, check=False)


# Opens a file and keeps it; "write" writes 5 bytes at 0 (no fsync),
# "fsync", "read" -> "ok <bytes>" or errno name, "open PATH" (a new open).
HOLDER = r"""
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.split()
    try:
        if cmd[0] == "write":
            os.pwrite(fd, cmd[1].encode(), 0)
            print("ok", flush=True)
        elif cmd[0] == "fsync":
            os.fsync(fd)
            print("ok", flush=True)
        elif cmd[0] == "read":
            print("ok", os.pread(fd, 100, 0).decode(), flush=True)
        elif cmd[0] == "open":
            with open(cmd[1], "rb") as f:
                print("ok", f.read().decode(), flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


def stop_mount_during_controlled_restart(c):
    """SIGSTOPs mount A's daemon, restarts the MDS (controlled; the DLM
    evicts A after its callback timeout), then SIGCONTs A."""
    pid = mount_daemon_pid(c.mnt)
    c.stopped_pids = [pid]
    os.kill(pid, signal.SIGSTOP)
    try:
        controlled_stop(c, "mdt0")
        start(c, "mdt0")
    finally:
        os.kill(pid, signal.SIGCONT)


def test_stopped_mount_with_only_opens_reconnects(fo_cluster):
    """(d1) Mount A, stopped (SIGSTOP) during the controlled restart, had
    only an open file (its writes fsynced): on SIGCONT it re-establishes the
    open and the same descriptor keeps reading and writing."""
    check_stopped_mount_keeps_fsynced_open(fo_cluster)


def check_stopped_mount_keeps_fsynced_open(c):
    """Mount A holds an open file whose writes are fsynced, is stopped
    through a controlled MDS restart, and after SIGCONT the same
    descriptor reads and writes; mount B sees the write."""
    name = "fo-" + uuid.uuid4().hex[:8]
    with open(os.path.join(c.mnt, name), "wb") as f:
        f.write(b"hello")
    h = helper(c, HOLDER, os.path.join(c.mnt, name))
    assert h.stdout.readline().strip() == "ready"
    assert ask(h, "write HELLO") == "ok"
    assert ask(h, "fsync") == "ok"
    stop_mount_during_controlled_restart(c)
    assert ask(h, "read", timeout=60) == "ok HELLO"
    assert ask(h, "write WORLD") == "ok"
    assert ask(h, "fsync") == "ok"
    with open(os.path.join(c.mnt_b, name), "rb") as f:
        assert f.read() == b"WORLD"


def test_stopped_mount_with_unsynced_writes_is_evicted(fo_cluster):
    """(d2) Mount A, stopped during the controlled restart, had written to
    its open file without fsync: it was evicted, so that descriptor now
    fails with EIO (a clear error, never silent loss); new opens on A work
    and mount B is unaffected."""
    c = fo_cluster
    name = "fo-" + uuid.uuid4().hex[:8]
    with open(os.path.join(c.mnt, name), "wb") as f:
        f.write(b"hello")
    with open(os.path.join(c.mnt, name + "-other"), "wb") as f:
        f.write(b"other")
    h = helper(c, HOLDER, os.path.join(c.mnt, name))
    assert h.stdout.readline().strip() == "ready"
    assert ask(h, "write HELLO") == "ok"  # not fsynced
    stop_mount_during_controlled_restart(c)
    # A notices the eviction when its DLM session delivers it; the clear
    # error is logged then.
    assert wait_for(lambda: "is lost after the MDS failover" in
                    mount_log(c, c.mnt), timeout=30), mount_log(c, c.mnt)
    # (a read may still be served from the kernel's page cache)
    assert ask(h, "write AGAIN") == "EIO"
    assert ask(h, "fsync") == "EIO"
    assert ask(h, f"open {os.path.join(c.mnt, name + '-other')}") == "ok other"
    with open(os.path.join(c.mnt_b, name + "-other"), "rb") as f:
        assert f.read() == b"other"
    with open(os.path.join(c.mnt_b, name + "-b"), "wb") as f:
        f.write(b"b works")
    with open(os.path.join(c.mnt, name + "-b"), "rb") as f:
        assert f.read() == b"b works"


def run_writers(c, name):
    paths = {"a": os.path.join(c.mnt, name + "-a"),
             "b": os.path.join(c.mnt_b, name + "-b")}
    w = {k: helper(c, WRITER, p, k) for k, p in paths.items()}
    for p in w.values():
        assert p.stdout.readline().strip() == "ready"
    assert wait_for(lambda: all(int(ask(p, "n")) > 20 for p in w.values()),
                    timeout=30)
    return paths, w


def finish_writers(c, paths, w):
    """Stops the writers; checks no error and every record via the other
    mount."""
    results = {k: json.loads(ask(p, "stop", timeout=60)) for k, p in w.items()}
    for k, r in results.items():
        assert r["errors"] == [], (k, r)
    for k, r in results.items():
        other = (paths[k].replace(c.mnt_b, c.mnt) if k == "b"
                 else paths[k].replace(c.mnt, c.mnt_b))
        with open(other, "rb") as f:
            data = f.read()
        assert len(data) == r["n"] * 4096, (k, len(data), r["n"])
        for i in range(r["n"]):
            assert data[i * 4096:(i + 1) * 4096] == block(i, k), (k, i)
    return results


def wait_progress(w, before, n=16, timeout=60):
    assert wait_for(
        lambda: all(int(ask(p, "n")) > before[k] + n for k, p in w.items()),
        timeout=timeout), "writers did not make progress"


def test_controlled_oss_restarts_with_writers(fo_cluster):
    """Each OSS in turn is stopped (controlled) and started while writers on
    both mounts write and fsync through open files: the mounts (and the
    MDS, for its own OSS calls) hold their requests, reconnect, and no
    syscall fails; every byte is right."""
    c = fo_cluster
    name = "fo-" + uuid.uuid4().hex[:8]
    # Stripe the files over both OSTs so every restart hits both writers.
    c.cli("setstripe", "-c", "2", c.mnt)
    paths, w = run_writers(c, name)
    for target in ("ost0", "ost1"):
        before = {k: int(ask(p, "n")) for k, p in w.items()}
        controlled_stop(c, target)
        time.sleep(0.5)
        start(c, target)
        wait_progress(w, before)
    # The protocol ran: both mounts and the MDS paused for each OST and
    # became active again (not merely retried a dead server).
    for m in (c.mnt, c.mnt_b):
        log = mount_log(c, m)
        for target in ("ost0", "ost1"):
            assert f"{target}: the server asks for the target" in log, log
            assert f"{target}: active again" in log, log
    mds_log = server_log(c, "mdt0")
    for target in ("ost0", "ost1"):
        assert f"{target}: the server asks for the target" in mds_log
        assert f"{target}: active again" in mds_log
    # New files (MDS precreates on the restarted OSSs) work too.
    with open(os.path.join(c.mnt, name + "-new"), "wb") as f:
        f.write(b"new" * 1000)
    with open(os.path.join(c.mnt_b, name + "-new"), "rb") as f:
        assert f.read() == b"new" * 1000
    finish_writers(c, paths, w)


BUILD_N = os.environ.get("STRIPEFS_BUILD_N")


@pytest.mark.skipif(not BUILD_N, reason="set STRIPEFS_BUILD_N to a release N "
                    "build (cmake -DSTRIPEFS_PREVIOUS_RELEASE=ON)")
def test_controlled_mds_roll_to_release_n_and_back(fo_cluster):
    """The MDS is rolled to release N (protocol 1) and back to N+1 while
    writers hold files open: the mounts renegotiate on each reconnect
    (cluster status shows protocol 1, then 2, for their connections) and
    no syscall fails."""
    c = fo_cluster
    name = "fo-" + uuid.uuid4().hex[:8]
    paths, w = run_writers(c, name)
    for bin_dir, proto in ((os.path.join(BUILD_N, "bin"), "1"), (BIN, "2")):
        before = {k: int(ask(p, "n")) for k, p in w.items()}
        controlled_stop(c, "mdt0")
        c.cli("server", "start", "--home", c.home, "--binary-dir", bin_dir,
              "mdt0", timeout=90)
        wait_progress(w, before)
        st = c.status()
        servers = st["servers"] if isinstance(st, dict) else st
        mds = [s for s in servers if s["target"] == "mdt0"][0]
        conns = mds.get("connections") or []
        # Both mounts reconnected to this instance, at its protocol.
        assert len(conns) >= 2, mds
        assert all(str(x["protocol"]) == proto for x in conns), (proto, conns)
        print(f"mdt0 release {mds.get('release')}: connections {conns}")
    finish_writers(c, paths, w)
