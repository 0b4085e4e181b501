"""Object allocation weighted by free space (issue 15, mds/ost_allocator.h),
on bare processes on 127.0.0.1: three OSSs capped with --capacity, one of
them filled nearly full. New one-object files avoid the nearly full OST in
the ratio of the OSTs' free space; once the space is balanced again they go
round-robin, exactly. Objects are counted with `stripefs getstripe`."""

import os
import re
import subprocess

from rawprocs import BIN_N1, free_port, log_of, procs_fixture, wait

procs = procs_fixture("stripefs-alloc-")

MIB = 1 << 20
CAPACITY = 100 * MIB
FILL = 90 * MIB  # ost2 keeps 10 MiB free, the others 100 MiB
WEIGHTED = "object allocation: weighted by free space"
ROUND_ROBIN = "object allocation: round-robin"


def _cluster(procs):
    ports = [free_port() for _ in range(3)]
    for i, port in enumerate(ports):
        procs.serve(BIN_N1, "stripefs-oss", port, "--target", f"ost{i}",
                    "--data", procs.data(f"ost{i}"), "--capacity", CAPACITY)
    mds_port = free_port()
    osts = []
    for i, port in enumerate(ports):
        osts += ["--ost", f"{i}=127.0.0.1:{port}"]
    mds = procs.serve(BIN_N1, "stripefs-mds", mds_port, "--target", "mdt0",
                      "--data", procs.data("mdt0"), "--statfs-interval", "0.5",
                      "--log-level", "debug", *osts)
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)
    return mds, mnt


def _cli(*args):
    r = subprocess.run([os.path.join(BIN_N1, "stripefs"), *map(str, args)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"stripefs {args}: {r.stdout}{r.stderr}"
    return r.stdout


def _osts_of(path):
    """The OST of each object of `path`, from `stripefs getstripe`."""
    out = _cli("getstripe", path)
    lines = out.splitlines()
    start = lines.index("obdidx objid") + 1
    return [int(re.split(r"\s+", line.strip())[0]) for line in lines[start:]
            if line.strip()]


def _space_seen(mds, ost):
    """The free space of `ost` the MDS allocates by last (None: unknown)."""
    found = re.findall(rf"ost{ost} space for allocation: (\d+) of",
                       log_of(mds))
    return int(found[-1]) if found else None


def _create(mnt, prefix, n):
    """Creates n empty files (stripe count 1); their OSTs in order."""
    seq = []
    for i in range(n):
        path = os.path.join(mnt, f"{prefix}{i}")
        with open(path, "w"):
            pass
        osts = _osts_of(path)
        assert len(osts) == 1, f"{path}: {osts}"
        seq.append(osts[0])
    return seq


def test_nearly_full_ost_gets_its_weighted_share_balanced_round_robin(procs):
    mds, mnt = _cluster(procs)
    # Fill ost2 up to 10 MiB under its capacity.
    fill_dir = os.path.join(mnt, "fill")
    os.mkdir(fill_dir)
    _cli("setstripe", "-c", 1, "-i", 2, fill_dir)
    fill = os.path.join(fill_dir, "big")
    with open(fill, "wb") as f:
        chunk = b"x" * MIB
        for _ in range(FILL // MIB):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    assert _osts_of(fill) == [2]
    wait(lambda: _space_seen(mds, 2) == CAPACITY - FILL, 30,
         "the MDS to see ost2 nearly full")
    assert WEIGHTED in log_of(mds)

    # Shares of the free space: 100 : 100 : 10.
    files = 210
    seq = _create(mnt, "w", files)
    counts = [seq.count(i) for i in range(3)]
    share2 = 10 / 210
    expect2 = files * share2  # 10
    assert expect2 / 2 <= counts[2] <= expect2 * 2, counts
    for i in (0, 1):
        expect = files * 100 / 210  # 100
        assert abs(counts[i] - expect) <= 0.15 * expect, counts

    # Free ost2 again: the space is balanced, allocation round-robin.
    os.unlink(fill)
    wait(lambda: _space_seen(mds, 2) == CAPACITY, 30,
         "the MDS to see ost2 empty again")
    assert ROUND_ROBIN in log_of(mds)
    seq = _create(mnt, "r", 30)
    assert [seq.count(i) for i in range(3)] == [10, 10, 10], seq
    for a, b in zip(seq, seq[1:]):
        assert b == (a + 1) % 3, seq
