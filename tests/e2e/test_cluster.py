"""Cluster-level end-to-end tests (issue 2, "Must show" 5): two mounts of one
cluster, `cluster down` + `cluster up` keeping every object, `cluster status`
in text and JSON, and `stripefs mount` of a second mountpoint.

The restart test restarts the session cluster and leaves it mounted and
usable for the tests that follow.
"""

import hashlib
import json
import os
import stat
import subprocess
import tempfile

import pytest

from conftest import USER_GID, USER_UID, _mounted, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: tests switch uids, chown and mknod")

MIB = 1024 * 1024


def write_file(path, data=b"", mode=None):
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def targets(cluster):
    return ["mdt0", *(f"ost{i}" for i in range(cluster.oss)), "dlm"]


@pytest.fixture
def second_mount(cluster):
    """Another mount of the session cluster, made with `stripefs mount`."""
    root = tempfile.mkdtemp(prefix="stripefs-m2-")
    path = os.path.join(root, "mnt2")
    try:
        cluster.mount_again(path)
        yield path
    finally:
        cluster.umount(path)
        if not _mounted(path):
            os.rmdir(path)
            os.rmdir(root)


# ==========================================================================
# status

def test_status_json_fields(cluster):
    status = cluster.status()
    assert isinstance(status, list)
    by_target = {s["target"]: s for s in status}
    assert sorted(by_target) == sorted(targets(cluster))
    addresses = {s["target"]: s["address"] for s in cluster.config()["servers"]}
    for t in targets(cluster):
        s = by_target[t]
        for key in ("target", "address", "pid", "state", "release"):
            assert key in s, f"{t} lacks {key}: {s}"
        assert s["state"] == "running"
        assert s["address"] == addresses[t]
        assert s["address"].startswith("127.0.0.1:")
        assert isinstance(s["release"], str) and s["release"]
        pid = int(s["pid"])
        os.kill(pid, 0)  # alive
        with open(os.path.join(cluster.home, "run", f"{t}.pid")) as f:
            assert int(f.read().strip()) == pid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        want = {"mdt0": b"stripefs-mds", "dlm": b"stripefs-dlm"}.get(
            t, b"stripefs-oss")
        assert os.path.basename(cmd[0]) == want
        assert t.encode() in cmd


def test_status_text_one_line_per_server(cluster):
    out = cluster.cli("cluster", "status", "--home", cluster.home).stdout
    status = {s["target"]: s for s in cluster.status()}
    for t in targets(cluster):
        lines = [line for line in out.splitlines()
                 if t in line.split() or line.startswith(t)]
        assert len(lines) == 1, f"{t}: {out}"
        assert str(status[t]["pid"]) in lines[0]
        assert status[t]["address"] in lines[0]


def test_cluster_json_config(cluster):
    cfg = cluster.config()
    roles = {s["target"]: s["role"] for s in cfg["servers"]}
    assert roles["mdt0"] == "mds"
    for i in range(cluster.oss):
        assert roles[f"ost{i}"] == "oss"
        assert os.path.isdir(cluster.oss_data(i))
    addrs = [s["address"] for s in cfg["servers"]]
    assert len(set(addrs)) == len(addrs)


def test_status_json_is_valid_json_only(cluster):
    out = cluster.cli("cluster", "status", "--home", cluster.home,
                      "--json").stdout
    json.loads(out)  # nothing else on stdout


# ==========================================================================
# two mounts

def test_second_mount_is_listed_and_shows_same_tree(cluster, second_mount):
    with open("/proc/mounts") as f:
        entries = [line.split() for line in f]
    mine = [e for e in entries if e[1] == os.path.realpath(second_mount)]
    assert mine and mine[0][2].startswith("fuse")
    top = os.path.join(cluster.mnt, "two-mounts-probe")
    os.makedirs(top, exist_ok=True)
    assert "two-mounts-probe" in os.listdir(second_mount)
    assert os.stat(second_mount).st_ino == os.stat(cluster.mnt).st_ino


