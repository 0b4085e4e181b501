"""File data and size coherence between two mounts of one cluster with a
lock service: bytes written through one mount are read through the other at
once (also through an fd that had cached the old bytes), appends from both
mounts interleave without loss, a truncate is seen, and re-reading an
unchanged file hits the page cache (no OSS RPC at all).
"""

import os
import threading

from test_locks import new_file, two_mounts  # noqa: F401 (fixture)


def oss_rpcs(path):
    """Sum of this mount's RPCs to the OSTs (user.stripefs.stats)."""
    text = os.getxattr(path, "user.stripefs.stats").decode()
    total = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("ost"):
            total += int(parts[2])
    return total


def test_write_on_a_read_on_b_at_once(two_mounts):
    a, b = new_file(two_mounts)
    fa = os.open(a, os.O_RDWR)
    fb = os.open(b, os.O_RDONLY)
    try:
        # Written, not closed, not fsynced.
        os.pwrite(fa, b"first version\n" * 1000, 0)
        assert os.pread(fb, 20000, 0) == b"first version\n" * 1000
        assert os.fstat(fb).st_size == 14000
        assert os.stat(b).st_size == 14000
        # B has those pages cached now; A overwrites and grows.
        os.pwrite(fa, b"SECOND" * 3000, 0)
        assert os.pread(fb, 20000, 0) == b"SECOND" * 3000
        assert os.fstat(fb).st_size == 18000
    finally:
        os.close(fa)
        os.close(fb)
    # And the other way round.
    fb = os.open(b, os.O_WRONLY)
    try:
        os.pwrite(fb, b"from B", 100)
    finally:
        os.close(fb)
    with open(a, "rb") as f:
        assert f.read()[100:106] == b"from B"


def test_appends_from_both_mounts(two_mounts):
    a, b = new_file(two_mounts)
    n = 150
    errors = []

    def appender(path, tag):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                for i in range(n):
                    rec = f"{tag}{i:05d}".ljust(63, ".").encode() + b"\n"
                    assert os.write(fd, rec) == 64
            finally:
                os.close(fd)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    ta = threading.Thread(target=appender, args=(a, "A"))
    tb = threading.Thread(target=appender, args=(b, "B"))
    ta.start()
    tb.start()
    ta.join()
    tb.join()
    assert not errors, errors
    for path in (a, b):
        assert os.stat(path).st_size == 2 * n * 64
        with open(path, "rb") as f:
            data = f.read()
        recs = [data[i:i + 64] for i in range(0, len(data), 64)]
        want = {f"{t}{i:05d}".ljust(63, ".").encode() + b"\n"
                for t in "AB" for i in range(n)}
        assert sorted(recs) == sorted(want)


def test_truncate_on_a_seen_by_b(two_mounts):
    a, b = new_file(two_mounts, b"0123456789" * 1000)
    fb = os.open(b, os.O_RDONLY)
    try:
        assert len(os.pread(fb, 20000, 0)) == 10000  # B caches the pages
        os.truncate(a, 25)
        assert os.stat(b).st_size == 25
        # Through the fd that had cached the old pages, too.
        assert os.pread(fb, 20000, 0) == (b"0123456789" * 3)[:25]
    finally:
        os.close(fb)
    with open(b, "rb") as f:
        assert f.read() == (b"0123456789" * 3)[:25]
    # Grow again on B: A sees zeros past the old end.
    os.truncate(b, 40)
    with open(a, "rb") as f:
        assert f.read() == (b"0123456789" * 3)[:25] + b"\0" * 15


def test_reread_unchanged_file_sends_no_oss_rpc(two_mounts):
    a, b = new_file(two_mounts)
    chunk = os.urandom(1 << 20)
    with open(a, "wb") as f:
        for _ in range(64):
            f.write(chunk)
    with open(b, "rb") as f:
        assert f.read() == chunk * 64
    # One more pass: A's release reaches the MDS asynchronously after its
    # close, which may change the attributes B's cache is stamped with once.
    with open(b, "rb") as f:
        while f.read(1 << 20):
            pass
    before = oss_rpcs(b)
    for _ in range(2):
        with open(b, "rb") as f:
            while f.read(1 << 20):
                pass
    assert oss_rpcs(b) == before
    # After a change on A, B reads the new bytes (and needs the OSTs).
    with open(a, "r+b") as f:
        f.seek(5 << 20)
        f.write(b"changed")
    with open(b, "rb") as f:
        f.seek(5 << 20)
        assert f.read(7) == b"changed"
    assert oss_rpcs(b) > before
