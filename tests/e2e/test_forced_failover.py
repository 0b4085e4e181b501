"""Forced failover (seed 002, issue 5 must-show 4): `stripefs server failover
--force TARGET` sends SIGUSR1; the server stops replying at once (every RPC,
also one executing, answers UNAVAILABLE "failing over"), turns its store
read-only, logs the write errors of the requests still executing as
expected, and exits 0 without recording a clean stop; the CLI starts the
replacement, which recovers as after a crash (same release: no --force, open
handles kept) and answers the mounts' resends (reply records on the MDS,
idempotent object writes on an OSS).

To have a request executing at the moment of the signal, the first
instances run with delay fault points (mds.before_commit, oss.before_write)
and the signal is sent right after one fired (the server logs each firing
before it sleeps); the replacements run without faults.

Every helper process is bounded in time and killed in teardown; every mount
is unmounted and every server stopped, also on failure.
"""

import json
import os
import re
import signal
import uuid

import pytest

from conftest import wait_for
from helpers import (WRITER, ask, block, helper, server_log,
                     two_mount_cluster)
from rawprocs import BIN_N1, free_port, log_of, procs_fixture, wait

CALLBACK_TIMEOUT = 3      # seconds (stripefs-dlm --callback-timeout)
DELAY_MS = 2500           # a delayed request is still executing at the signal
EXIT_LINE = "forced failover: exited without a clean stop"
HANDLED_LINE = "failed during a forced failover, as expected"
# Would mean a crash instead of a handled error (never printed otherwise).
CRASH_SIGNS = ("terminate called", "Segmentation fault", "Aborted",
               "core dumped", "AddressSanitizer", ": crash")


def delay_fired(text, point):
    return text.count(f"fault point {point}: delay")


@pytest.fixture
def ff_cluster():
    # The first instances (and only they: the replacements are started by
    # the CLI from this test's environment) delay some commits and object
    # writes.
    faults = {"STRIPEFS_FAULTS":
              f"mds.before_commit=delay:{DELAY_MS}@0.2*1000,"
              f"oss.before_write=delay:{DELAY_MS}@0.05*1000",
              "STRIPEFS_FAULT_SEED": "2"}
    with two_mount_cluster("stripefs-forced-e2e-", CALLBACK_TIMEOUT,
                           env=faults,
                           restart=("mdt0", "ost0", "ost1")) as c:
        yield c


def pids(c):
    return {s["target"]: (s["pid"], s["state"]) for s in c.status()}


def force_failover_while_executing(c, target, point):
    """Waits (bounded) until `target` logs that `point` fired its delay —
    a request is then executing on it — and runs `stripefs server failover
    --force target` at once."""
    before = delay_fired(server_log(c, target), point)
    assert wait_for(lambda: delay_fired(server_log(c, target), point) > before,
                    timeout=60, interval=0.02), \
        f"{point} never fired on {target}: no request to catch executing"
    r = c.cli("server", "failover", "--force", "--home", c.home, target,
              timeout=120)
    assert "replacement serving" in r.stdout, r.stdout


def wait_progress(w, n=24, timeout=90):
    before = {k: int(ask(p, "n")) for k, p in w.items()}
    assert wait_for(
        lambda: all(int(ask(p, "n")) > before[k] + n for k, p in w.items()),
        timeout=timeout, interval=0.2), "writers did not make progress"


def check_failed_over_log(c, target):
    """The log of `target`: the old instance handled its executing request's
    read-only error, exited through the forced-failover path (exit 0, no
    crash), and the replacement recovered an unclean store without
    --force."""
    log = server_log(c, target)
    assert EXIT_LINE in log, log[-4000:]
    old, new = log.split(EXIT_LINE, 1)
    assert "forced failover: no more replies" in old
    assert HANDLED_LINE in old, old[-4000:]
    assert "shut down UNCLEANLY" in new, new[:4000]
    assert "forced: the old clients are evicted" not in new
    assert "fault points armed" not in new  # the replacement runs clean
    for sign in CRASH_SIGNS:
        assert sign not in log, (sign, log[-4000:])


