"""Servers and mounts started as bare processes (not through the CLI), for
the tests that mix releases N and N+1 or start servers with unusual flags.

Release N+1 binaries come from $STRIPEFS_BUILD/bin, release N binaries from
$STRIPEFS_BUILD_N/bin (default build-n/bin beside build/). `Procs` stops
everything it started in stop_all(), which the tests' fixtures call also
when a test fails.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_N1 = os.path.join(os.environ.get("STRIPEFS_BUILD", os.path.join(REPO, "build")), "bin")
BIN_N = os.path.join(os.environ.get("STRIPEFS_BUILD_N", os.path.join(REPO, "build-n")), "bin")
RELEASE_N = "1.0.0"
RELEASE_N1 = "1.1.0"
EXIT_REFUSED = 3  # a server's start-up check refused


def have(bindir, names):
    return all(os.access(os.path.join(bindir, n), os.X_OK) for n in names)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def log_of(p):
    with open(p.log_path) as f:
        return f.read()


class Procs:
    """Servers and mounts started by one test; stop_all() ends them all."""

    def __init__(self, root):
        self.root = root
        self.procs = []
        self.mounts = []

    def data(self, name):
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        return d

    def start(self, bindir, binary, *args, name=None, env=None):
        """env: extra environment variables for the process."""
        name = name or binary
        log = open(os.path.join(self.root, f"{name}.{len(self.procs)}.log"), "w")
        p = subprocess.Popen([os.path.join(bindir, binary), *map(str, args)],
                             stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})})
        p.log_path = log.name
        log.close()
        self.procs.append(p)
        return p

    def serve(self, bindir, binary, port, *args, name=None, env=None):
        p = self.start(bindir, binary, "--listen", f"127.0.0.1:{port}", *args,
                       name=name, env=env)
        wait(lambda: listening(port) or p.poll() is not None, 30,
             f"{binary} on port {port}")
        assert p.poll() is None, f"{binary} exited {p.returncode}: {log_of(p)}"
        return p

    def run(self, bindir, binary, *args, timeout=30, env=None):
        """Runs a server expected to exit by itself (a refusal)."""
        return subprocess.run([os.path.join(bindir, binary), *map(str, args)],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})

    def stop(self, p):
        """Clean stop (SIGTERM); the server must exit 0."""
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        assert rc == 0, f"exit {rc}: {log_of(p)}"

    def mount(self, bindir, mds_port, mnt):
        os.makedirs(mnt, exist_ok=True)
        r = subprocess.run(
            [os.path.join(bindir, "stripefs-mount"), "--mds",
             f"127.0.0.1:{mds_port}", mnt],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"mount failed: {r.stdout}{r.stderr}"
        self.mounts.append(mnt)
        assert mounted(mnt)

    def umount(self, mnt):
        if mounted(mnt):
            r = subprocess.run(["fusermount3", "-u", mnt], capture_output=True,
                               timeout=30)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", mnt],
                               capture_output=True, timeout=30)
        if mnt in self.mounts:
            self.mounts.remove(mnt)

    def stop_all(self):
        for mnt in list(reversed(self.mounts)):
            self.umount(mnt)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs = []


def need_release_n(names):
    """Skips a test when the release N binaries `names` are missing."""
    return pytest.mark.skipif(
        not have(BIN_N, names),
        reason=f"release N binaries not found in {BIN_N} (build them with "
        "cmake -DSTRIPEFS_PREVIOUS_RELEASE=ON, or set STRIPEFS_BUILD_N)")


def procs_fixture(prefix):
    """A pytest fixture yielding a Procs in a fresh directory, stopped and
    removed afterwards (also when the test fails)."""
    @pytest.fixture
    def procs():
        root = tempfile.mkdtemp(prefix=prefix)
        ps = Procs(root)
        try:
            yield ps
        finally:
            ps.stop_all()
            shutil.rmtree(root, ignore_errors=True)
    return procs