def test_write_on_one_mount_read_on_other(cluster, fresh_dir, second_mount):
    name = os.path.basename(fresh_dir)
    a = os.path.join(fresh_dir, "f")
    b = os.path.join(second_mount, name, "f")
    data = os.urandom(3 * MIB + 4321)
    write_file(a, data)
    assert wait_for(lambda: os.path.exists(b), timeout=5)
    assert read_file(b) == data
    assert os.stat(b).st_size == len(data)
    # And the other way round, overwriting in place.
    with open(b, "r+b") as f:
        f.seek(MIB)
        f.write(b"from the second mount")
    want = data[:MIB] + b"from the second mount" + data[MIB + 21:]
    assert wait_for(lambda: read_file(a) == want, timeout=5)


def test_namespace_changes_visible_across_mounts(cluster, fresh_dir,
                                                 second_mount):
    name = os.path.basename(fresh_dir)
    other = os.path.join(second_mount, name)
    os.mkdir(os.path.join(fresh_dir, "made_on_a"))
    assert wait_for(lambda: os.path.isdir(os.path.join(other, "made_on_a")),
                    timeout=5)
    os.mkdir(os.path.join(other, "made_on_b"))
    os.symlink("made_on_b", os.path.join(other, "link_on_b"))
    assert wait_for(lambda: sorted(os.listdir(fresh_dir)) ==
                    ["link_on_b", "made_on_a", "made_on_b"], timeout=5)
    assert os.readlink(os.path.join(fresh_dir, "link_on_b")) == "made_on_b"
    os.rename(os.path.join(fresh_dir, "made_on_a"),
              os.path.join(fresh_dir, "renamed"))
    assert wait_for(lambda: sorted(os.listdir(other)) ==
                    ["link_on_b", "made_on_b", "renamed"], timeout=5)
    os.rmdir(os.path.join(other, "renamed"))
    assert wait_for(lambda: not os.path.exists(
        os.path.join(fresh_dir, "renamed")), timeout=5)


def test_attrs_and_xattrs_visible_across_mounts(cluster, fresh_dir,
                                                second_mount):
    a = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.chmod(a, 0o640)
    os.chown(a, USER_UID, USER_GID)
    os.setxattr(a, "user.color", b"blue")
    b = os.path.join(second_mount, os.path.basename(fresh_dir), "f")

    def same():
        st = os.stat(b)
        return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == \
            (0o640, USER_UID, USER_GID)
    assert wait_for(same, timeout=5)
    assert os.getxattr(b, "user.color") == b"blue"


def test_umount_second_keeps_first(cluster, fresh_dir):
    root = tempfile.mkdtemp(prefix="stripefs-m3-")
    path = os.path.join(root, "mnt3")
    try:
        cluster.mount_again(path)
        write_file(os.path.join(path, os.path.basename(fresh_dir), "f"),
                   b"via third")
    finally:
        cluster.umount(path)
    assert not _mounted(path)
    assert read_file(os.path.join(fresh_dir, "f")) == b"via third"
    os.rmdir(path)
    os.rmdir(root)


# ==========================================================================
# down + up keeps everything