def test_forced_failover_of_mds_and_oss_during_write_heavy_workload(
        ff_cluster):
    """Writers on both mounts (files held open, patterned records, fsync,
    creates and renames) ride through a forced failover of the MDS and then
    of an OSS, each caught with a request executing: no syscall error, every
    byte right, the old servers handled their read-only errors and exited
    through the forced-failover path, the replacements serve."""
    c = ff_cluster
    d = os.path.join(c.mnt, "ff-" + uuid.uuid4().hex[:8])
    os.mkdir(d)
    os.chmod(d, 0o777)
    # Stripe over both OSTs so that the OSS failover hits every writer.
    c.cli("setstripe", "-c", "2", d)
    d_b = d.replace(c.mnt, c.mnt_b)
    paths = {"a1": os.path.join(d, "a1"), "a2": os.path.join(d, "a2"),
             "b1": os.path.join(d_b, "b1"), "b2": os.path.join(d_b, "b2")}
    w = {k: helper(c, WRITER, p, k, 1) for k, p in paths.items()}
    for p in w.values():
        assert p.stdout.readline().strip() == "ready"
    wait_progress(w, n=20)
    before = pids(c)

    force_failover_while_executing(c, "mdt0", "mds.before_commit")
    wait_progress(w)
    force_failover_while_executing(c, "ost0", "oss.before_write")
    wait_progress(w)

    results = {k: json.loads(ask(p, "stop", timeout=120))
               for k, p in w.items()}
    for k, r in results.items():
        assert r["errors"] == [], (k, r)
    # Every record and side file, read through the OTHER mount.
    for k, r in results.items():
        other_dir = d if k.startswith("b") else d_b
        with open(os.path.join(other_dir, k), "rb") as f:
            data = f.read()
        assert len(data) == r["n"] * 4096, (k, len(data), r["n"])
        for i in range(r["n"]):
            assert data[i * 4096:(i + 1) * 4096] == block(i, k), (k, i)
        for j in range(r["sides"]):
            with open(os.path.join(other_dir, f"{k}-side{j}"), "rb") as f:
                assert f.read() == block(j, k + "s"), (k, j)
    names = sorted(os.listdir(d_b))
    assert not [n for n in names if n.endswith(".tmp")], names
    assert len(names) == 4 + sum(r["sides"] for r in results.values())

    for t in ("mdt0", "ost0"):
        check_failed_over_log(c, t)
    after = pids(c)
    for t in ("mdt0", "ost0"):
        assert after[t][1] == "running", after
        assert after[t][0] != before[t][0], (t, before, after)
    assert after["ost1"] == before["ost1"]
    # New files (MDS precreates on the replaced OSS) work too.
    with open(os.path.join(d, "new"), "wb") as f:
        f.write(b"new" * 1000)
    with open(os.path.join(d_b, "new"), "rb") as f:
        assert f.read() == b"new" * 1000
    # No core dumps left anywhere in the cluster home.
    cores = [os.path.join(root, n) for root, _, files in os.walk(c.home)
             for n in files if re.fullmatch(r"core(\.\d+)?", n)]
    assert cores == []


def test_forced_failover_cli_errors(ff_cluster):
    """Unknown target, a server that is not running, and the lock service
    (no forced failover): clear errors, exit non-zero, nothing started."""
    c = ff_cluster
    r = c.cli("server", "failover", "--force", "--home", c.home, "ost9",
              check=False)
    assert r.returncode != 0
    assert "no server 'ost9'" in r.stderr, r.stderr
    r = c.cli("server", "failover", "--force", "--home", c.home, "dlm",
              check=False)
    assert r.returncode != 0
    assert "no forced failover" in r.stderr, r.stderr
    c.cli("server", "stop", "--home", c.home, "ost1")
    r = c.cli("server", "failover", "--force", "--home", c.home, "ost1",
              check=False)
    assert r.returncode != 0
    assert "ost1 is not running" in r.stderr, r.stderr
    assert pids(c)["ost1"][1] != "running"
    # Without --force: a controlled stop and a start.
    c.cli("server", "start", "--home", c.home, "ost1")
    before = pids(c)["ost1"][0]
    c.cli("server", "failover", "--home", c.home, "ost1", timeout=120)
    st = pids(c)["ost1"]
    assert st[1] == "running" and st[0] != before, st
    assert EXIT_LINE not in server_log(c, "ost1")


