"""End-to-end POSIX suite on a real stripefs mount (issue 2, "Must show" 2).

Every test works inside its own fresh directory on the session mount and
checks what a user sees: errno values, mode bits, owners, timestamps, file
contents and directory listings. Permission tests run the operation in a
forked child with an unprivileged uid/gid (conftest.run_as).
"""

import ctypes
import ctypes.util
import errno
import os
import socket
import stat
import subprocess
import time

import pytest

from conftest import OTHER_GID, OTHER_UID, USER_GID, USER_UID, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: tests switch uids, chown and mknod")

# --------------------------------------------------------------------------
# libc helpers for calls Python's os module does not expose fully.

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                            ctypes.c_char_p, ctypes.c_uint]
_libc.renameat2.restype = ctypes.c_int
_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p,
                            ctypes.POINTER(_Timespec), ctypes.c_int]
_libc.utimensat.restype = ctypes.c_int
_libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                           ctypes.c_size_t]
_libc.getxattr.restype = ctypes.c_ssize_t
_libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
_libc.listxattr.restype = ctypes.c_ssize_t
_libc.opendir.argtypes = [ctypes.c_char_p]
_libc.opendir.restype = ctypes.c_void_p
_libc.readdir.argtypes = [ctypes.c_void_p]
_libc.readdir.restype = ctypes.POINTER(_Dirent)
_libc.telldir.argtypes = [ctypes.c_void_p]
_libc.telldir.restype = ctypes.c_long
_libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
_libc.seekdir.restype = None
_libc.closedir.argtypes = [ctypes.c_void_p]
_libc.closedir.restype = ctypes.c_int


def _raise_errno(what):
    e = ctypes.get_errno()
    raise OSError(e, f"{what}: {os.strerror(e)}")


def renameat2(old, new, flags):
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                       os.fsencode(new), flags) != 0:
        _raise_errno("renameat2")


def utimensat(path, atime, mtime):
    """atime/mtime: (sec, nsec) tuples; nsec may be UTIME_NOW/UTIME_OMIT."""
    ts = (_Timespec * 2)(_Timespec(*atime), _Timespec(*mtime))
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), ts, 0) != 0:
        _raise_errno("utimensat")


