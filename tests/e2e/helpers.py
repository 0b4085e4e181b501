"""What the failover and crash end-to-end tests share (test_failover,
test_forced_failover, test_crash, test_crash_random, test_client_kill,
test_dlm_cluster, test_faults, test_startup_check): a two-mount cluster of
a test's own, Python helper processes driven line by line over
stdin/stdout, a function run in a forked child bounded in time, patterned
4 KiB records and the servers' and mounts' logs.

Everything started here is bounded in time and stopped in teardown, also
when the test fails.
"""

import contextlib
import multiprocessing
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from conftest import make_cluster, up_with_two_mounts

HELPER_MAX_SECONDS = 240  # no helper process lives longer than this


@contextlib.contextmanager
def two_mount_cluster(prefix, callback_timeout, env=None, restart=()):
    """A cluster of the test's own (DLM, MDS, two OSS) in a new directory
    named `prefix`..., mounted twice (c.mnt, mode 0777, and c.mnt_b; see
    conftest.up_with_two_mounts: `callback_timeout` and `env` go to the
    servers' environment). c.helpers collects the processes of helper().

    Teardown, also on failure: sends SIGCONT to the processes a test
    stopped (c.stopped_pids), kills the helpers still running, starts the
    servers `restart` (a test may have left them stopped; `cluster down`
    is then clean; a running one is left alone, failures are ignored),
    `cluster down`, force_cleanup, removes the directory."""
    tmp_root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp_root, 0o755)
    c = make_cluster(tmp_root, oss=2)
    c.helpers = []
    c.stopped_pids = []
    try:
        up_with_two_mounts(c, tmp_root, callback_timeout, env=env)
        yield c
    finally:
        for pid in c.stopped_pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        for p in c.helpers:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        for target in restart:
            c.cli("server", "start", "--home", c.home, target, check=False,
                  timeout=90)
        c.down()
        c.force_cleanup()
        shutil.rmtree(tmp_root, ignore_errors=True)


def helper(c, code, *args, max_seconds=HELPER_MAX_SECONDS):
    """Runs Python `code` with `args` (under timeout(1): it lives at most
    `max_seconds`), talking line by line over stdin/stdout; c.helpers
    keeps it for teardown."""
    p = subprocess.Popen(
        ["timeout", str(max_seconds), sys.executable, "-c", code,
         *map(str, args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    c.helpers.append(p)
    return p


def ask(p, cmd, timeout=60):
    """Sends `cmd` to helper process `p` and returns its one-line answer;
    fails when none comes within `timeout` seconds or `p` exited."""
    p.stdin.write(cmd + "\n")
    p.stdin.flush()
    r, _, _ = select.select([p.stdout], [], [], timeout)
    assert r, f"helper did not answer {cmd!r} within {timeout}s"
    line = p.stdout.readline().strip()
    assert line, f"helper exited on {cmd!r} (rc {p.poll()})"
    return line


def run_in_child(fn, *args, timeout, hang):
    """Runs fn(*args, q) in a forked child and returns what it put on the
    queue q. A child that has not finished after `timeout` seconds is
    killed and the test fails with the message `hang` (a hang is the
    failure this guards against)."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=fn, args=(*args, q))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join(10)
        pytest.fail(hang)
    return q.get(timeout=5)


def block(i, tag):
    """4 KiB record i of writer `tag` (verifiable from anywhere). The
    writer scripts run as helpers build the same bytes."""
    head = f"{tag}:{i:08d}:".encode()
    return (head * (4096 // len(head) + 1))[:4096]


# A helper (run with helper(c, WRITER, PATH, TAG[, SIDES])) that holds ONE
# file open for its whole life and writes block(i, TAG) at record i, one
# after the other (pwrite; every 8th an fsync; an fstat checks the size).
# With SIDES = 1, every 16th record it also creates a side file next to it
# (O_EXCL, block(j, TAG + "s"), fsync, close) and renames it from
# TAG-sideJ.tmp to TAG-sideJ. Any error ends the work and is reported.
# Prints "ready" first. Commands: "n" -> records written so far; anything
# else (or EOF) -> JSON summary {n, sides, errors, slowest} and exit. At
# most 20000 records.
WRITER = r"""
import json, os, select, sys, time
path, tag = sys.argv[1], sys.argv[2]
with_sides = len(sys.argv) > 3 and sys.argv[3] == "1"
d = os.path.dirname(path)
def block(i, t):
    head = ("%s:%08d:" % (t, i)).encode()
    return (head * (4096 // len(head) + 1))[:4096]
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
errors, i, sides, slowest = [], 0, 0, 0.0
print("ready", flush=True)
while True:
    r, _, _ = select.select([sys.stdin], [], [], 0)
    if r:
        cmd = sys.stdin.readline().strip()
        if cmd == "n":
            print(i, flush=True)
            continue
        break
    if errors or i >= 20000:
        time.sleep(0.05)
        continue
    t0 = time.monotonic()
    try:
        os.pwrite(fd, block(i, tag), i * 4096)
        if i % 8 == 7:
            os.fsync(fd)
        if os.fstat(fd).st_size < (i + 1) * 4096:
            errors.append("size %d after record %d" % (os.fstat(fd).st_size, i))
        if with_sides and i % 16 == 15:
            tmp = os.path.join(d, "%s-side%d.tmp" % (tag, sides))
            s = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.pwrite(s, block(sides, tag + "s"), 0)
            os.fsync(s)
            os.close(s)
            os.rename(tmp, os.path.join(d, "%s-side%d" % (tag, sides)))
            sides += 1
        i += 1
    except OSError as e:
        errors.append("record %d: %s" % (i, e))
    slowest = max(slowest, time.monotonic() - t0)
try:
    os.fsync(fd)
    os.close(fd)
except OSError as e:
    errors.append("close: %s" % e)
print(json.dumps({"n": i, "sides": sides, "errors": errors,
                  "slowest": slowest}), flush=True)
"""


def _read_log(path, what):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"(no {what}: {e})"


def server_log(c, target):
    """The log of server `target` (all its instances), or why there is
    none."""
    return _read_log(os.path.join(c.home, "log", f"{target}.log"), "log")


def mount_log(c, mountpoint):
    """The log of the mount at `mountpoint` (made by `stripefs mount`), or
    why there is none."""
    name = "mount-" + os.path.realpath(mountpoint).replace("/", "_") + ".log"
    return _read_log(os.path.join(c.home, "log", name), "mount log")