def _build_tree(base):
    """Creates one of everything; returns a description to verify later."""
    os.makedirs(os.path.join(base, "d1", "d2", "d3"))
    files = {
        "empty": b"",
        "small": b"hello stripefs\n",
        "d1/stripe_edge": os.urandom(MIB + 1),
        "d1/d2/multi": os.urandom(5 * MIB + 12345),
        "d1/d2/d3/deep": b"deep file",
    }
    for rel, data in files.items():
        write_file(os.path.join(base, rel), data)
    # A striped file over every OST and a sparse file with a hole.
    wide = os.path.join(base, "wide")
    fd = os.open(wide, os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    os.setxattr(wide, "user.stripefs.layout",
                b"stripe_size=65536 stripe_count=4")
    write_file(wide, os.urandom(3 * MIB + 777))
    sparse = os.path.join(base, "sparse")
    with open(sparse, "wb") as f:
        f.write(b"start")
        f.seek(64 * MIB)
        f.write(b"end")
    # Links, special files, metadata.
    os.symlink("d1/d2/multi", os.path.join(base, "link_rel"))
    os.symlink("/nonexistent/target", os.path.join(base, "link_dangling"))
    os.link(os.path.join(base, "small"), os.path.join(base, "d1", "hard"))
    os.mkfifo(os.path.join(base, "fifo"), 0o600)
    os.mknod(os.path.join(base, "chr"), stat.S_IFCHR | 0o640,
             os.makedev(1, 7))
    os.chmod(os.path.join(base, "d1", "d2"), 0o2750)
    os.chown(os.path.join(base, "d1", "d2", "d3", "deep"), USER_UID, USER_GID)
    os.chmod(os.path.join(base, "d1", "d2", "d3", "deep"), 0o4711)
    os.setxattr(os.path.join(base, "small"), "user.note", b"persist me")
    os.setxattr(os.path.join(base, "d1"), "user.dirnote", b"\0bin\xff")
    os.setxattr(os.path.join(base, "small"), "trusted.t", b"trusted value")
    os.utime(os.path.join(base, "empty"), ns=(123456789123456789,
                                               987654321987654321))
    d = os.path.join(base, "striped_dir")
    os.mkdir(d)
    os.setxattr(d, "user.stripefs.layout", b"stripe_count=2 stripe_size=131072")
    return snapshot(base)


def snapshot(base):
    """Everything a user can see of the tree under base."""
    out = {}
    for root, dirs, names in os.walk(base):
        for n in sorted(dirs + names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, base)
            st = os.lstat(p)
            e = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                 "nlink": st.st_nlink, "ino": st.st_ino}
            if stat.S_ISREG(st.st_mode):
                e["size"] = st.st_size
                e["sha"] = sha(p)
                e["mtime"] = st.st_mtime_ns
                e["layout"] = os.getxattr(p, "user.stripefs.layout")
            if stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            if stat.S_ISCHR(st.st_mode):
                e["rdev"] = st.st_rdev
            if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                e["xattrs"] = {x: os.getxattr(p, x) for x in os.listxattr(p)}
            if stat.S_ISDIR(st.st_mode):
                e["layout"] = os.getxattr(p, "user.stripefs.layout")
            out[rel] = e
    return out


def test_down_up_keeps_everything(cluster):
    base = os.path.join(cluster.mnt, "persist-tree")
    root_mode = stat.S_IMODE(os.stat(cluster.mnt).st_mode)
    before = _build_tree(base)
    pids_before = {s["target"]: s["pid"] for s in cluster.status()}
    try:
        cluster.down()
        assert not _mounted(cluster.mnt), "cluster down left the mount"
        for t, pid in pids_before.items():
            assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"),
                            timeout=10), f"{t} (pid {pid}) still running"
        st = cluster.cli("cluster", "status", "--home", cluster.home,
                         "--json", check=False)
        if st.returncode == 0:
            assert not [s for s in json.loads(st.stdout)
                        if s.get("state") == "running"]
    finally:
        cluster.up(mount=True)
    assert _mounted(cluster.mnt)
    status = cluster.status()
    assert sorted(s["target"] for s in status) == sorted(targets(cluster))
    assert all(s["state"] == "running" for s in status)
    # Same addresses as before (kept in cluster.json).
    after = snapshot(base)
    assert sorted(after) == sorted(before)
    for rel in before:
        assert after[rel] == before[rel], rel
    assert stat.S_IMODE(os.stat(cluster.mnt).st_mode) == root_mode
    with open(os.path.join(base, "sparse"), "rb") as f:
        f.seek(MIB)
        assert f.read(16) == b"\0" * 16
    # The restarted cluster takes new work.
    p = write_file(os.path.join(base, "after-restart"), os.urandom(2 * MIB))
    assert os.stat(p).st_size == 2 * MIB
    os.link(os.path.join(base, "small"), os.path.join(base, "hard2"))
    assert os.stat(os.path.join(base, "small")).st_nlink == 3
    # And the persisted tree can be removed as a whole.
    subprocess.run(["rm", "-rf", base], check=True)
    assert not os.path.exists(base)

