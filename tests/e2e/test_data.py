"""Data-path end-to-end tests on a real mount (issue 2, "must show" 3 and 4).

  * stripefs-datatest: 100 000 random operations (pwrite, ftruncate, pread,
    shared-mmap writes, fsync, reopen + full verify) with zero mismatches on a
    1-stripe and a 4-stripe file;
  * fio --verify=crc32c write-then-verify jobs on several stripe layouts;
  * a 1 GiB dense file and a sparse file with data past 4 GiB round-trip;
  * the stripes land on the OSTs that `stripefs getstripe` names, at the
    object offsets the striping formula gives (docs/internals.md).

Environment knobs: STRIPEFS_DATATEST_OPS (default 100000),
STRIPEFS_DATATEST_SEED (default: a fixed seed per case, printed).
Uses the session `cluster` fixture from conftest.py (1 MDS + 4 OSS, mounted).
"""

import hashlib
import os
import random
import re
import subprocess

import pytest

from conftest import wait_for

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

DATATEST_OPS = int(os.environ.get("STRIPEFS_DATATEST_OPS", "100000"))
LAYOUT_XATTR = "user.stripefs.layout"


# ---------------------------------------------------------------- helpers


def _size_value(text):
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)(i?[bB])?", text.strip())
    if not m:
        raise ValueError(text)
    mult = {"": 1, "k": KiB, "m": MiB, "g": GiB}[m.group(2).lower()]
    return int(m.group(1)) * mult


def parse_getstripe(text):
    """Parses `stripefs getstripe` output into
    {"stripe_size": int, "stripe_count": int, "objects": [(ost, oid), ...]}.
    Accepts `key: value` / `key=value` headers and an `obdidx objid` table."""
    out = {"stripe_size": None, "stripe_count": None, "objects": []}
    in_table = False
    for line in text.splitlines():
        low = line.strip().lower()
        if "obdidx" in low:
            in_table = True
            continue
        if in_table:
            toks = low.split()
            if len(toks) >= 2 and all(re.fullmatch(r"(0x[0-9a-f]+|\d+)", t)
                                      for t in toks[:2]):
                out["objects"].append((int(toks[0], 0), int(toks[1], 0)))
                continue
            if toks:
                in_table = False
        for key in ("stripe_size", "stripe_count"):
            m = re.search(key + r"\s*[:=]\s*(-?\d+\s*[kKmMgG]?)", low)
            if m and out[key] is None:
                out[key] = _size_value(m.group(1)) if key == "stripe_size" \
                    else int(m.group(1))
    return out


def parse_layout_xattr(path):
    """The client's virtual xattr: 'stripe_size=.. stripe_count=.. objects=o:i,..'."""
    text = os.getxattr(path, LAYOUT_XATTR).decode()
    kv = dict(tok.split("=", 1) for tok in text.split() if "=" in tok)
    objects = []
    if kv.get("objects"):
        for pair in kv["objects"].split(","):
            ost, oid = pair.split(":")
            objects.append((int(ost), int(oid)))
    return {"stripe_size": int(kv["stripe_size"]),
            "stripe_count": int(kv["stripe_count"]), "objects": objects}


def getstripe(cluster, path):
    return parse_getstripe(cluster.cli("getstripe", path).stdout)


def make_striped(cluster, path, count, size):
    """Creates `path` with the given layout through `stripefs setstripe` and
    checks that getstripe reports it."""
    cluster.cli("setstripe", "-c", count, "-S", size, path)
    assert os.path.isfile(path), "setstripe on a new path must create the file"
    lay = getstripe(cluster, path)
    assert lay["stripe_count"] == count, lay
    assert lay["stripe_size"] == size, lay
    return lay


