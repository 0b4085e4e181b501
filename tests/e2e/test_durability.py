"""What fsync asks of the servers, seen from a real mount: the MDS is asked to
sync its log by fsync/fdatasync (also of a file with nothing dirty: its
create may be all that is unsynced), by fsyncdir and by every O_SYNC /
O_DSYNC write, and not by plain writes and closes (durability stays cheap).
That the syncs really make things survive a power cut is shown in-process
(storage/power_cut_disk.h tests) and on LazyFS (tests/durability/)."""
import os

STATS = "user.stripefs.stats"


def _mds_syncs(path):
    for line in os.getxattr(path, STATS).decode().splitlines():
        target, method, n = line.split()
        if target == "mds" and method == "Sync":
            return int(n)
    return 0


def test_fsync_of_a_clean_new_file_syncs_the_mds(fresh_dir):
    p = os.path.join(fresh_dir, "f")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        before = _mds_syncs(fresh_dir)
        os.fsync(fd)
        assert _mds_syncs(fresh_dir) == before + 1
        os.fdatasync(fd)
        assert _mds_syncs(fresh_dir) == before + 2
    finally:
        os.close(fd)


def test_fsyncdir_syncs_the_mds(fresh_dir):
    os.mkdir(os.path.join(fresh_dir, "sub"))
    before = _mds_syncs(fresh_dir)
    dfd = os.open(fresh_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    assert _mds_syncs(fresh_dir) == before + 1


def test_o_sync_and_o_dsync_writes_sync_the_mds(fresh_dir):
    for flag in (os.O_SYNC, os.O_DSYNC):
        p = os.path.join(fresh_dir, "s%d" % flag)
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | flag, 0o644)
        try:
            before = _mds_syncs(fresh_dir)
            for i in range(3):
                os.pwrite(fd, b"x" * 4096, i * 4096)
            assert _mds_syncs(fresh_dir) >= before + 3
        finally:
            os.close(fd)
        with open(p, "rb") as f:
            assert f.read() == b"x" * 12288


def test_plain_writes_and_closes_do_not_sync_the_mds(fresh_dir):
    before = _mds_syncs(fresh_dir)
    for i in range(5):
        with open(os.path.join(fresh_dir, "p%d" % i), "wb") as f:
            f.write(b"y" * 65536)
    assert _mds_syncs(fresh_dir) == before
