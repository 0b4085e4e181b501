"""Rolling upgrade and downgrade with files open (issue 4, must-show 1 and 3).

DLM + MDS + 4 OSS start at release N ($STRIPEFS_BUILD_N/bin); mount A runs
release N+1 ($STRIPEFS_BUILD/bin), mount B release N. While fio (--verify,
several files held open throughout, on A), a writer of a file unlinked while
open (on B), an fcntl lock holder (on A) and two latency probes run, the
test rolls, one server at a time with `stripefs upgrade --targets T`:
mdt0 to N+1, runs mixed for a while, each OSS, then the DLM; then
everything back to N in the same order. Then: fio exited 0 with verify OK,
no helper saw a syscall error, the unlinked file's bytes read back right,
and mount B still sees A's lock (F_GETLK names it, F_SETLK is refused).

It prints, per server restart, the longest I/O pause seen (fio's latency
log and the probes); with STRIPEFS_PAUSE_JSON=PATH it also writes them
there (tests/bench/failover_pause.sh reports them against DESIGN.md's
target of 1 s). STRIPEFS_UPGRADE_MIXED_S sets the mixed run (default 10 s);
STRIPEFS_MAX_PAUSE_S the pause the test fails on (default 15 s: a stall
that long means a client waited for an eviction timeout, not a failover).
"""

import json
import os
import time

import pytest

from conftest import BIN, workload_cluster
from upgrade_workload import Workload, check_results, pause_report

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_N = os.path.join(os.environ.get("STRIPEFS_BUILD_N",
                                    os.path.join(REPO, "build-n")), "bin")
RELEASE_N = "1.0.0"
RELEASE_N1 = "1.1.0"
NEEDED = ("stripefs", "stripefs-mds", "stripefs-oss", "stripefs-dlm",
          "stripefs-mount")
MIXED_S = float(os.environ.get("STRIPEFS_UPGRADE_MIXED_S", "10"))
MAX_PAUSE_S = float(os.environ.get("STRIPEFS_MAX_PAUSE_S", "15"))
WORKLOAD_MAX_S = 900  # bound on every helper, far above a normal run


def _have(bindir):
    return all(os.access(os.path.join(bindir, n), os.X_OK) for n in NEEDED)


pytestmark = pytest.mark.skipif(
    not _have(BIN_N),
    reason=f"release N binaries not found in {BIN_N} (tests/run.sh builds "
    "them; or cmake -DSTRIPEFS_PREVIOUS_RELEASE=ON and set STRIPEFS_BUILD_N)")


def releases(cluster):
    return {s["target"]: s["release"] for s in cluster.status()}


def connections(cluster):
    out = {}
    for s in cluster.status():
        out[s["target"]] = ",".join(
            f"{c['client']}=v{c['protocol']}" for c in s.get("connections") or [])
    return out


def mount_pids(cluster):
    with open(os.path.join(cluster.home, "run", "mounts.json")) as f:
        return {m["mountpoint"]: m["pid"] for m in json.load(f)}


def protocols_of(cluster, target, pid):
    """Protocols `target` negotiated with the client process `pid` (its
    connection names end in ":<pid>")."""
    for s in cluster.status():
        if s["target"] == target:
            return {c["protocol"] for c in s.get("connections") or []
                    if c["client"].endswith(f":{pid}")}
    raise KeyError(target)


