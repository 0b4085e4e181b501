"""The MDS's calls to an OSS across its restarts (issue 13, part 2): the
MDS is a client of each OSS like a mount is (conn/target_client.h), so
while the only OSS is (a) stopped controlled and started again and then
(b) killed -9 and started again, files keep being created through a mount
and no create fails: the MDS's object allocation (Precreate to the OSS)
waits at the OST's gate during the controlled stop and is resent, with the
same xid, to the next instance after the kill.

The MDS's pools are kept nearly empty (STRIPEFS_TEST_PRECREATE_BATCH: 4
objects per Precreate, refilled below 2), so creates call the OSS while it is down: the
test checks that they did (the slowest create waited for the OSS, the
MDS's log shows the held and the resent Precreate, the new OSS instances
answered Precreates).

Everything started here is stopped in teardown, also on failure.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import make_cluster, up_with_two_mounts, wait_for
from helpers import ask, helper, server_log

CALLBACK_TIMEOUT = 3   # seconds (stripefs-dlm --callback-timeout)
PRECREATE_BATCH = 4    # objects per Precreate the MDS asks for
DOWN_SECONDS = 1.5     # how long the OSS stays down each time

# Creates DIR/cNNNNNN (O_CREAT|O_EXCL, close: no data, so only the MDS is
# asked, and the MDS asks the OSS for the file's object) on a thread until
# told to stop; the main thread answers at once, also while a create is
# blocked. Prints "ready" first. Commands: "n" -> files created so far;
# "e" -> JSON list of the first errors; anything else (or EOF) -> JSON
# {n, errors, slowest} and exit. A failed create is recorded and the next
# file is tried (at most 50 errors).
CREATOR = r"""
import json, os, sys, threading, time
d = sys.argv[1]
errors, slowest, count = [], [0.0], [0]
stop = threading.Event()
def run():
    i = 0
    while not stop.is_set() and i < 50000 and len(errors) <= 50:
        t0 = time.monotonic()
        path = os.path.join(d, "c%06d" % i)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644))
        except OSError as e:
            errors.append("create %s: %s" % (path, e))
        i += 1
        count[0] = i
        slowest[0] = max(slowest[0], time.monotonic() - t0)
t = threading.Thread(target=run)
t.start()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "n":
        print(count[0], flush=True)
        continue
    if line.strip() == "e":
        print(json.dumps(errors[:3]), flush=True)
        continue
    break
stop.set()
t.join()
print(json.dumps({"n": count[0], "errors": errors, "slowest": slowest[0]}),
      flush=True)