def drop_cache(path):
    """Flush and evict the file's pages so the next read goes to the servers."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def chunks(seed, total, chunk=MiB):
    """Deterministic pseudo-random data, `chunk` bytes at a time."""
    rng = random.Random(seed)
    left = total
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def object_path(data_dir, oid):
    return os.path.join(data_dir, "objects", "%02x" % (oid % 256), str(oid))


def expected_objects(data, stripe_size, stripe_count):
    """Splits file bytes into per-stripe object bytes (docs/internals.md:
    unit u = off / S lives on object u % C at (u / C) * S + off % S)."""
    objs = [bytearray() for _ in range(stripe_count)]
    for u in range((len(data) + stripe_size - 1) // stripe_size):
        piece = data[u * stripe_size:(u + 1) * stripe_size]
        obj = objs[u % stripe_count]
        start = (u // stripe_count) * stripe_size
        assert len(obj) == start, "dense file: objects grow in unit order"
        obj += piece
    return [bytes(o) for o in objs]


def object_size(file_size, stripe_size, stripe_count, k):
    """Size object k must have for a dense file of `file_size` bytes."""
    units = (file_size + stripe_size - 1) // stripe_size
    last = None
    for u in range(k, units, stripe_count):
        last = u
    if last is None:
        return 0
    return (last // stripe_count) * stripe_size + \
        min(stripe_size, file_size - last * stripe_size)


# ---------------------------------------------------- (a) random-op tester


DATATEST_CASES = [
    # stripe_count, stripe_size, seed
    (1, 1 * MiB, 101),
    (4, 64 * KiB, 404),
]


def test_datatest_random_ops(cluster, fresh_dir):
    """100 000 random ops on a 1-stripe (1 MiB) and a 4-stripe (64 KiB)
    file, both at once (the mount serves them concurrently, and the run
    takes half the time). 8 MiB max size: 8 units of 1 MiB, or 128 units of
    64 KiB over 4 objects, so writes, truncates and mmap pages keep
    crossing stripes."""
    procs = []
    for count, size, seed in DATATEST_CASES:
        seed = int(os.environ.get("STRIPEFS_DATATEST_SEED", seed))
        path = os.path.join(fresh_dir, f"datatest-{count}")
        make_striped(cluster, path, count, size)
        cmd = [os.path.join(cluster.bin, "stripefs-datatest"), "--file", path,
               "--ops", str(DATATEST_OPS), "--seed", str(seed),
               "--max-size", str(8 * MiB), "--boundary", str(size)]
        procs.append((count, size, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    failures = []
    try:
        for count, size, p in procs:
            out, err = p.communicate(timeout=900)
            print(f"--- {count}-stripe, stripe size {size}:\n{out}{err}")
            if p.returncode != 0 or "PASS" not in out:
                failures.append(f"{count}-stripe/{size}: rc {p.returncode}\n"
                                f"{out}{err}")
    finally:
        for _, _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not failures, "datatest failed:\n" + "\n".join(failures)


def test_datatest_catches_corruption(cluster, fresh_dir):
    """The tester itself must notice a byte changed behind its model on this
    filesystem (otherwise a passing run above would mean nothing)."""
    path = os.path.join(fresh_dir, "datatest-selftest")
    make_striped(cluster, path, 4, 64 * KiB)
    cmd = [os.path.join(cluster.bin, "stripefs-datatest"), "--file", path,
           "--ops", "600", "--seed", "7", "--max-size", str(2 * MiB),
           "--corrupt-at-op", "590"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "MISMATCH" in p.stderr and "seed=7" in p.stderr, p.stderr


# ------------------------------------------------------------- (b) fio


FIO_JOBS = [
    # stripe_count, stripe_size, rw, block size args, file size
    (1, 1 * MiB, "write", ["--bs=1M"], "128M"),
    (2, 64 * KiB, "randwrite", ["--bs=16k"], "48M"),
    (4, 1 * MiB, "write", ["--bsrange=4k-2m"], "128M"),
    (4, 64 * KiB, "randwrite", ["--bsrange=512-256k"], "32M"),
]


@pytest.mark.parametrize("count,size,rw,bs,fsize", FIO_JOBS,
                         ids=[f"c{j[0]}-S{j[1] // KiB}K-{j[2]}" for j in FIO_JOBS])
def test_fio_verify(cluster, fresh_dir, count, size, rw, bs, fsize):
    # fio unlinks and recreates a write job's file, so the layout goes on
    # the directory (the default for its new files).
    cluster.cli("setstripe", "-c", count, "-S", size, fresh_dir)
    path = os.path.join(fresh_dir, "fio.dat")
    common = ["fio", "--name=verify", f"--filename={path}", f"--rw={rw}",
              *bs, f"--size={fsize}", "--ioengine=psync", "--fallocate=none",
              "--verify=crc32c", "--verify_fatal=1", "--randrepeat=1",
              "--randseed=4242", "--group_reporting"]
    # Pass 1: write, fsync, then fio reads everything back and checks it.
    p = subprocess.run(common + ["--do_verify=1", "--end_fsync=1"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"fio write+verify failed:\n{p.stdout}\n{p.stderr}"
    # Pass 2: with the page cache dropped, verify again from the servers.
    drop_cache(path)
    p = subprocess.run(common + ["--verify_only"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, f"fio verify_only failed:\n{p.stdout}\n{p.stderr}"
    lay = getstripe(cluster, path)
    assert (lay["stripe_count"], lay["stripe_size"]) == (count, size), lay
    assert len(lay["objects"]) == count, lay
    os.unlink(path)


# ------------------------------------------------------ (c) 1 GiB dense


def test_dense_1gib_roundtrip(cluster, fresh_dir):
    path = os.path.join(fresh_dir, "dense-1g")
    make_striped(cluster, path, 4, 1 * MiB)
    want = hashlib.sha256()
    with open(path, "wb", buffering=0) as f:
        for block in chunks(1234, 1 * GiB):
            want.update(block)
            assert f.write(block) == len(block)
        os.fsync(f.fileno())
    assert os.stat(path).st_size == 1 * GiB
    drop_cache(path)
    got = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            block = f.read(4 * MiB)
            if not block:
                break
            got.update(block)
            total += len(block)
    assert total == 1 * GiB
    assert got.hexdigest() == want.hexdigest(), "1 GiB file read back differs"
    os.unlink(path)


# ----------------------------------------------- (d) sparse past 4 GiB


SPARSE_EXTENTS = [
    # (offset, length)
    (0, 1 * MiB + 3),
    (1 * GiB + 4097, 70000),
    (4 * GiB - 1000, 2 * MiB),        # crosses the 4 GiB boundary
    (4 * GiB + 200 * MiB + 7, 12345),
]
SPARSE_SIZE = 4 * GiB + 256 * MiB     # tail hole up to here (ftruncate)


def test_sparse_past_4gib_roundtrip(cluster, fresh_dir):
    path = os.path.join(fresh_dir, "sparse")
    lay = make_striped(cluster, path, 4, 1 * MiB)
    rng = random.Random(77)
    extents = [(off, rng.randbytes(n)) for off, n in SPARSE_EXTENTS]
    fd = os.open(path, os.O_RDWR)
    try:
        for off, data in extents:
            assert os.pwrite(fd, data, off) == len(data)
        os.ftruncate(fd, SPARSE_SIZE)
        os.fsync(fd)
    finally:
        os.close(fd)
    assert os.stat(path).st_size == SPARSE_SIZE
    drop_cache(path)

    fd = os.open(path, os.O_RDONLY)
    try:
        # Each extent and the bytes around it, exactly.
        for off, data in extents:
            before = min(off, 4096)
            got = os.pread(fd, before + len(data) + 4096, off - before)
            assert got[:before] == bytes(before), f"hole before {off} not zero"
            assert got[before:before + len(data)] == data, \
                f"extent at {off} differs"
            assert got[before + len(data):] == bytes(4096), \
                f"hole after extent at {off} not zero"
        # Reading at and past EOF.
        assert os.pread(fd, 10, SPARSE_SIZE - 5) == bytes(5)
        assert os.pread(fd, 10, SPARSE_SIZE) == b""
        assert os.pread(fd, 10, SPARSE_SIZE + 5 * GiB) == b""
        # The whole file against its expected checksum.
        want = hashlib.sha256()
        got = hashlib.sha256()
        step = 8 * MiB
        zeros = bytes(step)
        pos = 0
        while pos < SPARSE_SIZE:
            n = min(step, SPARSE_SIZE - pos)
            block = os.pread(fd, n, pos)
            assert len(block) == n, f"short read at {pos}: {len(block)} of {n}"
            expect = bytearray(zeros[:n])
            for off, data in extents:
                lo, hi = max(off, pos), min(off + len(data), pos + n)
                if lo < hi:
                    expect[lo - pos:hi - pos] = data[lo - off:hi - off]
            want.update(expect)
            got.update(block)
            if block != expect:
                bad = next(i for i in range(n) if block[i] != expect[i])
                pytest.fail(f"sparse file differs at offset {pos + bad}")
            pos += n
        assert got.hexdigest() == want.hexdigest()
    finally:
        os.close(fd)

    # The OSTs keep the objects sparse: only about the written bytes are
    # allocated, not 4.25 GiB.
    allocated = 0
    for ost, oid in lay["objects"] or getstripe(cluster, path)["objects"]:
        p = object_path(cluster.oss_data(ost), oid)
        if os.path.exists(p):
            allocated += os.stat(p).st_blocks * 512
    assert allocated < 64 * MiB, f"objects allocate {allocated} bytes"
    os.unlink(path)


# ------------------------------------- (e) stripes land on named OSTs


def _write_dense(path, seed, size):
    data = random.Random(seed).randbytes(size)
    with open(path, "r+b", buffering=0) as f:
        assert f.write(data) == size
        os.fsync(f.fileno())
    return data


def _all_object_files(data_dir):
    root = os.path.join(data_dir, "objects")
    for sub, _, files in os.walk(root):
        for name in files:
            yield os.path.join(sub, name)


def _check_objects(cluster, path, data, stripe_size, stripe_count,
                   want_first_ost=None):
    lay = getstripe(cluster, path)
    assert lay["stripe_count"] == stripe_count, lay
    assert lay["stripe_size"] == stripe_size, lay
    objs = lay["objects"]
    assert len(objs) == stripe_count, f"getstripe lists {objs}"
    osts = [o for o, _ in objs]
    assert len(set(osts)) == stripe_count, f"stripes share an OST: {objs}"
    assert all(0 <= o < cluster.oss for o in osts), objs
    if want_first_ost is not None:
        assert osts[0] == want_first_ost, f"-i {want_first_ost} gave {objs}"
    # getstripe and the layout xattr agree.
    assert parse_layout_xattr(path)["objects"] == objs

    expect = expected_objects(data, stripe_size, stripe_count)
    for k, (ost, oid) in enumerate(objs):
        p = object_path(cluster.oss_data(ost), oid)
        assert os.path.isfile(p), \
            f"stripe {k}: object {oid} missing on ost{ost} ({p})"
        want_size = object_size(len(data), stripe_size, stripe_count, k)
        assert want_size == len(expect[k])
        st_size = os.stat(p).st_size
        assert st_size == want_size, \
            f"stripe {k}: ost{ost} object {oid} has {st_size} bytes, " \
            f"want {want_size}"
        with open(p, "rb") as f:
            assert f.read() == expect[k], \
                f"stripe {k}: ost{ost} object {oid} content differs"

    # OSTs that getstripe does not name hold none of this file's objects.
    named = set(osts)
    sizes = {len(e) for e in expect}
    for ost in range(cluster.oss):
        if ost in named:
            continue
        for p in _all_object_files(cluster.oss_data(ost)):
            if os.stat(p).st_size not in sizes:
                continue
            with open(p, "rb") as f:
                content = f.read()
            assert content not in expect, \
                f"ost{ost} (not in getstripe {objs}) holds a stripe of " \
                f"{path} at {p}"
    return objs


def test_stripes_land_on_named_osts_4x64k(cluster, fresh_dir):
    path = os.path.join(fresh_dir, "placed4")
    size, count = 64 * KiB, 4
    make_striped(cluster, path, count, size)
    data = _write_dense(path, 5, 13 * size + 777)  # uneven units per object
    _check_objects(cluster, path, data, size, count)


def test_stripes_land_on_named_osts_2x1m_offset(cluster, fresh_dir):
    path = os.path.join(fresh_dir, "placed2")
    size, count = 1 * MiB, 2
    cluster.cli("setstripe", "-c", count, "-S", size, "-i", 1, path)
    data = _write_dense(path, 6, 5 * size + 4321)
    _check_objects(cluster, path, data, size, count, want_first_ost=1)


def test_stripes_after_truncate_and_unlink(cluster, fresh_dir):
    """Shrinking a file shrinks its objects; removing it removes them."""
    path = os.path.join(fresh_dir, "shrink")
    size, count = 64 * KiB, 4
    make_striped(cluster, path, count, size)
    data = _write_dense(path, 8, 9 * size + 100)
    os.truncate(path, 3 * size + 10)
    data = data[:3 * size + 10]
    objs = _check_objects(cluster, path, data, size, count)
    os.unlink(path)

    def gone():
        return not any(os.path.exists(object_path(cluster.oss_data(o), i))
                       for o, i in objs)
    assert wait_for(gone, timeout=15), \
        f"objects {objs} still on the OSTs after unlink"
