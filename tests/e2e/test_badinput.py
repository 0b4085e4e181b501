"""Bad input on the CLI and on the mount (issue 2, "Must show" 6), plus the
setstripe / getstripe happy paths.

Every bad-input case must fail cleanly: a non-zero exit with a message on
stderr (CLI) or a precise errno (mount), and every server still running
afterwards.
"""

import errno
import os
import re
import tempfile

import pytest

LAYOUT_XATTR = "user.stripefs.layout"
KIB64 = 64 * 1024


def err(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return 0
    except OSError as e:
        return e.errno


def write_file(path, data=b""):
    with open(path, "wb") as f:
        f.write(data)
    return path


def parse_getstripe(text):
    """(count, size, [(ost, oid)...]) from `stripefs getstripe` output."""
    count = re.search(r"stripe_count:\s*(-?\d+)", text)
    size = re.search(r"stripe_size:\s*(\d+)", text)
    assert count and size, f"unparsable getstripe output:\n{text}"
    objects = []
    lines = text.splitlines()
    if any(line.strip().startswith("obdidx") for line in lines):
        start = next(i for i, line in enumerate(lines)
                     if line.strip().startswith("obdidx"))
        for line in lines[start + 1:]:
            m = re.match(r"\s*(\d+)\s+(\d+)\s*$", line)
            if m:
                objects.append((int(m.group(1)), int(m.group(2))))
    return int(count.group(1)), int(size.group(1)), objects


def parse_layout_xattr(value):
    fields = dict(f.split("=", 1) for f in value.decode().split())
    objects = []
    if fields.get("objects"):
        for o in fields["objects"].split(","):
            ost, oid = o.split(":")
            objects.append((int(ost), int(oid)))
    return int(fields["stripe_count"]), int(fields["stripe_size"]), objects


def all_running(cluster):
    st = cluster.status()
    targets = {s["target"]: s for s in st}
    want = {"mdt0", *(f"ost{i}" for i in range(cluster.oss))}
    missing = want - set(targets)
    assert not missing, f"status lacks {missing}: {st}"
    for t in want:
        assert targets[t]["state"] == "running", targets[t]
        os.kill(int(targets[t]["pid"]), 0)
    return True


@pytest.fixture
def servers_survive(cluster):
    """Checks after the test that nothing crashed and the mount works."""
    yield
    all_running(cluster)
    probe = os.path.join(cluster.mnt, ".probe-after-badinput")
    write_file(probe, b"still alive")
    with open(probe, "rb") as f:
        assert f.read() == b"still alive"
    os.unlink(probe)


# ==========================================================================
# CLI: setstripe

@pytest.mark.parametrize("target", ["new_file", "empty_file", "dir"])
@pytest.mark.parametrize("args", [
    ["-S", "100000"], ["-S", "65537"], ["-S", "1000"], ["-S", "96K"],
    ["-S", "abc"], ["-S", "-65536"],
    ["-c", "5"], ["-c", "100"], ["-c", "-7"],
    ["-i", "4"], ["-i", "99"],
    ["-c", "2", "-i", "17"],
], ids=lambda a: "_".join(a))
def test_setstripe_bad_arguments(cluster, fresh_dir, servers_survive, target,
                                 args):
    p = os.path.join(fresh_dir, "x")
    if target == "empty_file":
        write_file(p)
    elif target == "dir":
        os.mkdir(p)
    before = os.getxattr(p, LAYOUT_XATTR) if target != "new_file" else None
    r = cluster.cli("setstripe", *args, p, check=False)
    assert r.returncode != 0, f"setstripe {args} succeeded: {r.stdout}"
    assert r.stderr.strip(), "no message on stderr"
    assert r.returncode < 128, "CLI died of a signal"
    if target == "new_file":
        # A failed setstripe on a new path leaves nothing behind.
        assert not os.path.exists(p)
    else:
        assert os.getxattr(p, LAYOUT_XATTR) == before


def test_setstripe_on_non_empty_file(cluster, fresh_dir, servers_survive):
    p = write_file(os.path.join(fresh_dir, "f"), b"has data")
    before = os.getxattr(p, LAYOUT_XATTR)
    r = cluster.cli("setstripe", "-c", "2", p, check=False)
    assert r.returncode != 0 and r.stderr.strip()
    assert os.getxattr(p, LAYOUT_XATTR) == before
    with open(p, "rb") as f:
        assert f.read() == b"has data"


def test_setstripe_outside_stripefs(cluster, servers_survive):
    with tempfile.TemporaryDirectory() as d:
        r = cluster.cli("setstripe", "-c", "1", os.path.join(d, "f"),
                        check=False)
        assert r.returncode != 0 and r.stderr.strip()


def test_setstripe_nothing_to_set_on_existing(cluster, fresh_dir,
                                              servers_survive):
    p = write_file(os.path.join(fresh_dir, "f"))
    r = cluster.cli("setstripe", p, check=False)
    assert r.returncode != 0 and r.stderr.strip()


# ==========================================================================
# CLI: getstripe and other commands

@pytest.mark.parametrize("where", ["tmp_file", "tmp_dir", "missing_on_mount",
                                   "missing_outside"])
def test_getstripe_bad_path(cluster, fresh_dir, servers_survive, where):
    with tempfile.TemporaryDirectory() as d:
        if where == "tmp_file":
            p = write_file(os.path.join(d, "f"), b"x")
        elif where == "tmp_dir":
            p = d
        elif where == "missing_on_mount":
            p = os.path.join(fresh_dir, "missing")
        else:
            p = os.path.join(d, "missing")
        r = cluster.cli("getstripe", p, check=False)
    assert r.returncode != 0
    assert r.stderr.strip()
    assert r.returncode < 128


@pytest.mark.parametrize("args", [
    ["frobnicate"], ["cluster", "explode"], ["getstripe"], ["setstripe"],
    ["--no-such-flag"], ["cluster", "status", "--no-such-flag"],
    ["setstripe", "-c", "two", "/tmp/x"],
], ids=lambda a: "_".join(a))
def test_cli_unknown_or_malformed(cluster, servers_survive, args):
    r = cluster.cli(*args, check=False)
    assert r.returncode != 0
    assert r.returncode < 128
    assert r.stderr.strip()


def test_cluster_status_bad_home(cluster, servers_survive):
    with tempfile.TemporaryDirectory() as d:
        r = cluster.cli("cluster", "status", "--home",
                        os.path.join(d, "nothing"), check=False)
    assert r.returncode != 0 and r.stderr.strip()


def test_mount_bad_mountpoint(cluster, servers_survive):
    with tempfile.TemporaryDirectory() as d:
        r = cluster.cli("mount", "--home", cluster.home,
                        os.path.join(d, "no", "such", "dir"), check=False,
                        timeout=60)
    assert r.returncode != 0 and r.stderr.strip()


# ==========================================================================
# Mount side: the layout xattr with bad values

@pytest.mark.parametrize("value,expect", [
    ("stripe_size=100000", errno.EINVAL),
    ("stripe_size=0", errno.EINVAL),
    ("stripe_count=5", errno.EINVAL),
    ("stripe_offset=4", errno.EINVAL),
    ("stripe_offset=1000", errno.EINVAL),
    ("garbage", errno.EINVAL),
    ("stripe_size=abc", errno.EINVAL),
])
def test_layout_xattr_bad_value(cluster, fresh_dir, servers_survive, value,
                                expect):
    p = write_file(os.path.join(fresh_dir, "f"))
    before = os.getxattr(p, LAYOUT_XATTR)
    assert err(os.setxattr, p, LAYOUT_XATTR, value.encode()) == expect
    assert os.getxattr(p, LAYOUT_XATTR) == before


def test_layout_xattr_on_file_with_data_ebusy(cluster, fresh_dir,
                                               servers_survive):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    assert err(os.setxattr, p, LAYOUT_XATTR, b"stripe_count=2") == errno.EBUSY


# ==========================================================================
# Mount side: names and offsets

@pytest.mark.parametrize("op", ["create", "mkdir", "symlink", "rename",
                                "lookup"])
def test_name_too_long_servers_stay_up(cluster, fresh_dir, servers_survive,
                                       op):
    long = os.path.join(fresh_dir, "n" * 256)
    src = write_file(os.path.join(fresh_dir, "src"))
    fns = {
        "create": lambda: write_file(long),
        "mkdir": lambda: os.mkdir(long),
        "symlink": lambda: os.symlink("src", long),
        "rename": lambda: os.rename(src, long),
        "lookup": lambda: os.stat(long),
    }
    assert err(fns[op]) == errno.ENAMETOOLONG
    assert os.listdir(fresh_dir) == ["src"]


@pytest.mark.parametrize("offset", [2**63 - 1, 2**63 - 4096, 2**62, 2**60,
                                    2**53])
def test_pwrite_beyond_max_file_size(cluster, fresh_dir, servers_survive,
                                     offset):
    p = write_file(os.path.join(fresh_dir, "f"), b"keep")
    fd = os.open(p, os.O_RDWR)
    try:
        assert err(os.pwrite, fd, b"xyz", offset) in (errno.EFBIG,
                                                      errno.EINVAL)
        assert os.fstat(fd).st_size == 4
        assert os.pread(fd, 100, 0) == b"keep"
    finally:
        os.close(fd)
    assert os.stat(p).st_size == 4


def test_pread_far_beyond_eof_reads_nothing(cluster, fresh_dir,
                                            servers_survive):
    p = write_file(os.path.join(fresh_dir, "f"), b"small")
    fd = os.open(p, os.O_RDONLY)
    try:
        assert os.pread(fd, 100, 2**62) == b""
        assert os.pread(fd, 100, 5) == b""
        assert os.pread(fd, 100, 2) == b"all"
    finally:
        os.close(fd)


def test_negative_offset_einval(cluster, fresh_dir, servers_survive):
    p = write_file(os.path.join(fresh_dir, "f"), b"small")
    fd = os.open(p, os.O_RDWR)
    try:
        assert err(os.pwrite, fd, b"x", -1) == errno.EINVAL
        assert err(os.pread, fd, 1, -4096) == errno.EINVAL
    finally:
        os.close(fd)


# ==========================================================================
# setstripe / getstripe happy paths

@pytest.mark.parametrize("count,size", [(1, KIB64), (2, 1024 * 1024),
                                        (4, 128 * 1024), (3, 4 * 1024 * 1024),
                                        (4, 1024 * 1024)])
def test_setstripe_getstripe_new_file(cluster, fresh_dir, count, size):
    p = os.path.join(fresh_dir, "f")
    cluster.cli("setstripe", "-c", count, "-S", size, p)
    got_count, got_size, objects = parse_getstripe(
        cluster.cli("getstripe", p).stdout)
    assert (got_count, got_size) == (count, size)
    assert len(objects) == count
    osts = [o for o, _ in objects]
    assert len(set(osts)) == count, f"stripes share an OST: {osts}"
    assert all(0 <= o < cluster.oss for o in osts)
    # The mount's view agrees with the CLI's.
    assert parse_layout_xattr(os.getxattr(p, LAYOUT_XATTR)) == \
        (count, size, objects)


def test_setstripe_all_osts(cluster, fresh_dir):
    p = os.path.join(fresh_dir, "f")
    cluster.cli("setstripe", "-c", "-1", p)
    count, _, objects = parse_getstripe(cluster.cli("getstripe", p).stdout)
    assert count == cluster.oss
    assert sorted(o for o, _ in objects) == list(range(cluster.oss))


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_setstripe_index(cluster, fresh_dir, index):
    p = os.path.join(fresh_dir, "f")
    cluster.cli("setstripe", "-c", "1", "-i", index, p)
    _, _, objects = parse_getstripe(cluster.cli("getstripe", p).stdout)
    assert [o for o, _ in objects] == [index]


def test_setstripe_on_existing_empty_file(cluster, fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    cluster.cli("setstripe", "-c", "3", "-S", "256K", p)
    count, size, objects = parse_getstripe(cluster.cli("getstripe", p).stdout)
    assert (count, size, len(objects)) == (3, 256 * 1024, 3)
    data = os.urandom(3 * 256 * 1024 + 1000)
    write_file(p, data)
    with open(p, "rb") as f:
        assert f.read() == data


def test_setstripe_directory_default_inherited(cluster, fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    old = write_file(os.path.join(d, "old"))
    old_layout = os.getxattr(old, LAYOUT_XATTR)
    cluster.cli("setstripe", "-c", "2", "-S", "512K", d)
    count, size, objects = parse_getstripe(cluster.cli("getstripe", d).stdout)
    assert (count, size, objects) == (2, 512 * 1024, [])
    new = write_file(os.path.join(d, "new"), b"data")
    count, size, objects = parse_getstripe(
        cluster.cli("getstripe", new).stdout)
    assert (count, size) == (2, 512 * 1024)
    assert len({o for o, _ in objects}) == 2
    assert os.getxattr(old, LAYOUT_XATTR) == old_layout
    # Subdirectories inherit the default too.
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    f = write_file(os.path.join(sub, "f"))
    assert parse_getstripe(cluster.cli("getstripe", f).stdout)[:2] == \
        (2, 512 * 1024)


def test_getstripe_default_layout(cluster, fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    count, size, objects = parse_getstripe(cluster.cli("getstripe", p).stdout)
    root_count = cluster.config().get("stripe_count", 1)
    if root_count == -1:
        root_count = cluster.oss
    assert count == root_count
    assert size == cluster.config().get("stripe_size", 1024 * 1024)
    assert len(objects) == count


def test_df_lists_every_target(cluster):
    r = cluster.cli("df", cluster.mnt)
    for t in ["mdt0", *(f"ost{i}" for i in range(cluster.oss))]:
        assert t in r.stdout
