"""Fault points armed through $STRIPEFS_FAULTS on a real MDS (bare
processes on 127.0.0.1, no lock service): a fault before the commit fails
the syscall with EIO and leaves nothing behind, the next request works; a
reply lost after the commit (`drop`) is resent by the mount with the same
xid and answered from its reply record, so the change is applied once and
the syscall succeeds; a bad spec stops the server from starting, with a
message."""

import errno
import os
import threading
import time

import pytest

from helpers import run_in_child
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


def _answered_from_record(log):
    return log.count("resent request answered from its reply record")


def _drops(log):
    return log.count("fault point mds.after_commit: drop")


def _all_resends_answered(mds):
    """Returns the MDS log once it is settled: as many answers from a
    record as dropped replies, the same in two reads 0.5 s apart (a close's
    release is asynchronous: it, its drop and its resend may come late).
    Bounded: after 30 s the last read is returned for the test to judge."""
    last = None
    end = time.monotonic() + 30
    while time.monotonic() < end:
        log = log_of(mds)
        now = (_drops(log), _answered_from_record(log))
        if now == last and now[0] == now[1]:
            return log
        last = now
        time.sleep(0.5)
    return log_of(mds)


def test_lost_mkdir_reply_is_answered_from_the_record(procs):
    # A mount issues no modifying request before the first syscall's, so
    # the one drop hits the mkdir.
    mds, mnt = _cluster(procs, "mds.after_commit=drop*1")
    os.mkdir(os.path.join(mnt, "a"))  # executed once: no EEXIST on resend
    assert sorted(os.listdir(mnt)) == ["a"]
    os.rmdir(os.path.join(mnt, "a"))
    assert os.listdir(mnt) == []
    log = _all_resends_answered(mds)
    assert _drops(log) == 1, log
    assert _answered_from_record(log) == 1, log


def test_lost_rename_reply_is_answered_from_the_record(procs):
    # Every modifying request loses its first reply. Before the rename,
    # only requests whose second execution would go unnoticed (open without
    # O_EXCL, size updates); the rename executed twice would be ENOENT.
    mds, mnt = _cluster(procs, "mds.after_commit=drop*1000")
    with open(os.path.join(mnt, "x"), "wb") as f:
        f.write(b"renamed once")
    os.rename(os.path.join(mnt, "x"), os.path.join(mnt, "y"))
    assert os.listdir(mnt) == ["y"]
    with open(os.path.join(mnt, "y"), "rb") as f:
        assert f.read() == b"renamed once"
    log = _all_resends_answered(mds)
    assert _drops(log) >= 2, log  # at least the create and the rename
    assert _answered_from_record(log) == _drops(log), log


def test_lost_exclusive_create_reply_makes_one_file(procs):
    # The create (O_CREAT | O_EXCL) executed twice would be EEXIST.
    mds, mnt = _cluster(procs, "mds.after_commit=drop*1000")
    data = os.urandom(3 << 20)
    with open(os.path.join(mnt, "f"), "xb") as f:
        f.write(data)
    assert os.listdir(mnt) == ["f"]
    assert os.stat(os.path.join(mnt, "f")).st_size == len(data)
    with open(os.path.join(mnt, "f"), "rb") as f:
        assert f.read() == data
    log = _all_resends_answered(mds)
    assert _drops(log) >= 2, log  # at least the create and a release
    assert _answered_from_record(log) == _drops(log), log


def test_every_lost_reply_is_answered_once(procs):
    # Every modifying request loses its first reply (the resend, answered
    # from the record, does not commit again and so is not dropped).
    mds, mnt = _cluster(procs, "mds.after_commit=drop*1000")
    d = os.path.join(mnt, "d")
    os.mkdir(d)
    data = b"exactly once\n" * 1000
    with open(os.path.join(d, "x"), "xb") as f:  # O_EXCL: a re-run is EEXIST
        f.write(data)
    os.rename(os.path.join(d, "x"), os.path.join(d, "y"))  # re-run: ENOENT
    os.link(os.path.join(d, "y"), os.path.join(d, "z"))  # re-run: EEXIST
    os.unlink(os.path.join(d, "z"))  # re-run: ENOENT
    os.chmod(os.path.join(d, "y"), 0o600)
    os.symlink("y", os.path.join(d, "s"))  # re-run: EEXIST
    os.rename(d, os.path.join(mnt, "e"))
    e = os.path.join(mnt, "e")
    assert sorted(os.listdir(mnt)) == ["e"]
    assert sorted(os.listdir(e)) == ["s", "y"]
    st = os.stat(os.path.join(e, "y"))
    assert st.st_nlink == 1
    assert st.st_mode & 0o777 == 0o600
    assert st.st_size == len(data)
    with open(os.path.join(e, "s"), "rb") as f:
        assert f.read() == data
    log = _all_resends_answered(mds)
    assert _drops(log) >= 8, log  # at least one per syscall above
    assert _answered_from_record(log) == _drops(log), log