"""


def server_pid(c, target):
    """Pid of the running server `target`, or 0."""
    try:
        with open(os.path.join(c.home, "run", f"{target}.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[-1].startswith("Z"):
                return 0
    except (OSError, ValueError):
        return 0
    return pid


def _log_time(line):
    # "2026-12-03 17:28:31.091 ..." -> seconds
    day, clock = line.split()[:2]
    return time.mktime(time.strptime(day + " " + clock.split(".")[0],
                                     "%Y-%m-%d %H:%M:%S")) + \
        float("0." + clock.split(".")[1])


def reconnect_delay(oss_log, mds_log):
    """Seconds from the last OSS instance serving to the MDS's handshake
    with it (the first "connected to ost0" after it)."""
    serving = [l for l in oss_log.splitlines() if " serving " in l]
    assert serving, oss_log[-2000:]
    t_serving = _log_time(serving[-1])
    connects = [_log_time(l) for l in mds_log.splitlines()
                if "connected to ost0" in l and _log_time(l) >= t_serving]
    assert connects, mds_log[-3000:]
    return connects[0] - t_serving


def rpc_count(c, target, method):
    for s in c.status():
        if s["target"] == target:
            return int(s.get("rpc_counts", {}).get(method, 0))
    raise KeyError(target)


@pytest.fixture
def one_ost_cluster():
    """DLM, MDS, ONE OSS (every create needs an object on ost0), two
    mounts; the MDS precreates PRECREATE_BATCH objects per call."""
    tmp_root = tempfile.mkdtemp(prefix="stripefs-mds-ost-e2e-")
    os.chmod(tmp_root, 0o755)
    c = make_cluster(tmp_root, oss=1)
    c.helpers = []
    try:
        up_with_two_mounts(
            c, tmp_root, CALLBACK_TIMEOUT,
            env={"STRIPEFS_TEST_PRECREATE_BATCH": str(PRECREATE_BATCH)})
        yield c
    finally:
        keep = os.environ.get("STRIPEFS_KEEP_LOGS")
        if keep:
            shutil.copytree(os.path.join(c.home, "log"), keep,
                            dirs_exist_ok=True)
        for p in c.helpers:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        # The test may leave ost0 stopped: start it so `cluster down` is
        # clean (a running one is left alone; failures are ignored).
        c.cli("server", "start", "--home", c.home, "ost0", check=False,
              timeout=90)
        c.down()
        c.force_cleanup()
        shutil.rmtree(tmp_root, ignore_errors=True)


def progress(p, more, timeout=60):
    start = int(ask(p, "n"))
    ok = wait_for(lambda: int(ask(p, "n")) >= start + more or
                  json.loads(ask(p, "e")), timeout=timeout)
    errors = json.loads(ask(p, "e"))
    assert not errors, f"creates failed: {errors}"
    assert ok, f"creates made no progress ({start} files so far)"
    return int(ask(p, "n"))


def test_creates_go_on_while_the_oss_restarts_controlled_and_killed(
        one_ost_cluster):
    c = one_ost_cluster
    d = os.path.join(c.mnt, "mo-" + uuid.uuid4().hex[:8])
    os.mkdir(d)
    p = helper(c, CREATOR, d)
    assert p.stdout.readline().strip() == "ready"
    progress(p, 40)

    # (a) Controlled stop (SIGUSR2: EX on active:ost0), down a while, then
    # the next instance.
    c.cli("server", "stop", "--controlled", "--home", c.home, "ost0",
          timeout=90)
    at_stop = int(ask(p, "n"))
    time.sleep(DOWN_SECONDS)
    during_a = int(ask(p, "n")) - at_stop
    c.cli("server", "start", "--home", c.home, "ost0", timeout=90)
    progress(p, 40)
    precreates_a = rpc_count(c, "ost0", "Precreate")

    # (b) kill -9, down a while, then the next instance.
    pid = server_pid(c, "ost0")
    assert pid, "ost0 is not running"
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: server_pid(c, "ost0") == 0, timeout=20), \
        f"ost0 (pid {pid}) survived SIGKILL"
    at_kill = int(ask(p, "n"))
    time.sleep(DOWN_SECONDS)
    during_b = int(ask(p, "n")) - at_kill
    c.cli("server", "start", "--home", c.home, "ost0", timeout=90)
    progress(p, 40)
    precreates_b = rpc_count(c, "ost0", "Precreate")

    r = json.loads(ask(p, "stop", timeout=60))
    mds_log = server_log(c, "mdt0")
    reconnect_s = reconnect_delay(server_log(c, "ost0"), mds_log)
    assert r["errors"] == [], (r, mds_log[-4000:])

    # Not vacuous: creates needed the OSS while it was down and waited for
    # it (a pool of at most PRECREATE_BATCH objects cannot have carried them
    # through DOWN_SECONDS), and the MDS's calls really were held and
    # resent.
    assert during_a <= 3 * PRECREATE_BATCH and during_b <= 3 * PRECREATE_BATCH, \
        (during_a, during_b)
    assert r["slowest"] >= DOWN_SECONDS * 0.8, r
    assert "ost0: the server asks for the target; holding requests" in \
        mds_log, mds_log[-4000:]
    assert "ost0 Precreate at" in mds_log and "resending for up to" in \
        mds_log, (r, precreates_a, precreates_b, mds_log[-3000:],
                  server_log(c, "ost0")[-3000:])
    assert precreates_a > 0 and precreates_b > 0, (precreates_a, precreates_b)
    # The resent calls found the instance started after the kill promptly
    # (resend backoff at most 250 ms, plus the handshake and a margin).
    assert reconnect_s < 0.6, reconnect_s

    # Every file is there, seen through the other mount, and usable.
    other = d.replace(c.mnt, c.mnt_b)
    names = sorted(os.listdir(other))
    assert names == ["c%06d" % i for i in range(r["n"])], \
        (len(names), r["n"])
    for i in range(0, r["n"], max(1, r["n"] // 20)):
        path = os.path.join(other, "c%06d" % i)
        with open(path, "wb") as f:
            f.write(b"file %09d\n" % i)
        with open(path.replace(c.mnt_b, c.mnt), "rb") as f:
            assert f.read() == b"file %09d\n" % i, i
    print(f"{r['n']} files; created while ost0 was down: {during_a} "
          f"(controlled), {during_b} (killed); slowest create "
          f"{r['slowest']:.2f}s; Precreates on the new instances: "
          f"{precreates_a}, {precreates_b}; MDS reconnected "
          f"{reconnect_s:.3f}s after the last instance served")
