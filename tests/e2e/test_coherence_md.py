"""Metadata coherence across two mounts of one cluster with a lock service:
what mount A's completed syscall changed, mount B's next syscall sees (no
sleeps, no retries), while repeated stats of unchanged files on one mount
cost no MDS RPC (counted by the virtual xattr user.stripefs.stats)."""
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import (BIN, USER_GID, USER_UID, Cluster, _mounted,
                      _run_as)

STATS = "user.stripefs.stats"


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


class DlmCluster:
    """A cluster with a DLM and two mounts. When `cluster up` does not start
    a DLM itself (no "dlm" server in cluster.json), one is started here and
    the MDS is restarted with --dlm; whatever is started here is stopped
    here."""

    def __init__(self, root):
        self.root = root
        self.c = Cluster(os.path.join(root, "home"), os.path.join(root, "a"),
                         oss=2)
        self.own_procs = []  # (Popen) started by this fixture

    def start(self):
        self.c.up(mount=False)
        roles = [s.get("role") for s in self.c.config()["servers"]]
        if "dlm" not in roles:
            self._add_dlm_by_hand()
        self.a = self.c.mount_again(os.path.join(self.root, "a"))
        self.b = self.c.mount_again(os.path.join(self.root, "b"))

    def _add_dlm_by_hand(self):
        port = _free_port()
        data = os.path.join(self.root, "dlm-data")
        os.makedirs(data, exist_ok=True)
        log = open(os.path.join(self.root, "dlm.log"), "w")
        dlm = subprocess.Popen(
            [os.path.join(BIN, "stripefs-dlm"), "--target", "dlm", "--listen",
             f"127.0.0.1:{port}", "--data", data],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.own_procs.append(dlm)
        _wait_port(port)
        # Restart the MDS with --dlm, same arguments otherwise.
        mds = self.c.server("mdt0")
        pidfile = os.path.join(self.c.home, "run", "mdt0.pid")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 20
        while time.time() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        mlog = open(os.path.join(self.root, "mds-dlm.log"), "w")
        p = subprocess.Popen(argv + ["--dlm", f"127.0.0.1:{port}"],
                             stdout=mlog, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.own_procs.append(p)
        with open(pidfile, "w") as f:
            f.write(f"{p.pid}\n")
        _wait_port(int(mds["address"].rsplit(":", 1)[1]))

    def stop(self):
        for m in (getattr(self, "b", None), getattr(self, "a", None)):
            if m:
                self.c.umount(m)
        self.c.down()
        for p in reversed(self.own_procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.c.force_cleanup()
        for m in (os.path.join(self.root, "a"), os.path.join(self.root, "b")):
            if _mounted(m):
                subprocess.run(["fusermount3", "-u", "-z", m], check=False)


@pytest.fixture(scope="module")
def two():
    root = tempfile.mkdtemp(prefix="stripefs-mdcoh-")
    os.chmod(root, 0o755)  # other users reach the mounts
    d = DlmCluster(root)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dirs(two):
    name = "t-" + uuid.uuid4().hex[:12]
    a = os.path.join(two.a, name)
    os.mkdir(a)
    os.chmod(a, 0o777)
    return a, os.path.join(two.b, name)


def _stats(path):
    counts = {}
    for line in os.getxattr(path, STATS).decode().splitlines():
        target, method, n = line.split()
        counts[(target, method)] = int(n)
    return counts


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_cluster_has_dlm(two):
    text = os.getxattr(two.a, STATS).decode()
    assert any(line.startswith("dlm ") for line in text.splitlines()), text
    assert STATS not in os.listxattr(two.a)


def test_chmod_permission_follows(dirs):
    a, b = dirs
    with open(os.path.join(a, "f"), "wb") as f:
        f.write(b"secret")
    os.chmod(os.path.join(a, "f"), 0o644)
    fb = os.path.join(b, "f")
    assert _run_as(USER_UID, USER_GID, _read, fb) == b"secret"
    assert stat.S_IMODE(os.stat(fb).st_mode) == 0o644
    os.chmod(os.path.join(a, "f"), 0o600)
    assert stat.S_IMODE(os.stat(fb).st_mode) == 0o600
    with pytest.raises(PermissionError):
        _run_as(USER_UID, USER_GID, _read, fb)
    os.chmod(os.path.join(a, "f"), 0o644)
    assert _run_as(USER_UID, USER_GID, _read, fb) == b"secret"


def test_chown_follows(dirs):
    a, b = dirs
    open(os.path.join(a, "f"), "w").close()
    os.chmod(os.path.join(a, "f"), 0o600)
    fb = os.path.join(b, "f")
    assert os.stat(fb).st_uid == 0
    with pytest.raises(PermissionError):
        _run_as(USER_UID, USER_GID, os.chmod, fb, 0o644)
    os.chown(os.path.join(a, "f"), USER_UID, USER_GID)
    st = os.stat(fb)
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    _run_as(USER_UID, USER_GID, os.chmod, fb, 0o640)  # owner may now
    assert stat.S_IMODE(os.stat(os.path.join(a, "f")).st_mode) == 0o640


def test_rename_follows(dirs):
    a, b = dirs
    with open(os.path.join(a, "old"), "w") as f:
        f.write("x")
    assert os.path.exists(os.path.join(b, "old"))
    assert not os.path.exists(os.path.join(b, "new"))
    os.rename(os.path.join(a, "old"), os.path.join(a, "new"))
    assert not os.path.exists(os.path.join(b, "old"))
    with open(os.path.join(b, "new")) as f:
        assert f.read() == "x"


def test_rename_over_existing_follows(dirs):
    a, b = dirs
    for n in ("src", "dst"):
        with open(os.path.join(a, n), "w") as f:
            f.write(n)
    assert os.stat(os.path.join(b, "dst")).st_nlink == 1
    ino_src = os.stat(os.path.join(b, "src")).st_ino
    os.rename(os.path.join(a, "src"), os.path.join(a, "dst"))
    assert os.stat(os.path.join(b, "dst")).st_ino == ino_src
    assert not os.path.exists(os.path.join(b, "src"))


def test_unlink_follows(dirs):
    a, b = dirs
    open(os.path.join(a, "f"), "w").close()
    assert os.path.exists(os.path.join(b, "f"))
    assert os.listdir(b) == ["f"]
    os.unlink(os.path.join(a, "f"))
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(b, "f"))
    assert "f" not in os.listdir(b)


def test_mkdir_rmdir_follow(dirs):
    a, b = dirs
    assert not os.path.exists(os.path.join(b, "sub"))
    os.mkdir(os.path.join(a, "sub"))
    assert os.path.isdir(os.path.join(b, "sub"))
    assert os.stat(b).st_nlink == 3
    os.rmdir(os.path.join(a, "sub"))
    assert not os.path.exists(os.path.join(b, "sub"))
    assert os.stat(b).st_nlink == 2
    # And the other way round.
    os.mkdir(os.path.join(b, "sub2"))
    assert os.path.isdir(os.path.join(a, "sub2"))
    os.rmdir(os.path.join(b, "sub2"))
    assert not os.path.exists(os.path.join(a, "sub2"))


def test_xattr_set_remove_follow(dirs):
    a, b = dirs
    open(os.path.join(a, "f"), "w").close()
    fb = os.path.join(b, "f")
    with pytest.raises(OSError) as e:
        os.getxattr(fb, "user.color")
    assert e.value.errno == errno.ENODATA
    os.setxattr(os.path.join(a, "f"), "user.color", b"blue")
    assert os.getxattr(fb, "user.color") == b"blue"
    assert "user.color" in os.listxattr(fb)
    os.setxattr(os.path.join(a, "f"), "user.color", b"red")
    assert os.getxattr(fb, "user.color") == b"red"
    os.removexattr(os.path.join(a, "f"), "user.color")
    with pytest.raises(OSError) as e:
        os.getxattr(fb, "user.color")
    assert e.value.errno == errno.ENODATA
    assert "user.color" not in os.listxattr(fb)


def test_hard_link_count_follows(dirs):
    a, b = dirs
    open(os.path.join(a, "f"), "w").close()
    fb = os.path.join(b, "f")
    assert os.stat(fb).st_nlink == 1
    os.link(os.path.join(a, "f"), os.path.join(a, "g"))
    assert os.stat(fb).st_nlink == 2
    assert os.stat(os.path.join(b, "g")).st_ino == os.stat(fb).st_ino
    os.unlink(os.path.join(a, "g"))
    assert os.stat(fb).st_nlink == 1
    assert not os.path.exists(os.path.join(b, "g"))


def test_create_appears_in_readdir(dirs):
    a, b = dirs
    assert os.listdir(b) == []
    open(os.path.join(a, "new"), "w").close()
    assert os.listdir(b) == ["new"]
    open(os.path.join(a, "new2"), "w").close()
    assert sorted(os.listdir(b)) == ["new", "new2"]


def test_negative_lookup_turns_positive(dirs):
    a, b = dirs
    fb = os.path.join(b, "later")
    for _ in range(3):
        with pytest.raises(FileNotFoundError):
            os.stat(fb)
    with open(os.path.join(a, "later"), "w") as f:
        f.write("hello")
    assert os.stat(fb).st_size == 5
    with open(fb) as f:
        assert f.read() == "hello"


def test_truncate_size_follows(dirs):
    a, b = dirs
    with open(os.path.join(a, "f"), "w") as f:
        f.write("0123456789")
    assert os.stat(os.path.join(b, "f")).st_size == 10
    os.truncate(os.path.join(a, "f"), 3)
    assert os.stat(os.path.join(b, "f")).st_size == 3


def test_repeated_stats_send_no_mds_rpc(dirs):
    a, _ = dirs
    paths = []
    for i in range(10):
        p = os.path.join(a, f"f{i}")
        with open(p, "w") as f:
            f.write("x" * i)
        paths.append(p)
    for p in paths:  # warm the caches (and the stats read path)
        os.stat(p)
    _stats(a)
    before = _stats(a)
    for i in range(10000):
        st = os.stat(paths[i % 10])
        assert st.st_size == i % 10
    after = _stats(a)
    mds_before = {k: v for k, v in before.items() if k[0] == "mds"}
    mds_after = {k: v for k, v in after.items() if k[0] == "mds"}
    assert mds_after == mds_before
    assert any(k[0] == "mds" and k[1] in ("Lookup", "GetAttr")
               for k in after)


def test_kernel_caches_locked_attributes_and_forgets_them_on_change(dirs):
    """Attributes backed by a metadata lock are cached by the kernel itself
    (no FUSE GETATTR reaches the daemon), yet a chmod/chown/truncate on the
    other mount shows on this one's very next stat: the lock's callback
    made the kernel forget them."""
    a, b = dirs
    pa = os.path.join(a, "k")
    pb = os.path.join(b, "k")
    with open(pa, "w") as f:
        f.write("12345")
    os.chmod(pa, 0o600)
    for _ in range(3):  # lock taken and attributes cached on A
        os.stat(pa)
    before = _stats(a)
    for _ in range(2000):
        st = os.stat(pa)
        assert stat.S_IMODE(st.st_mode) == 0o600
    after = _stats(a)
    got = after.get(("client", "fuse_getattr"), 0) - \
        before.get(("client", "fuse_getattr"), 0)
    assert got < 50, f"{got} FUSE GETATTRs for 2000 stats of unchanged file"
    for mode in (0o640, 0o604, 0o755):
        os.chmod(pb, mode)
        assert stat.S_IMODE(os.stat(pa).st_mode) == mode
    os.chown(pb, 1234, 5678)
    st = os.stat(pa)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.truncate(pb, 2)
    assert os.stat(pa).st_size == 2


def test_repeated_listing_sends_no_mds_rpc_until_changed(dirs):
    a, b = dirs
    for i in range(5):
        open(os.path.join(a, f"f{i}"), "w").close()
    expect = sorted(f"f{i}" for i in range(5))
    assert sorted(os.listdir(b)) == expect
    for name in expect:  # ls -l: attributes too
        os.stat(os.path.join(b, name))
    before = _stats(b)
    for _ in range(200):
        assert sorted(os.listdir(b)) == expect
        for e in os.scandir(b):
            e.stat()
    after = _stats(b)
    assert {k: v for k, v in after.items() if k[0] == "mds"} == \
        {k: v for k, v in before.items() if k[0] == "mds"}
    os.rename(os.path.join(a, "f0"), os.path.join(a, "g0"))
    assert sorted(os.listdir(b)) == sorted(expect[1:] + ["g0"])


def test_concurrent_changes_from_both_mounts_finish_coherent(dirs):
    """Both mounts create, stat, rename, list and remove in one directory at
    once (locks asked back and forth): everything finishes and both mounts
    end with the same view."""
    import concurrent.futures

    a, b = dirs

    def worker(base, tag):
        for i in range(60):
            p = os.path.join(base, f"{tag}{i}")
            with open(p, "w") as f:
                f.write(tag)
            os.stat(p)
            os.chmod(p, 0o600 if i % 2 else 0o644)
            os.rename(p, p + ".r")
            os.listdir(base)
            if i % 3 == 0:
                os.unlink(p + ".r")
        return True

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(worker, a, "a"), ex.submit(worker, b, "b"),
                ex.submit(worker, a, "c"), ex.submit(worker, b, "d")]
        for f in futs:
            assert f.result(timeout=120)
    expect = sorted(f"{t}{i}.r" for t in "abcd" for i in range(60) if i % 3)
    assert sorted(os.listdir(a)) == expect
    assert sorted(os.listdir(b)) == expect
    for name in expect:
        sa = os.stat(os.path.join(a, name))
        sb = os.stat(os.path.join(b, name))
        assert (sa.st_ino, sa.st_mode, sa.st_nlink) == \
            (sb.st_ino, sb.st_mode, sb.st_nlink)


def test_own_creates_keep_the_directory_cached(dirs):
    """One mount's own creates and unlinks in a directory do not take its
    lock on the directory away (own-change exemption): no lock is called
    back or cancelled, the directory never becomes contended, a stat of a
    created name costs no MDS lookup, and the other mount sees it all."""
    a, b = dirs
    before = _stats(a)
    for i in range(40):
        fd = os.open(os.path.join(a, f"o{i}"), os.O_CREAT | os.O_EXCL |
                     os.O_WRONLY, 0o644)
        os.close(fd)
    mid = _stats(a)
    assert mid.get(("client", "md_bypass"), 0) == \
        before.get(("client", "md_bypass"), 0)
    # One Lookup per create (the name was unknown), none for the stats.
    for i in range(40):
        os.stat(os.path.join(a, f"o{i}"))
    after = _stats(a)
    assert after.get(("mds", "Lookup"), 0) - before.get(("mds", "Lookup"), 0) \
        <= 40
    for i in range(0, 40, 2):
        os.unlink(os.path.join(a, f"o{i}"))
    end = _stats(a)
    # Only the unlinked files' own locks are cancelled, not the directory's.
    assert end.get(("dlm", "Cancel"), 0) - before.get(("dlm", "Cancel"), 0) \
        <= 20
    assert end.get(("client", "md_bypass"), 0) == \
        before.get(("client", "md_bypass"), 0)
    expect = sorted(f"o{i}" for i in range(1, 40, 2))
    assert sorted(os.listdir(b)) == expect
    assert sorted(os.listdir(a)) == expect
    for i in range(0, 40, 2):
        assert not os.path.exists(os.path.join(a, f"o{i}"))


def test_created_files_come_with_their_lock(dirs):
    """A create brings the new file's metadata lock (intent lock, granted
    by the MDS in the mount's name): neither the create nor the first
    stats of the new files cost a GetAttr or an Enqueue, yet a chmod, a
    write and an unlink on the other mount show on this one at once."""
    a, b = dirs
    before = _stats(a)
    for i in range(20):
        os.close(os.open(os.path.join(a, f"n{i}"),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    for i in range(20):
        assert stat.S_IMODE(os.stat(os.path.join(a, f"n{i}")).st_mode) == 0o644
    after = _stats(a)

    def grew(key):
        return after.get(key, 0) - before.get(key, 0)
    assert grew(("mds", "GetAttr")) == 0, after
    assert grew(("dlm", "Enqueue")) == 0, after
    # The directory was listed whole once (under its lock): the creates'
    # lookups of their new names cost no MDS Lookup.
    assert grew(("mds", "Lookup")) == 0, after
    assert grew(("mds", "Readdir")) <= 1, after
    # A name the other mount creates meanwhile is seen here at once.
    with open(os.path.join(b, "fromb"), "wb"):
        pass
    assert os.path.exists(os.path.join(a, "fromb"))
    os.unlink(os.path.join(a, "fromb"))
    # The other mount changes them: this one sees each change at once.
    os.chmod(os.path.join(b, "n0"), 0o600)
    assert stat.S_IMODE(os.stat(os.path.join(a, "n0")).st_mode) == 0o600
    with open(os.path.join(b, "n1"), "wb") as f:
        f.write(b"12345")
    assert os.stat(os.path.join(a, "n1")).st_size == 5
    assert _read(os.path.join(a, "n1")) == b"12345"
    os.unlink(os.path.join(b, "n2"))
    assert not os.path.exists(os.path.join(a, "n2"))
    os.link(os.path.join(b, "n3"), os.path.join(b, "n3link"))
    assert os.stat(os.path.join(a, "n3")).st_nlink == 2
    # Unlinks on this mount cancel no lock (the MDS leaves this mount's
    # lock on the unlinked file in place, exempt_child; the mount drops
    # what it cached of the file): a name left shows the new link count.
    os.link(os.path.join(a, "n5"), os.path.join(a, "n5link"))
    assert os.stat(os.path.join(a, "n5")).st_nlink == 2
    mid = _stats(a)
    for i in range(4, 20):
        os.unlink(os.path.join(a, f"n{i}"))
    end = _stats(a)
    assert end.get(("dlm", "Cancel"), 0) == mid.get(("dlm", "Cancel"), 0), end
    assert os.stat(os.path.join(a, "n5link")).st_nlink == 1
    assert os.stat(os.path.join(b, "n5link")).st_nlink == 1
    assert sorted(os.listdir(a)) == sorted(os.listdir(b)) == \
        ["n0", "n1", "n3", "n3link", "n5link"]


def test_contended_directory_bypasses_cache_and_stays_coherent(dirs):
    """Creates by one mount in a directory the other keeps looking into make
    it contended on the looking mount (adaptive caching: lookups go straight
    to the MDS, no lock); the other mount's changes in it are still seen by
    the next syscall."""
    a, b = dirs
    before = _stats(a).get(("client", "md_bypass"), 0)
    for i in range(60):
        fd = os.open(os.path.join(b, f"c{i}"), os.O_CREAT | os.O_EXCL |
                     os.O_WRONLY, 0o644)
        os.close(fd)
        os.stat(os.path.join(a, f"c{i}"))
    assert _stats(a).get(("client", "md_bypass"), 0) > before
    # B changes the contended directory; A sees each change at once.
    with open(os.path.join(b, "fromb"), "w") as f:
        f.write("bb")
    assert os.stat(os.path.join(a, "fromb")).st_size == 2
    assert "fromb" in os.listdir(a)
    os.rename(os.path.join(b, "c1"), os.path.join(b, "c1.moved"))
    assert not os.path.exists(os.path.join(a, "c1"))
    assert os.path.exists(os.path.join(a, "c1.moved"))
    os.unlink(os.path.join(b, "c2"))
    assert not os.path.exists(os.path.join(a, "c2"))
    os.mkdir(os.path.join(b, "sub"))
    assert stat.S_ISDIR(os.stat(os.path.join(a, "sub")).st_mode)
    os.chmod(os.path.join(b, "c3"), 0o600)
    assert stat.S_IMODE(os.stat(os.path.join(a, "c3")).st_mode) == 0o600
    # A's own changes are seen by B too.
    os.unlink(os.path.join(a, "c4"))
    assert not os.path.exists(os.path.join(b, "c4"))
    assert sorted(os.listdir(a)) == sorted(os.listdir(b))
    assert len(os.listdir(a)) == 60 - 2 + 2  # c2, c4 gone; fromb, sub


def test_contended_directory_is_cached_again_when_quiet(dirs):
    """After the bypass window (at most MdCache::kBypassMax = 8 s) a
    directory that stopped changing is cached again: repeated stats send no
    MDS RPC."""
    a, _ = dirs
    for i in range(60):
        open(os.path.join(a, f"q{i}"), "w").close()
    paths = [os.path.join(a, f"q{i}") for i in range(5)]
    deadline = time.time() + 30
    while True:
        for p in paths:
            os.stat(p)
        before = {k: v for k, v in _stats(a).items() if k[0] == "mds"}
        for _ in range(200):
            for p in paths:
                os.stat(p)
        after = {k: v for k, v in _stats(a).items() if k[0] == "mds"}
        if after == before:
            break
        assert time.time() < deadline, "still sending MDS RPCs after 30 s"
        time.sleep(0.5)