def _use_fds(paths_fds, q):
    """In a child (bounded by the parent): I/O on fds opened before the MDS
    was killed."""
    out = []
    try:
        for path, fd in paths_fds:
            os.pwrite(fd, b"after", 0)
            os.ftruncate(fd, 32)  # names the MDS handle (SetAttr)
            os.fsync(fd)
            out.append((path, os.pread(fd, 64, 0), os.fstat(fd).st_nlink))
        q.put(("ok", out))
    except OSError as e:
        q.put(("error", f"{e!r} after {out}"))


def test_open_files_survive_an_mds_kill9(procs):
    """kill -9 of the MDS, restart at the same release without --force: the
    open handles are kept (an unclean start is not a forced one), so open
    files, one of them unlinked while open, keep working."""
    oss_port, mds_port = free_port(), free_port()
    procs.serve(BIN_N1, "stripefs-oss", oss_port, "--target", "ost0",
                "--data", procs.data("ost0"))
    mds_args = ["--target", "mdt0", "--data", procs.data("mdt0"), "--ost",
                f"0=127.0.0.1:{oss_port}"]
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args)
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)
    kept, gone = os.path.join(mnt, "kept"), os.path.join(mnt, "gone")
    fds = []
    try:
        for path in (kept, gone):
            with open(path, "wb") as f:
                f.write(b"before-the-crash")
            fds.append((path, os.open(path, os.O_RDWR)))
        os.unlink(gone)
        mds.kill()
        mds.wait(timeout=10)
        mds2 = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args,
                           name="mds-after-kill9")
        status, out = run_in_child(
            _use_fds, fds, timeout=90,
            hang="I/O on files open across the MDS crash hangs")
        assert status == "ok", out
        want = b"aftere-the-crash".ljust(32, b"\0")
        assert out == [(kept, want, 1), (gone, want, 0)], out
        assert "keeping 2 open handles of the previous instance" in log_of(
            mds2), log_of(mds2)
        with open(kept, "rb") as f:
            assert f.read() == want
        assert os.listdir(mnt) == ["kept"]
    finally:
        for _, fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def test_reply_lost_in_an_mds_crash_is_answered_after_restart(procs):
    """The MDS dies (as kill -9) right after committing a mkdir, before
    replying; the mount resends to the restarted MDS, which answers from the
    reply record in the store: the syscall succeeds, one directory."""
    oss_port, mds_port = free_port(), free_port()
    procs.serve(BIN_N1, "stripefs-oss", oss_port, "--target", "ost0",
                "--data", procs.data("ost0"))
    mds_args = ["--target", "mdt0", "--data", procs.data("mdt0"), "--ost",
                f"0=127.0.0.1:{oss_port}"]
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args,
                      env={"STRIPEFS_FAULTS": "mds.after_commit=crash*1"})
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)
    result = []

    def mkdir():
        try:
            os.mkdir(os.path.join(mnt, "a"))
            result.append(0)
        except OSError as e:
            result.append(e.errno)

    t = threading.Thread(target=mkdir, daemon=True)
    t.start()
    assert mds.wait(timeout=30) == 99, log_of(mds)  # fault::kCrashExit
    mds2 = procs.serve(BIN_N1, "stripefs-mds", mds_port, *mds_args,
                       name="mds-restarted")
    t.join(60)
    assert not t.is_alive(), "mkdir still blocked after the MDS restart"
    assert result == [0], errno.errorcode.get(result[0], result)
    assert os.listdir(mnt) == ["a"]
    assert _answered_from_record(log_of(mds2)) == 1, log_of(mds2)