procs = procs_fixture("stripefs-forced-raw-")


def test_forced_failover_exits_0_unclean_and_the_next_start_recovers(procs):
    """Bare processes (the test's own children, so it sees their exit
    codes): SIGUSR1 while a mkdir (MDS) and a write (OSS) are executing.
    Each server exits 0 with its read-only error handled and no clean stop
    recorded; the same release starts again without --force; the syscalls
    blocked meanwhile succeed once, with the right result."""
    import threading
    oss_port, mds_port = free_port(), free_port()
    faults = {"STRIPEFS_FAULTS": f"mds.before_commit=delay:{DELAY_MS}*1,"
              f"oss.before_write=delay:{DELAY_MS}*1",
              "STRIPEFS_FAULT_SEED": "3"}
    oss_args = ("--target", "ost0", "--data", procs.data("ost0"))
    mds_args = ("--target", "mdt0", "--data", procs.data("mdt0"), "--ost",
                f"0=127.0.0.1:{oss_port}")
    oss = procs.serve(BIN_N1, "stripefs-oss", oss_port, *oss_args,
                      env=faults)
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args,
                      env=faults)
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)

    def in_thread(fn):
        out = {}

        def run():
            try:
                out["ok"] = fn()
            except OSError as e:
                out["err"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t, out

    def signal_while_executing(p, point, what):
        """Sends SIGUSR1 to server p once `point` fired its delay (`what`
        is then executing on it); p must exit 0 through the forced-failover
        path with that request's error handled. Returns p's log."""
        wait(lambda: f"fault point {point}: delay" in log_of(p), 30,
             f"{what} to reach {point}")
        p.send_signal(signal.SIGUSR1)
        assert p.wait(timeout=60) == 0, log_of(p)
        log = log_of(p)
        assert EXIT_LINE in log, log
        assert HANDLED_LINE in log, log
        return log

    # MDS: the mkdir waits in mds.before_commit when the signal comes.
    t, out = in_thread(lambda: os.mkdir(os.path.join(mnt, "d")))
    mds_log = signal_while_executing(mds, "mds.before_commit", "the mkdir")
    assert re.search(r"Mkdir \(client \d+ xid \d+\) " + HANDLED_LINE,
                     mds_log), mds_log
    mds2 = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args)
    t.join(timeout=90)
    assert not t.is_alive(), "mkdir still blocked after the new MDS started"
    assert out.get("err") is None, out
    assert "previous instance release" in log_of(mds2)
    assert "shut down UNCLEANLY" in log_of(mds2)
    assert os.listdir(mnt) == ["d"]

    # OSS: the write (with fsync) waits in oss.before_write at the signal.
    path = os.path.join(mnt, "d", "f")
    data = block(0, "raw") * 64

    def write():
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    t, out = in_thread(write)
    signal_while_executing(oss, "oss.before_write", "the write")
    oss2 = procs.serve(BIN_N1, "stripefs-oss", oss_port, *oss_args)
    t.join(timeout=120)
    assert not t.is_alive(), "write still blocked after the new OSS started"
    assert out.get("err") is None, out
    assert "shut down UNCLEANLY" in log_of(oss2)
    with open(path, "rb") as f:
        assert f.read() == data
    for p in (mds, oss, mds2, oss2):
        for sign in CRASH_SIGNS:
            assert sign not in log_of(p), (sign, log_of(p))