class Roller:
    """Runs `stripefs upgrade` one target at a time and records timings."""

    def __init__(self, cluster, workload, extra_args=()):
        self.cluster = cluster
        self.workload = workload
        self.extra_args = list(extra_args)
        self.restarts = []

    def roll(self, target, bindir, to_release, image=None):
        before = releases(self.cluster).get(target)
        args = ["upgrade", "--home", self.cluster.home, "--targets", target]
        if bindir is not None:
            args += ["--binary-dir", bindir]
        if image is not None:
            args += ["--image", image]
        start = time.monotonic()
        p = self.cluster.cli(*args, *self.extra_args, check=False, timeout=300)
        end = time.monotonic()
        print(p.stdout, end="")
        assert p.returncode == 0, (
            f"stripefs upgrade --targets {target} exited {p.returncode}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
        now = releases(self.cluster)
        assert now.get(target) == to_release, now
        self.restarts.append({"target": target, "from": before,
                              "to": to_release, "start": start, "end": end})
        self.check_workload_alive(f"after rolling {target}")

    def check_workload_alive(self, when):
        dead = {n: rc for n, rc in self.workload.alive().items()
                if rc is not None}
        assert not dead, (
            f"{when}: workload processes exited early {dead}: " +
            "; ".join(f"{n}: {self.workload.read(n)} {self.workload.read(n, 'err')[-2000:]}"
                      for n in dead))


def report_pauses(roller, workload, results):
    sources = {"fio": workload.fio_latencies(),
               "probe-A": Workload.probe_latencies(results["probe_a"][1]),
               "probe-B": Workload.probe_latencies(results["probe_b"][1])}
    lines, rows = pause_report(roller.restarts, sources)
    print("\nlongest I/O pause per server restart:")
    for line in lines:
        print("  " + line)
    path = os.environ.get("STRIPEFS_PAUSE_JSON")
    if path:
        with open(path, "w") as f:
            json.dump([{k: v for k, v in r.items() if k not in ("start", "end")}
                       for r in rows], f, indent=2)
    return rows


@pytest.fixture
def n_cluster():
    yield from workload_cluster("stripefs-upgrade-")


def test_roll_up_and_down_with_files_open(n_cluster):
    c = n_cluster
    os.makedirs(c.mnt)
    mnt_b = os.path.join(os.path.dirname(c.mnt), "mnt-b")
    os.makedirs(mnt_b)
    # Servers at N; the CLI is N+1 (it drives both releases).
    c.cli("cluster", "up", "--home", c.home, "--oss", 4, "--bin-dir", BIN_N)
    assert set(releases(c).values()) == {RELEASE_N}
    c.cli("mount", "--home", c.home, "--bin-dir", BIN, c.mnt)       # A: N+1
    c.cli("mount", "--home", c.home, "--bin-dir", BIN_N, mnt_b)     # B: N
    c.extra_mounts.append(mnt_b)
    data_a = os.path.join(c.mnt, "roll")
    os.mkdir(data_a)
    c.cli("setstripe", "-c", 4, data_a)  # every file on every OST
    data_b = os.path.join(mnt_b, "roll")
    assert os.path.isdir(data_b)

    wl = Workload(c.work, c.mnt, mnt_b, WORKLOAD_MAX_S)
    c.workload = wl
    wl.start(data_a, data_b)
    roller = Roller(c, wl)
    time.sleep(3)  # baseline
    roller.check_workload_alive("before the roll")

    # Up: the MDS alone, a mixed cluster for a while, each OSS, the DLM.
    roller.roll("mdt0", BIN, RELEASE_N1)
    print("mixed cluster:", releases(c), connections(c))
    # The handshake was renegotiated: the N+1 mount speaks protocol 2 to
    # the N+1 MDS, the N mount protocol 1.
    pids = mount_pids(c)
    pid_a = pids[os.path.realpath(c.mnt)]
    pid_b = pids[os.path.realpath(mnt_b)]
    assert protocols_of(c, "mdt0", pid_a) == {"2"}, connections(c)
    assert protocols_of(c, "mdt0", pid_b) == {"1"}, connections(c)
    time.sleep(MIXED_S)
    roller.check_workload_alive("after the mixed run")
    for i in range(4):
        roller.roll(f"ost{i}", BIN, RELEASE_N1)
    roller.roll("dlm", BIN, RELEASE_N1)
    assert set(releases(c).values()) == {RELEASE_N1}
    print("all at N+1:", connections(c))
    for t in ("ost0", "ost3"):
        assert protocols_of(c, t, pid_a) == {"2"}, connections(c)
        assert protocols_of(c, t, pid_b) == {"1"}, connections(c)
    print(c.cli("cluster", "status", "--home", c.home).stdout)
    time.sleep(3)

    # Down again, same order.
    roller.roll("mdt0", BIN_N, RELEASE_N)
    for i in range(4):
        roller.roll(f"ost{i}", BIN_N, RELEASE_N)
    roller.roll("dlm", BIN_N, RELEASE_N)
    assert set(releases(c).values()) == {RELEASE_N}
    print(c.cli("cluster", "status", "--home", c.home).stdout)
    for t in ("mdt0", "ost0", "ost3"):
        assert protocols_of(c, t, pid_a) == {"1"}, connections(c)
    # cluster.json remembers each server's binaries: a later start uses N.
    assert {s["target"]: os.path.realpath(s.get("binary_dir", ""))
            for s in c.config()["servers"]} == \
        {s["target"]: os.path.realpath(BIN_N) for s in c.config()["servers"]}
    time.sleep(2)

    results, lock_check = wl.stop()
    for name, (rc, out, err) in results.items():
        print(f"--- {name} exited {rc}")
    rows = report_pauses(roller, wl, results)
    check_results(results, lock_check)
    worst = max(r["worst"] for r in rows)
    assert worst < MAX_PAUSE_S, f"an I/O pause of {worst:.2f} s"
