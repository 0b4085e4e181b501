"""The start-up check of every server (issue 4, seed 003 item 4) and the
controlled stop signal, with real processes on 127.0.0.1:

- a server of release N+1 killed with -9 (unclean) refuses to start at
  release N: exit code 3, one line naming both releases;
- with --force it starts; a mount that had a file open gets a clear error
  (EIO or ESTALE, never a hang) on that old file handle while a new open of
  the same file works;
- SIGUSR2 (controlled stop) on a server without a lock service stops it
  cleanly (exit 0, clean record: release N then starts without --force);
- with a lock service, the MDS's controlled stop leaves its EX on
  active:mdt0 in the DLM and the next instance's first connect (reset)
  drops it.

Release N+1 binaries come from $STRIPEFS_BUILD/bin, release N binaries from
$STRIPEFS_BUILD_N/bin (default /work/main/build-n/bin). Every process is
started here and stopped here, also when a test fails.
"""

import errno
import os
import signal
import time

import pytest

from helpers import run_in_child
from rawprocs import (BIN_N, BIN_N1, EXIT_REFUSED, RELEASE_N, RELEASE_N1,
                      free_port as _free_port, have, log_of, need_release_n,
                      procs_fixture, wait as _wait)

SERVER_BINS = ("stripefs-mds", "stripefs-oss", "stripefs-dlm", "stripefs-mount")


need_n = need_release_n(SERVER_BINS)


def _have(bindir, names=SERVER_BINS):
    return have(bindir, names)


procs = procs_fixture("stripefs-startup-")


def _data(procs, name):
    return procs.data(name)


def _start_role(procs, bindir, role, port, data, extra=()):
    if role == "mds":
        return procs.serve(bindir, "stripefs-mds", port, "--target", "mdt0",
                           "--data", data, *extra)
    if role == "oss":
        return procs.serve(bindir, "stripefs-oss", port, "--target", "ost0",
                           "--data", data, *extra)
    return procs.serve(bindir, "stripefs-dlm", port, "--target", "dlm",
                       "--data", data, *extra)


def _role_args(role, port, data):
    binary = {"mds": "stripefs-mds", "oss": "stripefs-oss",
              "dlm": "stripefs-dlm"}[role]
    target = {"mds": "mdt0", "oss": "ost0", "dlm": "dlm"}[role]
    return binary, ["--target", target, "--listen", f"127.0.0.1:{port}",
                    "--data", data]


@need_n
@pytest.mark.parametrize("role", ["mds", "oss", "dlm"])
def test_unclean_stop_refuses_other_release(procs, role):
    assert _have(BIN_N1), f"release N+1 binaries missing in {BIN_N1}"
    port = _free_port()
    data = _data(procs, role)
    p = _start_role(procs, BIN_N1, role, port, data)
    p.kill()  # unclean
    p.wait(timeout=10)
    binary, args = _role_args(role, port, data)
    r = procs.run(BIN_N, binary, *args)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == EXIT_REFUSED, f"exit {r.returncode}: {out}"
    lines = [l for l in r.stderr.splitlines() if RELEASE_N in l and RELEASE_N1 in l]
    assert lines, f"no line names both releases: {out}"
    assert "--force" in lines[0]
    # Still refused on a second try: nothing was changed by the refusal.
    r = procs.run(BIN_N, binary, *args)
    assert r.returncode == EXIT_REFUSED
    # The same release may restart after a crash (that is plain recovery).
    p = _start_role(procs, BIN_N1, role, port, data)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, log_of(p)
    # After that clean stop, release N starts without --force.
    p = _start_role(procs, BIN_N, role, port, data)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, log_of(p)


def _use_old_fd(fd, q):
    """In a child: operations on an fd whose MDS handle was discarded."""
    results = []
    for op in ("fstat", "write", "fsync", "read"):
        try:
            if op == "fstat":
                os.fstat(fd)
            elif op == "write":
                os.pwrite(fd, b"after-forced-start", 0)
            elif op == "fsync":
                os.fsync(fd)
            else:
                os.pread(fd, 16, 0)
            results.append((op, 0))
        except OSError as e:
            results.append((op, e.errno))
    q.put(results)