def getxattr_sized(path, name, size):
    """getxattr(2) with a caller-chosen buffer size; returns the length."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.getxattr(os.fsencode(path), os.fsencode(name),
                       buf if size else None, size)
    if n < 0:
        _raise_errno("getxattr")
    return n


def listxattr_sized(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _libc.listxattr(os.fsencode(path), buf if size else None, size)
    if n < 0:
        _raise_errno("listxattr")
    return n


class Dir:
    """opendir/readdir/telldir/seekdir through libc."""

    def __init__(self, path):
        self.d = _libc.opendir(os.fsencode(path))
        if not self.d:
            _raise_errno("opendir")

    def read(self):
        """Next name (str), or None at the end."""
        while True:
            ctypes.set_errno(0)
            ent = _libc.readdir(self.d)
            if not ent:
                if ctypes.get_errno():
                    _raise_errno("readdir")
                return None
            name = os.fsdecode(ent.contents.d_name)
            if name not in (".", ".."):
                return name

    def tell(self):
        return _libc.telldir(self.d)

    def seek(self, pos):
        _libc.seekdir(self.d, pos)

    def close(self):
        if self.d:
            _libc.closedir(self.d)
            self.d = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# Small helpers.

def err(fn, *args, **kwargs):
    """Runs fn; returns 0 on success or the errno of the OSError it raised."""
    try:
        fn(*args, **kwargs)
        return 0
    except OSError as e:
        return e.errno


def write_file(path, data=b"", mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
    return path


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pattern(n, seed=1):
    """Deterministic non-trivial bytes."""
    block = bytes((i * 31 + seed * 7) % 251 for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


def as_user(run_as, uid, gid, fn, *args, groups=()):
    """errno (0 = success) of fn(*args) run with the given credentials."""
    return run_as(uid, gid, err, fn, *args, groups=groups)


def chown_mode(path, uid, gid, mode):
    os.chown(path, uid, gid)
    os.chmod(path, mode)


@pytest.fixture(autouse=True)
def _umask():
    old = os.umask(0)
    yield
    os.umask(old)


# ==========================================================================
# lookup / stat

def test_stat_new_file(fresh_dir):
    before = time.time()
    p = write_file(os.path.join(fresh_dir, "f"), b"hello", 0o640)
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_size == 5
    assert st.st_nlink == 1
    assert (st.st_uid, st.st_gid) == (0, 0)
    for t in (st.st_atime, st.st_mtime, st.st_ctime):
        assert before - 2 <= t <= time.time() + 2


def test_stat_new_dir(fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d, 0o751)
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o751
    assert st.st_nlink == 2


def test_inode_numbers_distinct_and_stable(fresh_dir):
    inos = set()
    for i in range(20):
        p = write_file(os.path.join(fresh_dir, f"f{i}"))
        inos.add(os.stat(p).st_ino)
    assert len(inos) == 20
    st = os.stat(os.path.join(fresh_dir, "f3"))
    os.rename(os.path.join(fresh_dir, "f3"), os.path.join(fresh_dir, "g3"))
    assert os.stat(os.path.join(fresh_dir, "g3")).st_ino == st.st_ino


def test_created_by_user_owned_by_user(fresh_dir, run_as):
    p = os.path.join(fresh_dir, "mine")
    run_as(USER_UID, USER_GID, write_file, p, b"x", 0o600)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    d = os.path.join(fresh_dir, "mydir")
    run_as(USER_UID, USER_GID, os.mkdir, d, 0o700)
    st = os.stat(d)
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)


MISSING_OPS = {
    "stat": lambda p: os.stat(p),
    "lstat": lambda p: os.lstat(p),
    "open": lambda p: os.close(os.open(p, os.O_RDONLY)),
    "chmod": lambda p: os.chmod(p, 0o644),
    "chown": lambda p: os.chown(p, 1, 1),
    "utime": lambda p: os.utime(p, ns=(1, 1)),
    "truncate": lambda p: os.truncate(p, 0),
    "unlink": lambda p: os.unlink(p),
    "rmdir": lambda p: os.rmdir(p),
    "readlink": lambda p: os.readlink(p),
    "rename_src": lambda p: os.rename(p, p + ".new"),
    "link_src": lambda p: os.link(p, p + ".new"),
    "getxattr": lambda p: os.getxattr(p, "user.x"),
    "listdir": lambda p: os.listdir(p),
    "create_in_missing_dir": lambda p: os.close(
        os.open(os.path.join(p, "child"), os.O_CREAT | os.O_WRONLY, 0o644)),
    "mkdir_in_missing_dir": lambda p: os.mkdir(os.path.join(p, "child")),
}


@pytest.mark.parametrize("op", sorted(MISSING_OPS))
def test_missing_path_enoent(fresh_dir, op):
    assert err(MISSING_OPS[op], os.path.join(fresh_dir, "nope")) == errno.ENOENT


NOTDIR_OPS = {
    "stat": lambda p: os.stat(p),
    "create": lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)),
    "mkdir": lambda p: os.mkdir(p),
    "symlink": lambda p: os.symlink("x", p),
}


@pytest.mark.parametrize("op", ["stat", "create", "mkdir", "symlink",
                                "listdir_file", "rename_into",
                                "open_directory_flag"])
def test_file_used_as_directory_enotdir(fresh_dir, op):
    f = write_file(os.path.join(fresh_dir, "file"), b"x")
    child = os.path.join(f, "child")
    if op == "listdir_file":
        e = err(os.listdir, f)
    elif op == "rename_into":
        src = write_file(os.path.join(fresh_dir, "src"))
        e = err(os.rename, src, child)
    elif op == "open_directory_flag":
        e = err(lambda: os.close(os.open(f, os.O_RDONLY | os.O_DIRECTORY)))
    else:
        e = err(NOTDIR_OPS[op], child)
    assert e == errno.ENOTDIR


# ==========================================================================
# create / open

@pytest.mark.parametrize("mode", [0o000, 0o400, 0o600, 0o640, 0o644, 0o755,
                                  0o777, 0o1755, 0o2755, 0o4755])
def test_create_mode(fresh_dir, mode):
    p = os.path.join(fresh_dir, "f")
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, mode))
    assert stat.S_IMODE(os.stat(p).st_mode) == mode


@pytest.mark.parametrize("mask,mode,want", [(0o022, 0o666, 0o644),
                                            (0o077, 0o777, 0o700),
                                            (0o027, 0o775, 0o750)])
def test_umask_applies(fresh_dir, mask, mode, want):
    os.umask(mask)
    p = os.path.join(fresh_dir, "f")
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, mode))
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d, mode)
    assert stat.S_IMODE(os.stat(p).st_mode) == want
    assert stat.S_IMODE(os.stat(d).st_mode) == want


@pytest.mark.parametrize("kind", ["file", "dir", "symlink", "dangling_symlink",
                                  "fifo"])
def test_o_excl_on_existing_eexist(fresh_dir, kind):
    p = os.path.join(fresh_dir, "x")
    if kind == "file":
        write_file(p, b"keep")
    elif kind == "dir":
        os.mkdir(p)
    elif kind == "symlink":
        write_file(os.path.join(fresh_dir, "target"), b"keep")
        os.symlink("target", p)
    elif kind == "dangling_symlink":
        os.symlink("nowhere", p)
    else:
        os.mkfifo(p)
    assert err(os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
               0o644) == errno.EEXIST
    if kind == "file":
        assert read_file(p) == b"keep"
    if kind == "dangling_symlink":
        assert not os.path.exists(os.path.join(fresh_dir, "nowhere"))


def test_o_creat_without_excl_opens_existing(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"data")
    ino = os.stat(p).st_ino
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        assert os.read(fd, 10) == b"data"
    finally:
        os.close(fd)
    assert os.stat(p).st_ino == ino
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644


def test_creat_through_dangling_symlink_creates_target(fresh_dir):
    link = os.path.join(fresh_dir, "link")
    os.symlink("target", link)
    write_file(link, b"via link")
    assert read_file(os.path.join(fresh_dir, "target")) == b"via link"


@pytest.mark.parametrize("size", [1, 4096, 3 * 1024 * 1024 + 7])
def test_o_trunc_empties_file(fresh_dir, size):
    p = write_file(os.path.join(fresh_dir, "f"), pattern(size))
    os.utime(p, ns=(10**18, 10**18))
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    st = os.stat(p)
    assert st.st_size == 0
    assert read_file(p) == b""
    assert st.st_mtime_ns != 10**18
    # New data after the truncate does not resurrect old bytes.
    with open(p, "r+b") as f:
        f.seek(size + 10)
        f.write(b"z")
    assert read_file(p) == b"\0" * (size + 10) + b"z"


def test_o_trunc_on_readonly_open_of_unwritable_file_eacces(fresh_dir, run_as):
    p = write_file(os.path.join(fresh_dir, "f"), b"data", 0o644)
    e = as_user(run_as, USER_UID, USER_GID,
                lambda: os.close(os.open(p, os.O_WRONLY | os.O_TRUNC)))
    assert e == errno.EACCES
    assert read_file(p) == b"data"


def test_o_append_writes_at_end(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"0123456789")
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"abc")
        os.lseek(fd, 2, os.SEEK_SET)
        os.write(fd, b"def")
    finally:
        os.close(fd)
    assert read_file(p) == b"0123456789abcdef"


def test_o_append_two_descriptors_interleave(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    a = os.open(p, os.O_WRONLY | os.O_APPEND)
    b = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        for i in range(10):
            os.write(a, b"A%d" % i)
            os.write(b, b"B%d" % i)
    finally:
        os.close(a)
        os.close(b)
    assert read_file(p) == b"".join(b"A%dB%d" % (i, i) for i in range(10))


def test_o_append_after_other_fd_grew_file(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x" * 100)
    app = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        with open(p, "r+b") as f:
            f.seek(2 * 1024 * 1024)
            f.write(b"end")
        os.write(app, b"tail")
    finally:
        os.close(app)
    data = read_file(p)
    assert len(data) == 2 * 1024 * 1024 + 7
    assert data.endswith(b"endtail")


@pytest.mark.parametrize("flags", [os.O_WRONLY, os.O_RDWR,
                                   os.O_WRONLY | os.O_CREAT])
def test_open_directory_for_writing_eisdir(fresh_dir, flags):
    assert err(os.open, fresh_dir, flags, 0o644) == errno.EISDIR


def test_read_write_roundtrip_across_stripes(fresh_dir):
    p = os.path.join(fresh_dir, "big")
    data = pattern(5 * 1024 * 1024 + 12345, seed=3)
    write_file(p, data)
    assert os.stat(p).st_size == len(data)
    assert read_file(p) == data


def test_write_updates_mtime_not_after_read(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"abc")
    os.utime(p, ns=(10**18, 10**18))
    read_file(p)
    assert os.stat(p).st_mtime_ns == 10**18
    with open(p, "r+b") as f:
        f.write(b"x")
    assert os.stat(p).st_mtime_ns != 10**18


def test_create_updates_parent_mtime(fresh_dir):
    os.utime(fresh_dir, ns=(10**18, 10**18))
    write_file(os.path.join(fresh_dir, "f"))
    assert os.stat(fresh_dir).st_mtime_ns != 10**18


# ==========================================================================
# chmod

@pytest.mark.parametrize("mode", [0o000, 0o644, 0o755, 0o700, 0o1777,
                                  0o2755, 0o4755, 0o6777, 0o7777])
def test_chmod_file(fresh_dir, mode):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.chmod(p, mode)
    assert stat.S_IMODE(os.stat(p).st_mode) == mode
    assert stat.S_ISREG(os.stat(p).st_mode)


@pytest.mark.parametrize("mode", [0o700, 0o1777, 0o2775, 0o555])
def test_chmod_dir(fresh_dir, mode):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    os.chmod(d, mode)
    st = os.stat(d)
    assert stat.S_IMODE(st.st_mode) == mode and stat.S_ISDIR(st.st_mode)


def test_chmod_updates_ctime_not_mtime(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.utime(p, ns=(10**18, 10**18))
    before = os.stat(p)
    time.sleep(0.02)
    os.chmod(p, 0o600)
    after = os.stat(p)
    assert after.st_mtime_ns == 10**18
    assert after.st_ctime_ns > before.st_ctime_ns


def test_fchmod(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o604)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o604
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o604


@pytest.mark.parametrize("who,expect", [
    ("owner", 0), ("other", errno.EPERM), ("group_member", errno.EPERM),
    ("root", 0)])
def test_chmod_permission(fresh_dir, run_as, who, expect):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    chown_mode(p, USER_UID, USER_GID, 0o666)
    fn = os.chmod
    if who == "owner":
        e = as_user(run_as, USER_UID, USER_GID, fn, p, 0o600)
    elif who == "other":
        e = as_user(run_as, OTHER_UID, OTHER_GID, fn, p, 0o600)
    elif who == "group_member":
        e = as_user(run_as, OTHER_UID, USER_GID, fn, p, 0o600)
    else:
        e = err(fn, p, 0o600)
    assert e == expect
    want = 0o600 if expect == 0 else 0o666
    assert stat.S_IMODE(os.stat(p).st_mode) == want


def test_chmod_sgid_dropped_when_not_in_group(fresh_dir, run_as):
    # Owner not in the file's group sets S_ISGID: Linux silently drops it.
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    chown_mode(p, USER_UID, OTHER_GID, 0o644)
    assert as_user(run_as, USER_UID, USER_GID, os.chmod, p, 0o2755) == 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o755


# ==========================================================================
# chown

@pytest.mark.parametrize("uid,gid", [(USER_UID, USER_GID), (OTHER_UID, 0),
                                     (0, OTHER_GID), (123456, 654321)])
def test_chown_by_root(fresh_dir, uid, gid):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.chown(p, uid, gid)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (uid, gid)


def test_chown_minus_one_keeps(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.chown(p, USER_UID, USER_GID)
    os.chown(p, -1, OTHER_GID)
    assert (os.stat(p).st_uid, os.stat(p).st_gid) == (USER_UID, OTHER_GID)
    os.chown(p, OTHER_UID, -1)
    assert (os.stat(p).st_uid, os.stat(p).st_gid) == (OTHER_UID, OTHER_GID)


def test_lchown_symlink_not_target(fresh_dir):
    t = write_file(os.path.join(fresh_dir, "t"), b"x")
    link = os.path.join(fresh_dir, "l")
    os.symlink("t", link)
    os.lchown(link, USER_UID, USER_GID)
    assert (os.lstat(link).st_uid, os.lstat(link).st_gid) == (USER_UID,
                                                              USER_GID)
    assert (os.stat(t).st_uid, os.stat(t).st_gid) == (0, 0)


@pytest.mark.parametrize("case,expect", [
    ("owner_gives_away_uid", errno.EPERM),
    ("other_changes_uid", errno.EPERM),
    ("other_changes_gid", errno.EPERM),
    ("owner_gid_to_supplementary_group", 0),
    ("owner_gid_to_foreign_group", errno.EPERM),
    ("owner_same_ids_noop", 0),
])
def test_chown_permission(fresh_dir, run_as, case, expect):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    chown_mode(p, USER_UID, USER_GID, 0o666)
    if case == "owner_gives_away_uid":
        e = as_user(run_as, USER_UID, USER_GID, os.chown, p, OTHER_UID, -1)
    elif case == "other_changes_uid":
        e = as_user(run_as, OTHER_UID, OTHER_GID, os.chown, p, OTHER_UID, -1)
    elif case == "other_changes_gid":
        e = as_user(run_as, OTHER_UID, OTHER_GID, os.chown, p, -1, OTHER_GID)
    elif case == "owner_gid_to_supplementary_group":
        e = as_user(run_as, USER_UID, USER_GID, os.chown, p, -1, OTHER_GID,
                    groups=(USER_GID, OTHER_GID))
    elif case == "owner_gid_to_foreign_group":
        e = as_user(run_as, USER_UID, USER_GID, os.chown, p, -1, OTHER_GID)
    else:
        e = as_user(run_as, USER_UID, USER_GID, os.chown, p, USER_UID,
                    USER_GID)
    assert e == expect
    st = os.stat(p)
    if expect:
        assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    elif case == "owner_gid_to_supplementary_group":
        assert (st.st_uid, st.st_gid) == (USER_UID, OTHER_GID)


@pytest.mark.parametrize("kind,mode,want", [
    ("file", 0o6755, 0o0755),
    ("file", 0o4755, 0o0755),
    ("file", 0o2775, 0o0775),
    ("dir", 0o2775, 0o2775),
])
def test_chown_by_non_root_clears_suid_sgid(fresh_dir, run_as, kind, mode,
                                            want):
    p = os.path.join(fresh_dir, "x")
    if kind == "file":
        write_file(p, b"#!/bin/sh\n")
    else:
        os.mkdir(p)
    chown_mode(p, USER_UID, USER_GID, mode)
    assert as_user(run_as, USER_UID, USER_GID, os.chown, p, -1, OTHER_GID,
                   groups=(USER_GID, OTHER_GID)) == 0
    st = os.stat(p)
    assert st.st_gid == OTHER_GID
    assert stat.S_IMODE(st.st_mode) == want


# ==========================================================================
# utimensat

@pytest.mark.parametrize("atime_ns,mtime_ns", [
    (0, 0),
    (1, 999_999_999),
    (1_000_000_000_123_456_789, 1_500_000_000_987_654_321),
    (1_700_000_000_000_000_001, 1_600_000_000_999_999_999),
    ((1 << 33) * 10**9 + 5, (1 << 33) * 10**9 + 7),
    (-10**9, -5 * 10**9 + 250),
])
def test_utime_nanoseconds(fresh_dir, atime_ns, mtime_ns):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.utime(p, ns=(atime_ns, mtime_ns))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (atime_ns, mtime_ns)


def test_utime_on_directory_and_symlink_nofollow(fresh_dir):
    os.utime(fresh_dir, ns=(123_000_000_001, 456_000_000_002))
    st = os.stat(fresh_dir)
    assert (st.st_atime_ns, st.st_mtime_ns) == (123_000_000_001,
                                                456_000_000_002)
    t = write_file(os.path.join(fresh_dir, "t"), b"x")
    link = os.path.join(fresh_dir, "l")
    os.symlink("t", link)
    os.utime(link, ns=(5, 6))  # follows the link
    assert os.stat(t).st_mtime_ns == 6


def test_utime_now(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.utime(p, ns=(10**9, 10**9))
    before = time.time_ns()
    os.utime(p)  # both UTIME_NOW
    st = os.stat(p)
    for t in (st.st_atime_ns, st.st_mtime_ns):
        assert abs(t - before) < 5 * 10**9


def test_utime_omit_atime(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.utime(p, ns=(111_000_000_111, 222_000_000_222))
    utimensat(p, (0, UTIME_OMIT), (333, 444))
    st = os.stat(p)
    assert st.st_atime_ns == 111_000_000_111
    assert st.st_mtime_ns == 333_000_000_444


def test_utime_omit_mtime(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.utime(p, ns=(111_000_000_111, 222_000_000_222))
    utimensat(p, (555, 666), (0, UTIME_OMIT))
    st = os.stat(p)
    assert st.st_atime_ns == 555_000_000_666
    assert st.st_mtime_ns == 222_000_000_222


def test_utime_now_atime_omit_mtime(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    os.utime(p, ns=(10**9, 2 * 10**9))
    now = time.time_ns()
    utimensat(p, (0, UTIME_NOW), (0, UTIME_OMIT))
    st = os.stat(p)
    assert abs(st.st_atime_ns - now) < 5 * 10**9
    assert st.st_mtime_ns == 2 * 10**9


def test_utime_changes_ctime(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    c0 = os.stat(p).st_ctime_ns
    time.sleep(0.02)
    os.utime(p, ns=(1, 1))
    assert os.stat(p).st_ctime_ns > c0


@pytest.mark.parametrize("who,times,mode,expect", [
    ("owner", "explicit", 0o644, 0),
    ("owner", "now", 0o444, 0),
    ("other", "explicit", 0o666, errno.EPERM),
    ("other", "now", 0o666, 0),
    ("other", "now", 0o644, errno.EACCES),
    ("root", "explicit", 0o000, 0),
])
def test_utime_permission(fresh_dir, run_as, who, times, mode, expect):
    p = write_file(os.path.join(fresh_dir, "f"), b"x")
    chown_mode(p, USER_UID, USER_GID, mode)
    os.utime(p, ns=(7, 7))
    args = {"ns": (10**9, 10**9)} if times == "explicit" else {}
    if who == "root":
        e = err(os.utime, p, **args)
    else:
        uid, gid = (USER_UID, USER_GID) if who == "owner" else (OTHER_UID,
                                                                OTHER_GID)
        e = as_user(run_as, uid, gid, lambda: os.utime(p, **args))
    assert e == expect
    if expect:
        assert os.stat(p).st_mtime_ns == 7
    else:
        assert os.stat(p).st_mtime_ns != 7


# ==========================================================================
# truncate / ftruncate

@pytest.mark.parametrize("old,new", [
    (0, 1), (10, 0), (10, 5), (5, 4096), (4096, 4095),
    (100, 1024 * 1024 + 1), (3 * 1024 * 1024, 1024 * 1024 - 1),
    (0, 6 * 1024 * 1024), (6 * 1024 * 1024 + 3, 2 * 1024 * 1024 + 9),
])
def test_truncate_sizes(fresh_dir, old, new):
    data = pattern(old, seed=5)
    p = write_file(os.path.join(fresh_dir, "f"), data)
    os.truncate(p, new)
    assert os.stat(p).st_size == new
    want = data[:new] + b"\0" * max(0, new - old)
    assert read_file(p) == want


def test_truncate_shrink_then_grow_reads_zeros(fresh_dir):
    data = pattern(3 * 1024 * 1024, seed=9)
    p = write_file(os.path.join(fresh_dir, "f"), data)
    os.truncate(p, 1000)
    os.truncate(p, 3 * 1024 * 1024)
    assert read_file(p) == data[:1000] + b"\0" * (3 * 1024 * 1024 - 1000)


def test_ftruncate(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"abcdefgh")
    fd = os.open(p, os.O_RDWR)
    try:
        os.ftruncate(fd, 3)
        assert os.fstat(fd).st_size == 3
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 100) == b"abc"
        os.ftruncate(fd, 6)
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 100) == b"abc\0\0\0"
    finally:
        os.close(fd)
    assert read_file(p) == b"abc\0\0\0"


def test_ftruncate_on_file_made_readonly_after_open(fresh_dir, run_as):
    # Permission is checked at open, not at ftruncate.
    p = write_file(os.path.join(fresh_dir, "f"), b"abcdef")
    chown_mode(p, USER_UID, USER_GID, 0o600)

    def child():
        fd = os.open(p, os.O_RDWR)
        try:
            os.chmod(p, 0o400)
            os.ftruncate(fd, 2)
        finally:
            os.close(fd)

    assert as_user(run_as, USER_UID, USER_GID, child) == 0
    assert read_file(p) == b"ab"


def test_truncate_updates_mtime(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"abcdef")
    os.utime(p, ns=(10**18, 10**18))
    os.truncate(p, 2)
    assert os.stat(p).st_mtime_ns != 10**18


@pytest.mark.parametrize("case,expect", [
    ("directory", errno.EISDIR),
    ("negative", errno.EINVAL),
    ("ftruncate_readonly_fd", (errno.EINVAL, errno.EBADF)),
    ("no_write_permission", errno.EACCES),
])
def test_truncate_errors(fresh_dir, run_as, case, expect):
    p = write_file(os.path.join(fresh_dir, "f"), b"abcdef", 0o644)
    if case == "directory":
        e = err(os.truncate, fresh_dir, 0)
    elif case == "negative":
        e = err(os.truncate, p, -1)
    elif case == "ftruncate_readonly_fd":
        fd = os.open(p, os.O_RDONLY)
        try:
            e = err(os.ftruncate, fd, 1)
        finally:
            os.close(fd)
    else:
        e = as_user(run_as, USER_UID, USER_GID, os.truncate, p, 1)
    if isinstance(expect, tuple):
        assert e in expect
    else:
        assert e == expect
    assert read_file(p) == b"abcdef"


# ==========================================================================
# mknod / mkfifo / sockets

def test_mkfifo_works_as_pipe(fresh_dir):
    p = os.path.join(fresh_dir, "fifo")
    os.mkfifo(p, 0o640)
    st = os.stat(p)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    fd = os.open(p, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, b"through the pipe")
        assert os.read(fd, 100) == b"through the pipe"
    finally:
        os.close(fd)
    assert os.stat(p).st_size == 0


def test_mknod_socket_and_unix_bind(fresh_dir):
    p = os.path.join(fresh_dir, "s1")
    os.mknod(p, stat.S_IFSOCK | 0o600)
    assert stat.S_ISSOCK(os.stat(p).st_mode)
    sp = os.path.join(fresh_dir, "s2")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(sp)
        srv.listen(1)
        assert stat.S_ISSOCK(os.stat(sp).st_mode)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            cli.connect(sp)
            conn, _ = srv.accept()
            cli.sendall(b"ping")
            assert conn.recv(4) == b"ping"
            conn.close()
        finally:
            cli.close()
    finally:
        srv.close()


@pytest.mark.parametrize("kind,major,minor", [
    (stat.S_IFCHR, 1, 3), (stat.S_IFCHR, 136, 1000),
    (stat.S_IFBLK, 8, 0), (stat.S_IFBLK, 259, 65536)])
def test_mknod_device_as_root(fresh_dir, kind, major, minor):
    p = os.path.join(fresh_dir, "dev")
    os.mknod(p, kind | 0o660, os.makedev(major, minor))
    st = os.lstat(p)
    assert stat.S_IFMT(st.st_mode) == kind
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK])
def test_mknod_device_as_user_eperm(fresh_dir, run_as, kind):
    p = os.path.join(fresh_dir, "dev")
    e = as_user(run_as, USER_UID, USER_GID, os.mknod, p, kind | 0o600,
                os.makedev(1, 3))
    assert e == errno.EPERM
    assert not os.path.lexists(p)


def test_mknod_regular_file(fresh_dir):
    p = os.path.join(fresh_dir, "reg")
    os.mknod(p, stat.S_IFREG | 0o640)
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0
    write_file(p, b"data")
    assert read_file(p) == b"data"


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR])
def test_mknod_existing_eexist(fresh_dir, kind):
    p = write_file(os.path.join(fresh_dir, "x"), b"keep")
    assert err(os.mknod, p, kind | 0o600, 0) == errno.EEXIST
    assert read_file(p) == b"keep"


def test_mkfifo_as_user(fresh_dir, run_as):
    p = os.path.join(fresh_dir, "fifo")
    assert as_user(run_as, USER_UID, USER_GID, os.mkfifo, p, 0o600) == 0
    st = os.stat(p)
    assert stat.S_ISFIFO(st.st_mode) and st.st_uid == USER_UID


# ==========================================================================
# mkdir / rmdir / unlink

def test_mkdir_nlink_accounting(fresh_dir):
    n0 = os.stat(fresh_dir).st_nlink
    for i in range(3):
        os.mkdir(os.path.join(fresh_dir, f"d{i}"))
    write_file(os.path.join(fresh_dir, "file"))
    assert os.stat(fresh_dir).st_nlink == n0 + 3
    os.rmdir(os.path.join(fresh_dir, "d1"))
    assert os.stat(fresh_dir).st_nlink == n0 + 2


def test_mkdir_nested_and_listing(fresh_dir):
    p = fresh_dir
    for i in range(8):
        p = os.path.join(p, f"level{i}")
        os.mkdir(p)
    write_file(os.path.join(p, "leaf"), b"deep")
    assert read_file(os.path.join(p, "leaf")) == b"deep"
    assert os.listdir(os.path.join(fresh_dir, "level0")) == ["level1"]


@pytest.mark.parametrize("kind", ["dir", "file", "symlink"])
def test_mkdir_existing_eexist(fresh_dir, kind):
    p = os.path.join(fresh_dir, "x")
    if kind == "dir":
        os.mkdir(p)
    elif kind == "file":
        write_file(p)
    else:
        os.symlink("nowhere", p)
    assert err(os.mkdir, p) == errno.EEXIST


def test_rmdir_empty(fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    os.rmdir(d)
    assert not os.path.exists(d)
    assert os.listdir(fresh_dir) == []


@pytest.mark.parametrize("content", ["file", "dir", "symlink", "fifo"])
def test_rmdir_not_empty(fresh_dir, content):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    c = os.path.join(d, "c")
    if content == "file":
        write_file(c)
    elif content == "dir":
        os.mkdir(c)
    elif content == "symlink":
        os.symlink("x", c)
    else:
        os.mkfifo(c)
    assert err(os.rmdir, d) == errno.ENOTEMPTY
    assert os.path.isdir(d)
    os.unlink(c) if content != "dir" else os.rmdir(c)
    os.rmdir(d)
    assert not os.path.exists(d)


@pytest.mark.parametrize("kind", ["file", "symlink_to_dir", "fifo"])
def test_rmdir_non_directory_enotdir(fresh_dir, kind):
    p = os.path.join(fresh_dir, "x")
    if kind == "file":
        write_file(p)
    elif kind == "symlink_to_dir":
        os.mkdir(os.path.join(fresh_dir, "real"))
        os.symlink("real", p)
    else:
        os.mkfifo(p)
    assert err(os.rmdir, p) == errno.ENOTDIR
    assert os.path.lexists(p)


def test_rmdir_dot_einval(fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    assert err(os.rmdir, os.path.join(d, ".")) == errno.EINVAL


@pytest.mark.parametrize("kind", ["file", "symlink", "fifo", "socket",
                                  "dangling_symlink"])
def test_unlink_kinds(fresh_dir, kind):
    p = os.path.join(fresh_dir, "x")
    if kind == "file":
        write_file(p, pattern(2 * 1024 * 1024))
    elif kind == "symlink":
        t = write_file(os.path.join(fresh_dir, "t"), b"stay")
        os.symlink("t", p)
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "socket":
        os.mknod(p, stat.S_IFSOCK | 0o600)
    else:
        os.symlink("nowhere", p)
    os.unlink(p)
    assert not os.path.lexists(p)
    assert "x" not in os.listdir(fresh_dir)
    assert err(os.lstat, p) == errno.ENOENT
    if kind == "symlink":
        assert read_file(t) == b"stay"


def test_unlink_directory_eisdir(fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    assert err(os.unlink, d) == errno.EISDIR
    assert os.path.isdir(d)


def test_unlink_then_recreate_same_name(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"old contents")
    os.unlink(p)
    write_file(p, b"new")
    assert read_file(p) == b"new"


# ==========================================================================
# rename

def test_rename_simple(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"A")
    ino = os.stat(a).st_ino
    b = os.path.join(fresh_dir, "b")
    os.rename(a, b)
    assert sorted(os.listdir(fresh_dir)) == ["b"]
    assert read_file(b) == b"A"
    assert os.stat(b).st_ino == ino


@pytest.mark.parametrize("size", [0, 10, 3 * 1024 * 1024])
def test_rename_replaces_file(fresh_dir, size):
    a = write_file(os.path.join(fresh_dir, "a"), pattern(size, seed=2))
    b = write_file(os.path.join(fresh_dir, "b"), b"old target")
    os.rename(a, b)
    assert os.listdir(fresh_dir) == ["b"]
    assert read_file(b) == pattern(size, seed=2)


def test_rename_replaced_target_still_open(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"new")
    b = write_file(os.path.join(fresh_dir, "b"), b"old target data")
    fd = os.open(b, os.O_RDONLY)
    try:
        os.rename(a, b)
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"old target data"
    finally:
        os.close(fd)
    assert read_file(b) == b"new"


def test_rename_across_directories(fresh_dir):
    d1 = os.path.join(fresh_dir, "d1")
    d2 = os.path.join(fresh_dir, "d2")
    os.mkdir(d1)
    os.mkdir(d2)
    write_file(os.path.join(d1, "f"), b"moved")
    os.mkdir(os.path.join(d1, "sub"))
    os.rename(os.path.join(d1, "f"), os.path.join(d2, "g"))
    os.rename(os.path.join(d1, "sub"), os.path.join(d2, "sub"))
    assert os.listdir(d1) == []
    assert sorted(os.listdir(d2)) == ["g", "sub"]
    assert read_file(os.path.join(d2, "g")) == b"moved"
    assert os.stat(d1).st_nlink == 2
    assert os.stat(d2).st_nlink == 3


def test_rename_dir_keeps_contents_and_dotdot(fresh_dir):
    d1 = os.path.join(fresh_dir, "d1")
    os.makedirs(os.path.join(d1, "a", "b"))
    write_file(os.path.join(d1, "a", "b", "f"), b"inner")
    other = os.path.join(fresh_dir, "other")
    os.mkdir(other)
    os.rename(os.path.join(d1, "a"), os.path.join(other, "a2"))
    assert read_file(os.path.join(other, "a2", "b", "f")) == b"inner"
    assert os.stat(os.path.join(other, "a2", "..")).st_ino == \
        os.stat(other).st_ino


def test_rename_dir_over_empty_dir(fresh_dir):
    a = os.path.join(fresh_dir, "a")
    b = os.path.join(fresh_dir, "b")
    os.mkdir(a)
    write_file(os.path.join(a, "inside"), b"i")
    os.mkdir(b)
    n0 = os.stat(fresh_dir).st_nlink
    os.rename(a, b)
    assert os.listdir(fresh_dir) == ["b"]
    assert os.listdir(b) == ["inside"]
    assert os.stat(fresh_dir).st_nlink == n0 - 1


@pytest.mark.parametrize("src_kind,dst_kind,expect", [
    ("dir", "nonempty_dir", errno.ENOTEMPTY),
    ("file", "dir", errno.EISDIR),
    ("file", "nonempty_dir", errno.EISDIR),
    ("dir", "file", errno.ENOTDIR),
    ("dir", "symlink", errno.ENOTDIR),
    ("symlink", "dir", errno.EISDIR),
])
def test_rename_type_errors(fresh_dir, src_kind, dst_kind, expect):
    def make(p, kind):
        if kind == "file":
            write_file(p, b"x")
        elif kind == "dir":
            os.mkdir(p)
        elif kind == "nonempty_dir":
            os.mkdir(p)
            write_file(os.path.join(p, "c"))
        else:
            os.symlink("anything", p)
    a = os.path.join(fresh_dir, "a")
    b = os.path.join(fresh_dir, "b")
    make(a, src_kind)
    make(b, dst_kind)
    e = err(os.rename, a, b)
    if expect == errno.ENOTEMPTY:
        assert e in (errno.ENOTEMPTY, errno.EEXIST)
    else:
        assert e == expect
    assert sorted(os.listdir(fresh_dir)) == ["a", "b"]


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_rename_dir_into_own_subtree_einval(fresh_dir, depth):
    a = os.path.join(fresh_dir, "a")
    sub = os.path.join(a, *[f"s{i}" for i in range(depth)])
    os.makedirs(sub)
    assert err(os.rename, a, os.path.join(sub, "moved")) == errno.EINVAL
    assert os.path.isdir(sub)


def test_rename_onto_itself_is_noop(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"same")
    os.rename(a, a)
    assert read_file(a) == b"same"


def test_rename_between_hard_links_is_noop(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"same")
    b = os.path.join(fresh_dir, "b")
    os.link(a, b)
    os.rename(a, b)
    assert sorted(os.listdir(fresh_dir)) == ["a", "b"]
    assert os.stat(a).st_nlink == 2


def test_rename_open_file_keeps_fd(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"12345")
    fd = os.open(a, os.O_RDWR)
    try:
        b = os.path.join(fresh_dir, "b")
        os.rename(a, b)
        os.pwrite(fd, b"X", 0)
        assert os.pread(fd, 10, 0) == b"X2345"
    finally:
        os.close(fd)
    assert read_file(b) == b"X2345"


def test_rename_noreplace_existing_eexist(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"A")
    b = write_file(os.path.join(fresh_dir, "b"), b"B")
    assert err(renameat2, a, b, RENAME_NOREPLACE) == errno.EEXIST
    assert (read_file(a), read_file(b)) == (b"A", b"B")


def test_rename_noreplace_new_name(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"A")
    b = os.path.join(fresh_dir, "b")
    renameat2(a, b, RENAME_NOREPLACE)
    assert os.listdir(fresh_dir) == ["b"] and read_file(b) == b"A"


@pytest.mark.parametrize("kinds", [("file", "file"), ("file", "dir"),
                                   ("dir", "dir"), ("symlink", "file")])
def test_rename_exchange(fresh_dir, kinds):
    d1 = os.path.join(fresh_dir, "d1")
    d2 = os.path.join(fresh_dir, "d2")
    os.mkdir(d1)
    os.mkdir(d2)
    a = os.path.join(d1, "a")
    b = os.path.join(d2, "b")
    for p, kind, tag in ((a, kinds[0], b"A"), (b, kinds[1], b"B")):
        if kind == "file":
            write_file(p, tag)
        elif kind == "dir":
            os.mkdir(p)
            write_file(os.path.join(p, "tag"), tag)
        else:
            os.symlink(tag.decode(), p)
    ino_a, ino_b = os.lstat(a).st_ino, os.lstat(b).st_ino
    renameat2(a, b, RENAME_EXCHANGE)
    assert os.lstat(a).st_ino == ino_b and os.lstat(b).st_ino == ino_a

    def tag_of(p, kind):
        if kind == "file":
            return read_file(p)
        if kind == "dir":
            return read_file(os.path.join(p, "tag"))
        return os.readlink(p).encode()
    assert tag_of(a, kinds[1]) == b"B"
    assert tag_of(b, kinds[0]) == b"A"
    if "dir" in kinds:
        dirp = b if kinds[0] == "dir" else a
        assert os.stat(os.path.join(dirp, "..")).st_ino == \
            os.stat(os.path.dirname(dirp)).st_ino


def test_rename_exchange_missing_enoent(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"A")
    assert err(renameat2, a, os.path.join(fresh_dir, "b"),
               RENAME_EXCHANGE) == errno.ENOENT
    assert read_file(a) == b"A"


def test_rename_exchange_and_noreplace_einval(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"A")
    b = write_file(os.path.join(fresh_dir, "b"), b"B")
    assert err(renameat2, a, b,
               RENAME_EXCHANGE | RENAME_NOREPLACE) == errno.EINVAL


def test_rename_many_files_listing(fresh_dir):
    for i in range(50):
        write_file(os.path.join(fresh_dir, f"f{i}"), b"%d" % i)
    for i in range(50):
        os.rename(os.path.join(fresh_dir, f"f{i}"),
                  os.path.join(fresh_dir, f"g{i}"))
    assert sorted(os.listdir(fresh_dir)) == sorted(f"g{i}" for i in range(50))
    assert read_file(os.path.join(fresh_dir, "g37")) == b"37"


# ==========================================================================
# link

def test_link_counts(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"), b"shared")
    sub = os.path.join(fresh_dir, "sub")
    os.mkdir(sub)
    b = os.path.join(fresh_dir, "b")
    c = os.path.join(sub, "c")
    os.link(a, b)
    assert os.stat(a).st_nlink == 2
    os.link(b, c)
    for p in (a, b, c):
        assert os.stat(p).st_nlink == 3
        assert os.stat(p).st_ino == os.stat(a).st_ino
    with open(c, "r+b") as f:
        f.write(b"SH")
    assert read_file(a) == b"SHared"
    os.unlink(a)
    assert os.stat(b).st_nlink == 2
    os.unlink(c)
    assert os.stat(b).st_nlink == 1
    assert read_file(b) == b"SHared"


def test_link_updates_ctime(fresh_dir):
    a = write_file(os.path.join(fresh_dir, "a"))
    c0 = os.stat(a).st_ctime_ns
    time.sleep(0.02)
    os.link(a, os.path.join(fresh_dir, "b"))
    assert os.stat(a).st_ctime_ns > c0


@pytest.mark.parametrize("case,expect", [
    ("directory", errno.EPERM),
    ("existing_name", errno.EEXIST),
    ("missing_source", errno.ENOENT),
])
def test_link_errors(fresh_dir, case, expect):
    a = write_file(os.path.join(fresh_dir, "a"), b"A")
    b = write_file(os.path.join(fresh_dir, "b"), b"B")
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    if case == "directory":
        e = err(os.link, d, os.path.join(fresh_dir, "d2"))
    elif case == "existing_name":
        e = err(os.link, a, b)
    else:
        e = err(os.link, os.path.join(fresh_dir, "zz"),
                os.path.join(fresh_dir, "z2"))
    assert e == expect
    assert os.stat(a).st_nlink == 1 and read_file(b) == b"B"


def test_link_symlink_itself(fresh_dir):
    s = os.path.join(fresh_dir, "s")
    os.symlink("target", s)
    h = os.path.join(fresh_dir, "h")
    os.link(s, h, follow_symlinks=False)
    assert os.readlink(h) == "target"
    assert os.lstat(s).st_nlink == 2


# ==========================================================================
# symlink / readlink

@pytest.mark.parametrize("target", [
    "t", "../up/and/over", "/absolute/path/elsewhere", "dangling",
    "with space and ünïcödé", "x" * 1000, "a/" * 1000 + "z",
])
def test_symlink_readlink(fresh_dir, target):
    s = os.path.join(fresh_dir, "s")
    os.symlink(target, s)
    assert os.readlink(s) == target
    st = os.lstat(s)
    assert stat.S_ISLNK(st.st_mode)
    assert st.st_size == len(os.fsencode(target))
    assert "s" in os.listdir(fresh_dir)


def test_symlink_is_followed(fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    write_file(os.path.join(d, "f"), b"through")
    os.symlink("d", os.path.join(fresh_dir, "ld"))
    os.symlink("d/f", os.path.join(fresh_dir, "lf"))
    assert read_file(os.path.join(fresh_dir, "lf")) == b"through"
    assert read_file(os.path.join(fresh_dir, "ld", "f")) == b"through"
    assert os.stat(os.path.join(fresh_dir, "lf")).st_size == 7


def test_symlink_loop_eloop(fresh_dir):
    a = os.path.join(fresh_dir, "a")
    b = os.path.join(fresh_dir, "b")
    os.symlink("b", a)
    os.symlink("a", b)
    assert err(os.stat, a) == errno.ELOOP


def test_symlink_too_long_target(fresh_dir):
    assert err(os.symlink, "x" * 5000,
               os.path.join(fresh_dir, "s")) == errno.ENAMETOOLONG


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_readlink_non_symlink_einval(fresh_dir, kind):
    p = os.path.join(fresh_dir, "x")
    write_file(p) if kind == "file" else os.mkdir(p)
    assert err(os.readlink, p) == errno.EINVAL


def test_symlink_existing_eexist(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "x"), b"keep")
    assert err(os.symlink, "t", p) == errno.EEXIST
    assert read_file(p) == b"keep"


def test_symlink_owned_by_creator(fresh_dir, run_as):
    s = os.path.join(fresh_dir, "s")
    assert as_user(run_as, USER_UID, USER_GID, os.symlink, "tgt", s) == 0
    st = os.lstat(s)
    assert (st.st_uid, st.st_gid) == (USER_UID, USER_GID)
    assert stat.S_IMODE(st.st_mode) == 0o777


# ==========================================================================
# readdir

@pytest.mark.parametrize("n", [0, 1, 7, 100, 600])
def test_readdir_contents(fresh_dir, n):
    names = set()
    for i in range(n):
        name = f"entry-{i:04d}-" + "n" * (i % 40)
        write_file(os.path.join(fresh_dir, name))
        names.add(name)
    listed = os.listdir(fresh_dir)
    assert len(listed) == len(names)
    assert set(listed) == names


def test_readdir_types_and_inodes(fresh_dir):
    write_file(os.path.join(fresh_dir, "file"))
    os.mkdir(os.path.join(fresh_dir, "dir"))
    os.symlink("file", os.path.join(fresh_dir, "link"))
    os.mkfifo(os.path.join(fresh_dir, "fifo"))
    got = {e.name: e for e in os.scandir(fresh_dir)}
    assert sorted(got) == ["dir", "fifo", "file", "link"]
    assert got["file"].is_file(follow_symlinks=False)
    assert got["dir"].is_dir(follow_symlinks=False)
    assert got["link"].is_symlink()
    assert stat.S_ISFIFO(got["fifo"].stat(follow_symlinks=False).st_mode)
    for name, e in got.items():
        assert e.inode() == os.lstat(os.path.join(fresh_dir, name)).st_ino


def test_readdir_dot_and_dotdot(fresh_dir):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    write_file(os.path.join(d, "f"))
    names = []
    with Dir(d) as h:
        while True:
            ctypes.set_errno(0)
            ent = _libc.readdir(h.d)
            if not ent:
                break
            names.append(os.fsdecode(ent.contents.d_name))
    assert sorted(names) == [".", "..", "f"]


def _make_entries(d, prefix, count):
    names = []
    for i in range(count):
        name = f"{prefix}-{i:04d}-" + "p" * 90
        write_file(os.path.join(d, name))
        names.append(name)
    return names


def _check_seen(seen, stable):
    dupes = {n for n in seen if seen.count(n) > 1}
    assert not dupes, f"entries listed twice: {sorted(dupes)[:5]}"
    missing = set(stable) - set(seen)
    assert not missing, f"{len(missing)} stable entries not listed"


@pytest.mark.parametrize("method", ["libc_readdir", "os_scandir"])
@pytest.mark.parametrize("mutation", ["add", "remove", "add_and_remove"])
def test_readdir_while_directory_changes(fresh_dir, method, mutation):
    stable = _make_entries(fresh_dir, "stable", 150)
    victims = _make_entries(fresh_dir, "victim", 100)
    seen = []

    def mutate():
        if mutation in ("remove", "add_and_remove"):
            for v in victims:
                os.unlink(os.path.join(fresh_dir, v))
        if mutation in ("add", "add_and_remove"):
            _make_entries(fresh_dir, "added", 100)

    if method == "libc_readdir":
        with Dir(fresh_dir) as h:
            for _ in range(40):
                seen.append(h.read())
            mutate()
            while (n := h.read()) is not None:
                seen.append(n)
    else:
        with os.scandir(fresh_dir) as it:
            for i, e in enumerate(it):
                seen.append(e.name)
                if i == 39:
                    mutate()
    _check_seen(seen, stable)
    # Entries removed before they were reached must not show up afterwards
    # as stale names that no longer exist... (they may have been read early).
    for n in seen:
        assert n.startswith(("stable", "victim", "added"))


def test_telldir_seekdir_replays(fresh_dir):
    _make_entries(fresh_dir, "e", 200)
    with Dir(fresh_dir) as h:
        for _ in range(70):
            h.read()
        pos = h.tell()
        rest = []
        while (n := h.read()) is not None:
            rest.append(n)
        h.seek(pos)
        again = []
        while (n := h.read()) is not None:
            again.append(n)
    assert len(rest) == 130
    assert again == rest


def test_seekdir_offset_valid_after_entries_change(fresh_dir):
    stable = _make_entries(fresh_dir, "stable", 200)
    with Dir(fresh_dir) as h:
        first = [h.read() for _ in range(60)]
        pos = h.tell()
        # The entry the offset points after and others before it vanish;
        # new entries arrive.
        for n in first[-10:]:
            if n.startswith("stable"):
                os.unlink(os.path.join(fresh_dir, n))
        _make_entries(fresh_dir, "new", 50)
        h.seek(pos)
        rest = []
        while (n := h.read()) is not None:
            rest.append(n)
    remaining_stable = [n for n in stable if n not in first]
    _check_seen(rest, remaining_stable)
    assert not set(first) & set(rest), "entries before the offset listed again"


def test_readdir_large_directory_after_deletes(fresh_dir):
    names = _make_entries(fresh_dir, "x", 300)
    for n in names[::2]:
        os.unlink(os.path.join(fresh_dir, n))
    assert sorted(os.listdir(fresh_dir)) == sorted(names[1::2])


# ==========================================================================
# statfs

def test_statvfs_sane(cluster):
    st = os.statvfs(cluster.mnt)
    assert st.f_bsize > 0 and st.f_frsize > 0
    assert st.f_blocks > 0
    assert 0 <= st.f_bavail <= st.f_bfree <= st.f_blocks
    assert st.f_files > 0 and 0 <= st.f_ffree <= st.f_files
    assert st.f_namemax == 255


def test_statvfs_sums_osts(cluster):
    st = os.statvfs(cluster.mnt)
    total = st.f_blocks * st.f_frsize
    local = os.statvfs(cluster.oss_data(0))
    one = local.f_blocks * local.f_frsize
    # Four OSTs whose data all lives on the same local filesystem.
    assert 0.9 * cluster.oss * one <= total <= 1.1 * cluster.oss * one


def test_statvfs_same_from_subdir(fresh_dir, cluster):
    a = os.statvfs(fresh_dir)
    b = os.statvfs(cluster.mnt)
    assert a.f_blocks == b.f_blocks and a.f_namemax == b.f_namemax


# ==========================================================================
# xattrs

@pytest.mark.parametrize("ns", ["user", "trusted", "security"])
@pytest.mark.parametrize("target", ["file", "dir"])
def test_xattr_set_get_list_remove(fresh_dir, ns, target):
    p = os.path.join(fresh_dir, "x")
    write_file(p, b"data") if target == "file" else os.mkdir(p)
    name = f"{ns}.test_attr"
    os.setxattr(p, name, b"value-1")
    assert os.getxattr(p, name) == b"value-1"
    assert name in os.listxattr(p)
    os.setxattr(p, name, b"v2")
    assert os.getxattr(p, name) == b"v2"
    os.removexattr(p, name)
    assert err(os.getxattr, p, name) == errno.ENODATA
    assert name not in os.listxattr(p)
    if target == "file":
        assert read_file(p) == b"data"


@pytest.mark.parametrize("value", [b"", b"\0\1\2\0binary\xff", b"v" * 4000,
                                   bytes(range(256)) * 60],
                         ids=["empty", "binary", "4000B", "15KiB"])
def test_xattr_values(fresh_dir, value):
    p = write_file(os.path.join(fresh_dir, "f"))
    os.setxattr(p, "user.v", value)
    assert os.getxattr(p, "user.v") == value
    assert getxattr_sized(p, "user.v", 0) == len(value)


def test_xattr_many_names_listed(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    names = {f"user.attr{i:03d}" for i in range(50)}
    for n in names:
        os.setxattr(p, n, n.encode())
    assert set(os.listxattr(p)) == names
    for n in names:
        assert os.getxattr(p, n) == n.encode()


def test_xattr_missing_enodata(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    assert err(os.getxattr, p, "user.absent") == errno.ENODATA
    assert err(os.removexattr, p, "user.absent") == errno.ENODATA


def test_getxattr_erange_small_buffer(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    os.setxattr(p, "user.ten", b"0123456789")
    assert getxattr_sized(p, "user.ten", 0) == 10
    assert err(getxattr_sized, p, "user.ten", 1) == errno.ERANGE
    assert err(getxattr_sized, p, "user.ten", 9) == errno.ERANGE
    assert getxattr_sized(p, "user.ten", 10) == 10


def test_listxattr_erange_small_buffer(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    os.setxattr(p, "user.aaaa", b"1")
    os.setxattr(p, "user.bbbb", b"2")
    need = listxattr_sized(p, 0)
    assert need == len(b"user.aaaa\0user.bbbb\0")
    assert err(listxattr_sized, p, need - 1) == errno.ERANGE
    assert listxattr_sized(p, need) == need


@pytest.mark.parametrize("exists,flag,expect", [
    (True, "create", errno.EEXIST),
    (False, "create", 0),
    (True, "replace", 0),
    (False, "replace", errno.ENODATA),
])
def test_xattr_create_replace_flags(fresh_dir, exists, flag, expect):
    p = write_file(os.path.join(fresh_dir, "f"))
    if exists:
        os.setxattr(p, "user.k", b"old")
    f = os.XATTR_CREATE if flag == "create" else os.XATTR_REPLACE
    assert err(os.setxattr, p, "user.k", b"new", f) == expect
    if expect == 0:
        assert os.getxattr(p, "user.k") == b"new"
    elif exists:
        assert os.getxattr(p, "user.k") == b"old"
    else:
        assert err(os.getxattr, p, "user.k") == errno.ENODATA


def test_xattr_name_too_long_erange(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"))
    assert err(os.setxattr, p, "user." + "n" * 300, b"v") == errno.ERANGE


def test_xattr_follows_rename_and_hardlink(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "a"))
    os.setxattr(p, "user.k", b"v")
    q = os.path.join(fresh_dir, "b")
    os.rename(p, q)
    os.link(q, os.path.join(fresh_dir, "c"))
    assert os.getxattr(os.path.join(fresh_dir, "c"), "user.k") == b"v"


def test_xattr_gone_with_recreated_file(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "a"))
    os.setxattr(p, "user.k", b"v")
    os.unlink(p)
    write_file(p)
    assert os.listxattr(p) == []


def test_virtual_layout_xattr_not_listed(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "a"), b"x")
    layout = os.getxattr(p, "user.stripefs.layout").decode()
    assert "stripe_size=" in layout and "stripe_count=" in layout
    assert not [n for n in os.listxattr(p) if n.startswith("user.stripefs")]


@pytest.mark.parametrize("case,expect", [
    ("user_other_no_write_set", errno.EACCES),
    ("user_other_no_read_get", errno.EACCES),
    ("user_owner_set", 0),
    ("user_other_writable_set", 0),
    ("trusted_user_set", errno.EPERM),
    ("trusted_user_get_hidden", errno.ENODATA),
    ("user_on_symlink_eperm", errno.EPERM),
])
def test_xattr_permissions(fresh_dir, run_as, case, expect):
    p = write_file(os.path.join(fresh_dir, "f"))
    mode = 0o666 if case == "user_other_writable_set" else 0o640
    chown_mode(p, USER_UID, USER_GID, mode)
    os.setxattr(p, "user.k", b"v")
    os.setxattr(p, "trusted.k", b"t")
    if case == "user_other_no_write_set":
        e = as_user(run_as, OTHER_UID, OTHER_GID, os.setxattr, p, "user.n",
                    b"x")
    elif case == "user_other_no_read_get":
        e = as_user(run_as, OTHER_UID, OTHER_GID, os.getxattr, p, "user.k")
    elif case == "user_owner_set":
        e = as_user(run_as, USER_UID, USER_GID, os.setxattr, p, "user.n", b"x")
    elif case == "user_other_writable_set":
        e = as_user(run_as, OTHER_UID, OTHER_GID, os.setxattr, p, "user.n",
                    b"x")
    elif case == "trusted_user_set":
        e = as_user(run_as, USER_UID, USER_GID, os.setxattr, p, "trusted.n",
                    b"x")
    elif case == "trusted_user_get_hidden":
        e = as_user(run_as, USER_UID, USER_GID, os.getxattr, p, "trusted.k")
        assert "trusted.k" not in run_as(USER_UID, USER_GID, os.listxattr, p)
    else:
        s = os.path.join(fresh_dir, "s")
        os.symlink("f", s)
        e = err(os.setxattr, s, "user.n", b"x", follow_symlinks=False)
    assert e == expect
    if case in ("user_owner_set", "user_other_writable_set"):
        assert os.getxattr(p, "user.n") == b"x"
    elif case != "user_on_symlink_eperm":
        assert err(os.getxattr, p, "user.n") == errno.ENODATA


# ==========================================================================
# names over 255 bytes

def _name_ops(d):
    f = os.path.join(d, "existing")
    sub = os.path.join(d, "subdir")

    def prepare():
        if not os.path.exists(f):
            write_file(f, b"x")
        if not os.path.exists(sub):
            os.mkdir(sub)

    return prepare, {
        "create": lambda n: os.close(os.open(os.path.join(d, n),
                                             os.O_CREAT | os.O_WRONLY, 0o644)),
        "open": lambda n: os.close(os.open(os.path.join(d, n), os.O_RDONLY)),
        "stat": lambda n: os.stat(os.path.join(d, n)),
        "mkdir": lambda n: os.mkdir(os.path.join(d, n)),
        "mkfifo": lambda n: os.mkfifo(os.path.join(d, n)),
        "mknod_sock": lambda n: os.mknod(os.path.join(d, n),
                                         stat.S_IFSOCK | 0o600),
        "symlink": lambda n: os.symlink("existing", os.path.join(d, n)),
        "link": lambda n: os.link(f, os.path.join(d, n)),
        "rename_to": lambda n: os.rename(f, os.path.join(d, n)),
        "rename_from": lambda n: os.rename(os.path.join(d, n),
                                           os.path.join(d, "other")),
        "rename_noreplace": lambda n: renameat2(f, os.path.join(d, n),
                                                RENAME_NOREPLACE),
        "unlink": lambda n: os.unlink(os.path.join(d, n)),
        "rmdir": lambda n: os.rmdir(os.path.join(d, n)),
        "in_subdir_create": lambda n: write_file(os.path.join(sub, n)),
        "setxattr_path": lambda n: os.setxattr(os.path.join(d, n), "user.a",
                                               b"v"),
        "utime": lambda n: os.utime(os.path.join(d, n)),
    }


NAME_OPS = ["create", "open", "stat", "mkdir", "mkfifo", "mknod_sock",
            "symlink", "link", "rename_to", "rename_from", "rename_noreplace",
            "unlink", "rmdir", "in_subdir_create", "setxattr_path", "utime"]


@pytest.mark.parametrize("op", NAME_OPS)
@pytest.mark.parametrize("name", ["a" * 256, "b" * 1000, "é" * 128],
                         ids=["256ascii", "1000ascii", "256bytes_utf8"])
def test_name_too_long(fresh_dir, op, name):
    prepare, ops = _name_ops(fresh_dir)
    prepare()
    assert err(ops[op], name) == errno.ENAMETOOLONG
    assert sorted(os.listdir(fresh_dir)) == ["existing", "subdir"]


@pytest.mark.parametrize("op", ["create", "mkdir", "symlink", "link",
                                "rename_to", "mkfifo"])
@pytest.mark.parametrize("name", ["m" * 255, "é" * 127 + "z"],
                         ids=["255ascii", "255bytes_utf8"])
def test_name_255_bytes_ok(fresh_dir, op, name):
    prepare, ops = _name_ops(fresh_dir)
    prepare()
    ops[op](name)
    assert name in os.listdir(fresh_dir)
    os.lstat(os.path.join(fresh_dir, name))


# ==========================================================================
# unlinked while open

@pytest.mark.parametrize("size", [10, 3 * 1024 * 1024 + 5])
def test_unlinked_open_file_stays_usable(fresh_dir, size):
    p = os.path.join(fresh_dir, "f")
    data = pattern(size, seed=4)
    write_file(p, data)
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        assert not os.path.exists(p)
        assert os.listdir(fresh_dir) == []
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, size, 0) == data
        os.pwrite(fd, b"appended", size)
        os.pwrite(fd, b"HEAD", 0)
        assert os.fstat(fd).st_size == size + 8
        assert os.pread(fd, size + 8, 0) == b"HEAD" + data[4:] + b"appended"
        os.ftruncate(fd, 4)
        assert os.pread(fd, 100, 0) == b"HEAD"
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)
    assert not os.path.exists(p)
    write_file(p, b"new file, same name")
    assert read_file(p) == b"new file, same name"


def test_unlinked_file_two_descriptors(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"shared")
    a = os.open(p, os.O_RDWR)
    b = os.open(p, os.O_RDONLY)
    try:
        os.unlink(p)
        os.pwrite(a, b"SHARED", 0)
        os.close(a)
        a = -1
        assert os.pread(b, 100, 0) == b"SHARED"
    finally:
        if a >= 0:
            os.close(a)
        os.close(b)


def test_unlinked_open_file_hard_link_survives(fresh_dir):
    p = write_file(os.path.join(fresh_dir, "f"), b"one")
    q = os.path.join(fresh_dir, "g")
    os.link(p, q)
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        os.pwrite(fd, b"two", 0)
    finally:
        os.close(fd)
    assert read_file(q) == b"two"
    assert os.stat(q).st_nlink == 1


def test_unlinked_open_file_space_released(fresh_dir, cluster):
    # After the last close the objects go away: the OSTs' object counts
    # (user.stripefs.df) come back down.
    def objects():
        df = os.getxattr(cluster.mnt, "user.stripefs.df").decode()
        total = 0
        for line in df.splitlines():
            for field in line.split():
                if field.startswith("objects="):
                    total += int(field.split("=", 1)[1])
        return total
    p = write_file(os.path.join(fresh_dir, "f"), pattern(4 * 1024 * 1024))
    fd = os.open(p, os.O_RDONLY)
    try:
        os.unlink(p)
        with_file = objects()
    finally:
        os.close(fd)
    assert wait_for(lambda: objects() < with_file, timeout=10)


# ==========================================================================
# permissions: files

FILE_MODES = [0o700, 0o070, 0o007, 0o644, 0o750, 0o000]
WHO = {
    "owner": (USER_UID, USER_GID, ()),
    "group": (OTHER_UID, USER_GID, ()),
    "supp_group": (OTHER_UID, OTHER_GID, (OTHER_GID, USER_GID)),
    "other": (OTHER_UID, OTHER_GID, ()),
    "root": None,
}
BITS = {"read": 4, "write": 2, "exec": 1}


def _allowed(mode, who, op):
    bit = BITS[op]
    if who == "root":
        return op != "exec" or bool(mode & 0o111)
    if who == "owner":
        return bool((mode >> 6) & bit)
    if who in ("group", "supp_group"):
        return bool((mode >> 3) & bit)
    return bool(mode & bit)


def _file_op(p, op):
    if op == "read":
        fd = os.open(p, os.O_RDONLY)
        try:
            return os.read(fd, 100)
        finally:
            os.close(fd)
    if op == "write":
        fd = os.open(p, os.O_WRONLY)
        try:
            os.write(fd, b"W")
        finally:
            os.close(fd)
        return None
    if not os.access(p, os.X_OK):
        raise OSError(errno.EACCES, "access X_OK")
    return None


@pytest.mark.parametrize("op", ["read", "write", "exec"])
@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize("mode", FILE_MODES, ids=lambda m: f"{m:04o}")
def test_file_permission_matrix(fresh_dir, run_as, mode, who, op):
    p = write_file(os.path.join(fresh_dir, "f"), b"content")
    chown_mode(p, USER_UID, USER_GID, mode)
    if who == "root":
        e = err(_file_op, p, op)
    else:
        uid, gid, groups = WHO[who]
        e = as_user(run_as, uid, gid, _file_op, p, op, groups=groups)
    want = 0 if _allowed(mode, who, op) else errno.EACCES
    assert e == want
    if op == "write":
        assert read_file(p) == (b"Wontent" if want == 0 else b"content")


@pytest.mark.parametrize("who,mode,expect", [
    ("owner", 0o744, 0), ("other", 0o744, errno.EACCES),
    ("other", 0o755, 0), ("group", 0o754, 0), ("group", 0o744, errno.EACCES),
])
def test_execve_permission(fresh_dir, run_as, who, mode, expect):
    p = write_file(os.path.join(fresh_dir, "script"), b"#!/bin/sh\nexit 7\n")
    chown_mode(p, USER_UID, USER_GID, mode)
    uid, gid, groups = WHO[who]

    def run():
        return subprocess.run([p]).returncode

    if expect:
        assert as_user(run_as, uid, gid, run, groups=groups) == expect
    else:
        assert run_as(uid, gid, run, groups=groups) == 7


def test_supplementary_group_grants_access(fresh_dir, run_as):
    p = write_file(os.path.join(fresh_dir, "f"), b"group data")
    chown_mode(p, 0, OTHER_GID, 0o660)
    assert run_as(USER_UID, USER_GID, read_file, p,
                  groups=(USER_GID, OTHER_GID)) == b"group data"
    assert as_user(run_as, USER_UID, USER_GID, read_file, p,
                   groups=(USER_GID,)) == errno.EACCES
    d = os.path.join(fresh_dir, "gdir")
    os.mkdir(d)
    chown_mode(d, 0, OTHER_GID, 0o770)
    q = os.path.join(d, "new")
    assert as_user(run_as, USER_UID, USER_GID, write_file, q, b"n",
                   groups=(OTHER_GID,)) == 0
    assert as_user(run_as, USER_UID, USER_GID, write_file,
                   os.path.join(d, "new2"), b"n") == errno.EACCES


# ==========================================================================
# permissions: directories (search, list, modify)

def _dir_op(d, op):
    if op == "list":
        return sorted(os.listdir(d))
    if op == "stat_child":
        return os.stat(os.path.join(d, "child")).st_size
    if op == "create":
        return write_file(os.path.join(d, "new"), b"n")
    if op == "unlink":
        return os.unlink(os.path.join(d, "child"))
    if op == "rename":
        return os.rename(os.path.join(d, "child"), os.path.join(d, "renamed"))
    raise AssertionError(op)


def _dir_allowed(bits, op):
    r, w, x = bits & 4, bits & 2, bits & 1
    if op == "list":
        return bool(r)
    if op == "stat_child":
        return bool(x)
    return bool(w and x)


@pytest.mark.parametrize("op", ["list", "stat_child", "create", "unlink",
                                "rename"])
@pytest.mark.parametrize("bits", [7, 6, 5, 3, 1, 4, 0], ids=lambda b: f"{b:o}")
@pytest.mark.parametrize("who", ["owner", "other"])
def test_dir_permission_matrix(fresh_dir, run_as, who, bits, op):
    d = os.path.join(fresh_dir, "d")
    os.mkdir(d)
    write_file(os.path.join(d, "child"), b"c")
    mode = (bits << 6) | 0o070 if who == "owner" else 0o770 | bits
    # Warm the kernel caches as root: permission must still be checked.
    os.stat(os.path.join(d, "child"))
    chown_mode(d, USER_UID, USER_GID, mode)
    uid, gid = (USER_UID, USER_GID) if who == "owner" else (OTHER_UID,
                                                            OTHER_GID)
    e = as_user(run_as, uid, gid, _dir_op, d, op)
    want = 0 if _dir_allowed(bits, op) else errno.EACCES
    assert e == want
    after = sorted(os.listdir(d))
    if want:
        assert after == ["child"]
    elif op == "create":
        assert after == ["child", "new"]
    elif op == "unlink":
        assert after == []
    elif op == "rename":
        assert after == ["renamed"]


def test_search_permission_on_ancestor(fresh_dir, run_as):
    d = os.path.join(fresh_dir, "a", "b", "c")
    os.makedirs(d)
    write_file(os.path.join(d, "f"), b"deep")
    os.chmod(os.path.join(fresh_dir, "a"), 0o700)
    assert as_user(run_as, USER_UID, USER_GID, read_file,
                   os.path.join(d, "f")) == errno.EACCES
    os.chmod(os.path.join(fresh_dir, "a"), 0o711)
    assert run_as(USER_UID, USER_GID, read_file, os.path.join(d, "f")) == \
        b"deep"


def test_mkdir_in_unwritable_dir_as_user(fresh_dir, run_as):
    d = os.path.join(fresh_dir, "ro")
    os.mkdir(d, 0o755)
    for fn, args in ((os.mkdir, (os.path.join(d, "x"),)),
                     (os.symlink, ("t", os.path.join(d, "x"))),
                     (os.mkfifo, (os.path.join(d, "x"),))):
        assert as_user(run_as, USER_UID, USER_GID, fn, *args) == errno.EACCES
    assert os.listdir(d) == []


# ==========================================================================
# sticky directories

@pytest.mark.parametrize("who,op,expect", [
    ("stranger", "unlink", errno.EPERM),
    ("stranger", "rename_away", errno.EPERM),
    ("stranger", "rename_over", errno.EPERM),
    ("stranger", "rmdir_subdir", errno.EPERM),
    ("file_owner", "unlink", 0),
    ("file_owner", "rename_away", 0),
    ("dir_owner", "unlink", 0),
    ("dir_owner", "rename_away", 0),
    ("root", "unlink", 0),
])
def test_sticky_directory(fresh_dir, run_as, who, op, expect):
    d = os.path.join(fresh_dir, "sticky")
    os.mkdir(d)
    chown_mode(d, USER_UID, USER_GID, 0o1777)
    victim = os.path.join(d, "victim")
    write_file(victim, b"theirs")
    os.chown(victim, OTHER_UID, OTHER_GID)
    os.chmod(victim, 0o666)
    sub = os.path.join(d, "subdir")
    os.mkdir(sub)
    os.chown(sub, OTHER_UID, OTHER_GID)
    stranger = (4444, 4444)
    mine = os.path.join(d, "mine")
    write_file(mine, b"mine")
    os.chown(mine, *stranger)

    def do():
        if op == "unlink":
            os.unlink(victim)
        elif op == "rename_away":
            os.rename(victim, os.path.join(d, "moved"))
        elif op == "rename_over":
            os.rename(mine, victim)
        else:
            os.rmdir(sub)

    if who == "root":
        e = err(do)
    else:
        uid, gid = {"stranger": stranger, "file_owner": (OTHER_UID, OTHER_GID),
                    "dir_owner": (USER_UID, USER_GID)}[who]
        e = as_user(run_as, uid, gid, do)
    if expect:
        assert e in (errno.EPERM, errno.EACCES)
        assert read_file(victim) == b"theirs"
        assert os.path.isdir(sub)
    else:
        assert e == 0
        assert not os.path.exists(victim)


# ==========================================================================
# setgid directories

@pytest.mark.parametrize("kind", ["file", "dir", "fifo", "symlink"])
def test_setgid_directory_inheritance(fresh_dir, run_as, kind):
    d = os.path.join(fresh_dir, "sg")
    os.mkdir(d)
    chown_mode(d, 0, USER_GID, 0o2777)
    p = os.path.join(d, "x")

    def make():
        if kind == "file":
            write_file(p, b"x", 0o644)
        elif kind == "dir":
            os.mkdir(p, 0o755)
        elif kind == "fifo":
            os.mkfifo(p, 0o644)
        else:
            os.symlink("tgt", p)

    assert as_user(run_as, OTHER_UID, OTHER_GID, make) == 0
    st = os.lstat(p)
    assert st.st_uid == OTHER_UID
    assert st.st_gid == USER_GID
    if kind == "dir":
        assert st.st_mode & stat.S_ISGID
        # and it propagates further down
        q = os.path.join(p, "deeper")
        assert as_user(run_as, OTHER_UID, OTHER_GID, os.mkdir, q) == 0
        assert os.stat(q).st_gid == USER_GID
        assert os.stat(q).st_mode & stat.S_ISGID
    elif kind == "file":
        assert not st.st_mode & stat.S_ISGID


def test_no_setgid_directory_uses_creator_gid(fresh_dir, run_as):
    d = os.path.join(fresh_dir, "plain")
    os.mkdir(d)
    chown_mode(d, 0, USER_GID, 0o777)
    p = os.path.join(d, "x")
    assert as_user(run_as, OTHER_UID, OTHER_GID, write_file, p) == 0
    assert os.stat(p).st_gid == OTHER_GID


# ==========================================================================
# suid / sgid cleared on write

@pytest.mark.parametrize("writer,mode,want", [
    ("owner", 0o6777, 0o0777),
    ("other", 0o6777, 0o0777),
    ("other", 0o4666, 0o0666),
    # S_ISGID without group-exec: kept for a writer in the file's group,
    # dropped for anyone else (Linux 6.x setattr_should_drop_sgid).
    ("owner", 0o2666, 0o2666),
    ("other", 0o2666, 0o0666),
    ("other", 0o2676, 0o0676),
    ("root", 0o6777, 0o6777),
])
def test_suid_sgid_cleared_on_write(fresh_dir, run_as, writer, mode, want):
    p = write_file(os.path.join(fresh_dir, "f"), b"0123456789")
    chown_mode(p, USER_UID, USER_GID, mode)

    def write():
        fd = os.open(p, os.O_WRONLY)
        try:
            os.pwrite(fd, b"xx", 3)
        finally:
            os.close(fd)

    if writer == "root":
        write()
    else:
        uid, gid = (USER_UID, USER_GID) if writer == "owner" else (OTHER_UID,
                                                                   OTHER_GID)
        assert as_user(run_as, uid, gid, write) == 0
    assert read_file(p) == b"012xx56789"
    assert stat.S_IMODE(os.stat(p).st_mode) == want


# ==========================================================================
# everyday operations as an unprivileged user in their own directory

def _user_op(d, op):
    f = os.path.join(d, "f")
    if op == "create_write_read":
        write_file(f, b"user data" * 1000)
        return read_file(f) == b"user data" * 1000
    write_file(f, b"0123456789")
    if op == "append":
        fd = os.open(f, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"+")
        os.close(fd)
        return read_file(f) == b"0123456789+"
    if op == "truncate":
        os.truncate(f, 3)
        return read_file(f) == b"012"
    if op == "chmod":
        os.chmod(f, 0o600)
        return stat.S_IMODE(os.stat(f).st_mode) == 0o600
    if op == "utime":
        os.utime(f, ns=(5, 6))
        return os.stat(f).st_mtime_ns == 6
    if op == "rename":
        os.rename(f, os.path.join(d, "g"))
        return os.listdir(d) == ["g"]
    if op == "link":
        os.link(f, os.path.join(d, "h"))
        return os.stat(f).st_nlink == 2
    if op == "symlink":
        os.symlink("f", os.path.join(d, "s"))
        return read_file(os.path.join(d, "s")) == b"0123456789"
    if op == "mkdir_rmdir":
        os.mkdir(os.path.join(d, "sub"))
        os.rmdir(os.path.join(d, "sub"))
        return sorted(os.listdir(d)) == ["f"]
    if op == "unlink":
        os.unlink(f)
        return os.listdir(d) == []
    if op == "xattr":
        os.setxattr(f, "user.mine", b"yes")
        return os.getxattr(f, "user.mine") == b"yes" and \
            os.listxattr(f) == ["user.mine"]
    if op == "rename_exchange":
        write_file(os.path.join(d, "o"), b"other")
        renameat2(f, os.path.join(d, "o"), RENAME_EXCHANGE)
        return read_file(f) == b"other"
    if op == "mkfifo":
        os.mkfifo(os.path.join(d, "p"))
        return stat.S_ISFIFO(os.stat(os.path.join(d, "p")).st_mode)
    raise AssertionError(op)


@pytest.mark.parametrize("op", ["create_write_read", "append", "truncate",
                                "chmod", "utime", "rename", "link", "symlink",
                                "mkdir_rmdir", "unlink", "xattr",
                                "rename_exchange", "mkfifo"])
def test_user_everyday_operations(fresh_dir, run_as, op):
    d = os.path.join(fresh_dir, "home")
    os.mkdir(d, 0o755)
    os.chown(d, USER_UID, USER_GID)
    assert run_as(USER_UID, USER_GID, _user_op, d, op) is True
    for name in os.listdir(d):
        assert os.lstat(os.path.join(d, name)).st_uid == USER_UID
