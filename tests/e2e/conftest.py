"""Shared fixtures for the end-to-end tests: a real stripefs cluster (one MDS,
four OSS, real RocksDB, real gRPC on loopback) started with the `stripefs` CLI
and mounted over FUSE. Everything started here is stopped here, also when a
test fails.

Fixtures:
  cluster      session-wide Cluster, mounted at cluster.mnt
  fresh_dir    a new empty directory (mode 0777) on the mount, per test
  run_as       run_as(uid, gid, fn, *args, groups=()) runs fn in a forked child
               with those credentials and returns its result (or raises the
               OSError it raised, errno intact)
"""

import json
import os
import pickle
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("STRIPEFS_BUILD", os.path.join(REPO, "build"))
BIN = os.path.join(BUILD, "bin")

# An unprivileged user and groups for permission tests (need not exist in
# /etc/passwd: the kernel and stripefs only see numbers).
USER_UID = 4242
USER_GID = 4242
OTHER_UID = 4343
OTHER_GID = 4343


def pytest_addoption(parser):
    # test_crash_random.py (default 3, or $STRIPEFS_CRASH_ITERATIONS).
    parser.addoption("--crash-iterations", type=int, default=None,
                     help="iterations of the randomized crash test")


def _mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Cluster:
    """A local cluster managed through the stripefs CLI."""

    def __init__(self, home, mnt, oss=4):
        self.home = home
        self.mnt = mnt
        self.oss = oss
        self.bin = BIN
        self.extra_mounts = []

    def cli(self, *args, check=True, timeout=120, input=None):
        """Runs `stripefs ARGS`; returns CompletedProcess (text)."""
        cmd = [os.path.join(self.bin, "stripefs"), *map(str, args)]
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {p.returncode}\n"
                f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def up(self, mount=True):
        args = ["cluster", "up", "--home", self.home, "--oss", self.oss]
        if mount:
            os.makedirs(self.mnt, exist_ok=True)
            args += ["--mount", self.mnt]
        self.cli(*args)

    def down(self):
        self.cli("cluster", "down", "--home", self.home, check=False)
        self.extra_mounts = []

    def mount_again(self, path):
        """A second mount of the same cluster at `path`."""
        os.makedirs(path, exist_ok=True)
        self.cli("mount", "--home", self.home, path)
        self.extra_mounts.append(path)
        return path

    def umount(self, path):
        self.cli("umount", "--home", self.home, path, check=False)
        if _mounted(path):
            subprocess.run(["fusermount3", "-u", "-z", path], check=False)
        if path in self.extra_mounts:
            self.extra_mounts.remove(path)

    def restart(self):
        """cluster down, then cluster up with the main mount."""
        self.down()
        self.up(mount=True)

    def config(self):
        with open(os.path.join(self.home, "cluster.json")) as f:
            return json.load(f)

    def status(self):
        return json.loads(self.cli("cluster", "status", "--home", self.home,
                                   "--json").stdout)

    def server(self, target):
        for s in self.config()["servers"]:
            if s["target"] == target:
                return s
        raise KeyError(target)

    def oss_data(self, index):
        """Data directory of OST `index`."""
        return self.server(f"ost{index}")["data"]

    def force_cleanup(self):
        """Last resort when `cluster down` did not finish the job."""
        for m in [self.mnt, *self.extra_mounts]:
            if _mounted(m):
                subprocess.run(["fusermount3", "-u", "-z", m], check=False)
        run = os.path.join(self.home, "run")
        if os.path.isdir(run):
            for name in os.listdir(run):
                if not name.endswith(".pid"):
                    continue
                try:
                    with open(os.path.join(run, name)) as f:
                        pid = int(f.read().strip())
                    os.kill(pid, signal.SIGKILL)
                except (ValueError, OSError):
                    pass
        subprocess.run(["pkill", "-KILL", "-f", f"stripefs-mount.*{self.mnt}"],
                       check=False)


def workload_cluster(prefix, oss=4):
    """A Cluster of its own under /var/tmp (home, mnt-a, work/; a second
    mount goes to mnt-b), for a test that runs upgrade_workload.Workload as
    c.workload: a generator for a fixture. Afterwards everything is stopped
    and unmounted, the workload killed, stopped processes (c.stopped)
    continued, the directory removed (kept with STRIPEFS_KEEP=1)."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    os.chmod(tmp, 0o755)
    c = Cluster(os.path.join(tmp, "home"), os.path.join(tmp, "mnt-a"), oss=oss)
    c.tmp = tmp
    c.work = os.path.join(tmp, "work")
    os.makedirs(c.work)
    c.stopped = []
    try:
        yield c
    finally:
        for pid in c.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        wl = getattr(c, "workload", None)
        if wl is not None:
            wl.kill()
        c.down()
        c.force_cleanup()
        for m in (c.mnt, os.path.join(tmp, "mnt-b")):
            if _mounted(m):
                os.system(f"fusermount3 -u -z {m}")
        if os.environ.get("STRIPEFS_KEEP") == "1":
            print(f"kept {tmp} (STRIPEFS_KEEP=1)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def make_cluster(tmp_root, oss=4):
    home = os.path.join(tmp_root, "home")
    mnt = os.path.join(tmp_root, "mnt")
    return Cluster(home, mnt, oss)


def mount_daemon_pid(mountpoint):
    """Pid of the stripefs-mount process serving `mountpoint`."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (argv and os.path.basename(argv[0]) == b"stripefs-mount"
                and mountpoint.encode() in argv):
            return int(name)
    raise AssertionError(f"no stripefs-mount for {mountpoint}")


def up_with_two_mounts(c, tmp_root, callback_timeout, env=None):
    """Starts cluster c with a DLM whose callback timeout is
    `callback_timeout` seconds (handed to stripefs-dlm through its
    environment) and mounts it twice: c.mnt (mode 0777) and c.mnt_b.
    `env`: more variables for the environment of the servers `cluster up`
    starts (only they: this process's environment is restored after)."""
    env = {"STRIPEFS_DLM_CALLBACK_TIMEOUT": str(callback_timeout),
           **(env or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        c.up(mount=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    os.chmod(c.mnt, 0o777)
    c.mnt_b = c.mount_again(os.path.join(tmp_root, "mnt-b"))


@pytest.fixture(scope="session")
def cluster():
    tmp_root = tempfile.mkdtemp(prefix="stripefs-e2e-")
    os.chmod(tmp_root, 0o755)
    c = make_cluster(tmp_root)
    try:
        c.up(mount=True)
        os.chmod(c.mnt, 0o777)
        yield c
    finally:
        c.down()
        c.force_cleanup()
        shutil.rmtree(tmp_root, ignore_errors=True)


@pytest.fixture
def fresh_dir(cluster):
    d = os.path.join(cluster.mnt, "t-" + uuid.uuid4().hex[:12])
    os.mkdir(d)
    os.chmod(d, 0o777)
    return d


def _run_as(uid, gid, fn, *args, groups=()):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            try:
                result = ("ok", fn(*args))
            except OSError as e:
                result = ("oserror", (e.errno, str(e)))
            except BaseException as e:  # report anything else to the parent
                result = ("error", repr(e))
            data = pickle.dumps(result)
        except BaseException as e:
            data = pickle.dumps(("error", repr(e)))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "ok":
        return value
    if kind == "oserror":
        raise OSError(value[0], value[1])
    raise AssertionError(f"child failed: {value}")


@pytest.fixture
def run_as():
    return _run_as


def wait_for(pred, timeout=10.0, interval=0.05):
    """Polls pred() until true or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)
