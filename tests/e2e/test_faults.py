"""Fault points armed through $STRIPEFS_FAULTS on a real MDS (bare
processes on 127.0.0.1, no lock service): a fault before the commit fails
the syscall with EIO and leaves nothing behind, the next request works; a
bad spec stops the server from starting, with a message."""

import errno
import os

import pytest

from rawprocs import BIN_N1, free_port, log_of, procs_fixture

procs = procs_fixture("stripefs-faults-")


def _cluster(procs, faults):
    oss_port, mds_port = free_port(), free_port()
    procs.serve(BIN_N1, "stripefs-oss", oss_port, "--target", "ost0",
                "--data", procs.data("ost0"))
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, "--target", "mdt0",
                      "--data", procs.data("mdt0"), "--ost",
                      f"0=127.0.0.1:{oss_port}",
                      env={"STRIPEFS_FAULTS": faults,
                           "STRIPEFS_FAULT_SEED": "5"})
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)
    return mds, mnt


def test_fault_before_commit_fails_once_and_leaves_nothing(procs):
    mds, mnt = _cluster(procs, "mds.before_commit=error*1")
    with pytest.raises(OSError) as e:
        os.mkdir(os.path.join(mnt, "a"))
    assert e.value.errno == errno.EIO
    assert not os.path.exists(os.path.join(mnt, "a"))
    os.mkdir(os.path.join(mnt, "a"))  # the point fired its one time
    with open(os.path.join(mnt, "a", "f"), "w") as f:
        f.write("ok")
    assert sorted(os.listdir(mnt)) == ["a"]
    log = log_of(mds)
    assert "fault points armed: 'mds.before_commit=error*1' (seed 5)" in log
    assert log.count("fault point mds.before_commit: error") == 1


def test_bad_fault_spec_refuses_to_start(procs):
    r = procs.run(BIN_N1, "stripefs-mds", "--target", "mdt0", "--listen",
                  f"127.0.0.1:{free_port()}", "--data", procs.data("mdt0"),
                  "--ost", f"0=127.0.0.1:{free_port()}",
                  env={"STRIPEFS_FAULTS": "mds.before_commit=explode"})
    assert r.returncode != 0
    assert "mds.before_commit=explode" in r.stderr, r.stderr