@need_n
def test_forced_start_evicts_old_handles(procs):
    assert _have(BIN_N1), f"release N+1 binaries missing in {BIN_N1}"
    dlm_port, oss_port, mds_port = _free_port(), _free_port(), _free_port()
    # With a lock service: the forced MDS makes the old mounts re-establish
    # their open files (its EX on active:mdt0), which it refuses.
    procs.serve(BIN_N1, "stripefs-dlm", dlm_port, "--data", _data(procs, "dlm"))
    dlm = f"127.0.0.1:{dlm_port}"
    procs.serve(BIN_N1, "stripefs-oss", oss_port, "--target", "ost0", "--data",
                _data(procs, "ost0"), "--dlm", dlm)
    mds_data = _data(procs, "mdt0")
    mds_args = ["--target", "mdt0", "--data", mds_data, "--ost",
                f"0=127.0.0.1:{oss_port}", "--reopen-window", "30", "--dlm",
                dlm]
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args)
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)
    path = os.path.join(mnt, "held")
    with open(path, "wb") as f:
        f.write(b"before")
    fd = os.open(path, os.O_RDWR)
    try:
        mds.kill()  # unclean, the file still open
        mds.wait(timeout=10)
        r = procs.run(BIN_N, "stripefs-mds", "--listen",
                      f"127.0.0.1:{mds_port}", *mds_args)
        assert r.returncode == EXIT_REFUSED, r.stdout + r.stderr
        forced = procs.serve(BIN_N, "stripefs-mds", mds_port, *mds_args,
                             "--force", name="mds-forced")
        _wait(lambda: "clients reconnect" in log_of(forced), 60,
              "the forced MDS to release active:mdt0: " + log_of(forced))
        # The old handle: a clear error, not a hang (each op is bounded
        # by running in a child that must finish in time).
        hang = "operations on the old file handle hang"
        results = run_in_child(_use_old_fd, fd, timeout=60, hang=hang)
        failed = [(op, e) for op, e in results if e != 0]
        if not failed:  # the mount may still be re-establishing: once more
            time.sleep(2)
            results = run_in_child(_use_old_fd, fd, timeout=60, hang=hang)
            failed = [(op, e) for op, e in results if e != 0]
        assert failed, f"the old handle still works after a forced start: {results}"
        print("old handle after the forced start:", results)
        for op, e in failed:
            assert e in (errno.EIO, errno.ESTALE), (op, errno.errorcode.get(e, e))
        # A new open of the same file works.
        with open(path, "rb") as f:
            assert f.read(6) in (b"before", b"after-")
        with open(path, "ab") as f:
            f.write(b"!")
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.mark.parametrize("role", ["mds", "oss", "dlm"])
def test_sigusr2_without_dlm_stops_cleanly(procs, role):
    """SIGUSR2 (controlled stop) on a server with no lock service configured
    (the DLM itself: its table is persisted) is a clean stop."""
    assert _have(BIN_N1), f"release N+1 binaries missing in {BIN_N1}"
    port = _free_port()
    data = _data(procs, role)
    p = _start_role(procs, BIN_N1, role, port, data)
    p.send_signal(signal.SIGUSR2)
    assert p.wait(timeout=30) == 0, log_of(p)
    log = log_of(p)
    assert "controlled stop" in log, log
    assert "stopped" in log, log
    # The record says clean: the next instance (of release N when built,
    # which would refuse an unclean record) starts without --force.
    other = BIN_N if _have(BIN_N) else BIN_N1
    p = _start_role(procs, other, role, port, data)
    _wait(lambda: "start-up check" in log_of(p), 10, "the start-up check")
    assert f"previous instance release {RELEASE_N1} shut down cleanly" in \
        log_of(p), log_of(p)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, log_of(p)


def test_controlled_stop_leaves_active_lock_for_next_instance(procs):
    """SIGUSR2 with a lock service: the MDS takes EX on active:mdt0, exits 0
    without cancelling it; the next instance, once serving, connects on the
    same DLM client id with reset and the DLM drops that EX."""
    assert _have(BIN_N1), f"release N+1 binaries missing in {BIN_N1}"
    dlm_port, mds_port = _free_port(), _free_port()
    dlm_proc = procs.serve(BIN_N1, "stripefs-dlm", dlm_port, "--data",
                           _data(procs, "dlm"))
    args = ["--target", "mdt0", "--data", _data(procs, "mdt0"), "--dlm",
            f"127.0.0.1:{dlm_port}"]
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, *args)
    _wait(lambda: "connected with reset" in log_of(mds), 20,
          "the first instance's DLM connect")
    mds.send_signal(signal.SIGUSR2)
    assert mds.wait(timeout=60) == 0, log_of(mds)
    log = log_of(mds)
    assert "EX on active:mdt0 granted" in log, log
    assert "stopped cleanly (controlled)" in log, log
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, *args)
    _wait(lambda: "(mds mdt0) connected with reset: dropped" in
          log_of(dlm_proc), 20, "the reset of the old instance's locks")
    line = [l for l in log_of(dlm_proc).splitlines()
            if "(mds mdt0) connected with reset: dropped" in l][-1]
    dropped = int(line.split("dropped ")[1].split()[0])
    assert dropped >= 1, line
    mds.send_signal(signal.SIGTERM)
    assert mds.wait(timeout=30) == 0, log_of(mds)
