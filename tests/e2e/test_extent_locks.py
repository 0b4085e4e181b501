"""File data under EXTENT locks on OST objects ("obj:<ost>:<oid>"), two
mounts of one cluster with a lock service:
- two mounts writing disjoint halves of one shared file (N-to-1) with many
  small writes get bytes exact on both mounts, and after the first round
  they stop taking each other's locks (the DLM counters of each mount stay
  nearly flat over a second round);
- a truncate on one mount is seen at once by a mount that had cached the
  pages (new size, zeros after re-extension), also on a striped file;
- the OSS takes the object locks itself (`stripefs-oss --dlm`).
"""

import os
import threading

from test_locks import new_file, two_mounts  # noqa: F401 (fixture)

CHUNK = 4096


def stats(path):
    """{(target, method): count} of this mount (user.stripefs.stats)."""
    out = {}
    for line in os.getxattr(path, "user.stripefs.stats").decode().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[(parts[0], parts[1])] = int(parts[2])
    return out


def dlm_calls(path):
    """Enqueue RPCs this mount sent to the DLM."""
    return stats(path).get(("dlm", "Enqueue"), 0)


def pattern(tag, off, n):
    """n bytes of a recognisable pattern for file offset off."""
    out = bytearray()
    pos = off
    while len(out) < n:
        out += f"{tag}{pos:012d}|".encode()
        pos = off + len(out)
    return bytes(out[:n])


def write_half(path, tag, start, size, errors):
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            for off in range(start, start + size, CHUNK):
                data = pattern(tag, off, CHUNK)
                assert os.pwrite(fd, data, off) == CHUNK
        finally:
            os.close(fd)
    except BaseException as e:  # reported by the main thread
        errors.append(e)


def run_disjoint(a, b, half, tags):
    errors = []
    ta = threading.Thread(target=write_half, args=(a, tags[0], 0, half,
                                                   errors))
    tb = threading.Thread(target=write_half, args=(b, tags[1], half, half,
                                                   errors))
    ta.start()
    tb.start()
    ta.join()
    tb.join()
    assert not errors, errors
    want = pattern(tags[0], 0, half) + pattern(tags[1], half, half)
    want = b"".join(pattern(tags[0], off, CHUNK)
                    for off in range(0, half, CHUNK)) + \
        b"".join(pattern(tags[1], off, CHUNK)
                 for off in range(half, 2 * half, CHUNK))
    for path in (a, b):
        assert os.stat(path).st_size == 2 * half
        with open(path, "rb") as f:
            got = f.read()
        assert len(got) == len(want)
        assert got == want


def check_disjoint_writers(two_mounts, layout=None):
    a, b = new_file(two_mounts)
    if layout is not None:
        os.setxattr(a, "user.stripefs.layout", layout.encode())
    half = 2 << 20
    run_disjoint(a, b, half, "AB")
    # Second round: each mount writes where it wrote before. Its locks are
    # cached and do not conflict with the other mount's: no ping-pong.
    before = (dlm_calls(a), dlm_calls(b))
    run_disjoint(a, b, half, "ab")
    after = (dlm_calls(a), dlm_calls(b))
    writes = half // CHUNK
    for x, y in zip(before, after):
        # The reads of the check above took PR over everything; the first
        # writes of the new round take those back once per object.
        # Ping-pong would be an enqueue every write or two.
        assert y - x < writes // 8, (before, after)


def test_disjoint_writers_one_object(two_mounts):
    check_disjoint_writers(two_mounts)


def test_disjoint_writers_striped(two_mounts):
    check_disjoint_writers(
        two_mounts, "stripe_size=65536 stripe_count=4")


def test_truncate_drops_cached_pages(two_mounts):
    data = os.urandom(300000)
    a, b = new_file(two_mounts, data)
    fb = os.open(b, os.O_RDONLY)
    try:
        assert os.pread(fb, 400000, 0) == data  # B caches the pages
        os.truncate(a, 1000)
        assert os.stat(b).st_size == 1000
        assert os.pread(fb, 400000, 0) == data[:1000]
        # Re-extended on A: B reads zeros past the cut, not its old pages.
        os.truncate(a, 200000)
        assert os.pread(fb, 400000, 0) == data[:1000] + b"\0" * 199000
        assert os.fstat(fb).st_size == 200000
    finally:
        os.close(fb)


def test_truncate_striped_file_seen_by_other_mount(two_mounts):
    a, b = new_file(two_mounts)
    os.setxattr(a, "user.stripefs.layout",
                b"stripe_size=65536 stripe_count=4")
    data = os.urandom(1 << 20)
    with open(a, "r+b") as f:
        f.write(data)
    with open(b, "rb") as f:
        assert f.read() == data  # B caches pages on every object
    fb = os.open(b, os.O_RDONLY)
    try:
        # O_TRUNC on A, then a short rewrite.
        with open(a, "wb") as f:
            f.write(b"x" * 70000)
        assert os.pread(fb, 1 << 21, 0) == b"x" * 70000
        os.truncate(a, 300000)
        assert os.pread(fb, 1 << 21, 0) == b"x" * 70000 + b"\0" * 230000
    finally:
        os.close(fb)


def test_oss_has_a_lock_session_and_truncate_is_coherent(two_mounts):
    c, a, b = two_mounts
    # `cluster up` hands --dlm to every OSS: the DLM sees a session per
    # OSS besides the MDS and the two mounts.
    servers = c.status()
    dlm = next(s for s in servers if s["role"] == "dlm")
    n_oss = sum(1 for s in servers if s["role"] == "oss")
    assert dlm["sessions"] == n_oss + 3
    fa, fb = new_file(two_mounts, b"z" * 100000)
    with open(fb, "rb") as g:
        assert g.read() == b"z" * 100000
    calls = dlm["rpc_counts"]["Enqueue"]
    os.truncate(fa, 10)
    with open(fb, "rb") as g:
        assert g.read() == b"z" * 10
    dlm = next(s for s in c.status() if s["role"] == "dlm")
    assert dlm["rpc_counts"]["Enqueue"] > calls


def test_truncate_beyond_the_ranges_another_mount_locked(two_mounts):
    # B ends up holding a data lock on the first MiB only (after a conflict
    # the mounts lock 1 MiB chunks), then A cuts the file well past it:
    # none of B's locks is taken back, yet B must see the new size. B reads
    # through an O_APPEND fd, which bypasses the kernel page cache (and the
    # kernel's attribute refresh before cached reads).
    mib = 1 << 20
    data = os.urandom(10 * mib)
    a, b = new_file(two_mounts, data)
    fb = os.open(b, os.O_RDWR | os.O_APPEND)
    fa = os.open(a, os.O_RDWR)
    try:
        assert os.pread(fb, 4096, 0) == data[:4096]
        os.pwrite(fa, b"x" * 4096, 5 * mib)
        assert os.pread(fb, 4096, 0) == data[:4096]
        os.ftruncate(fa, 2 * mib)
        assert os.pread(fb, 12 * mib, 0) == data[:2 * mib]
        assert os.fstat(fb).st_size == 2 * mib
    finally:
        os.close(fa)
        os.close(fb)
