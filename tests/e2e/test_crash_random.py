"""Randomized crash test (issue 5): a seeded driver that, iteration after
iteration, picks a server (mdt0, ost0, ost1, the DLM) and a fault, runs a
seeded workload on two mounts (tests/e2e/crash_workload.py: creates,
fsync'd writes checked by sha256, renames, unlinks, mkdirs, cross-mount
reads) while the fault happens, restarts what died with `stripefs server
start TARGET` and checks that nothing a user could notice went wrong:
  - the workload saw no syscall error and no wrong read (every operation
    is applied exactly once: a create/mkdir executed twice would fail with
    EEXIST, a rename/unlink with ENOENT);
  - afterwards both mounts list exactly the acknowledged names and every
    file holds exactly its fsync'd bytes;
  - every server runs (`stripefs cluster status`) and both mounts answer.

Faults: `kill9` (SIGKILL after workload operation K, then `stripefs server
start`), `failover` (MDS/OSS: `stripefs server failover --force` after
operation K: SIGUSR1, seed 002, and the replacement) or `fault` (the server
is restarted with $STRIPEFS_FAULTS = POINT=ACTION@P*COUNT, the action being
`crash` (exit at the point, as kill -9 there) or `drop` (the reply is lost:
the client resends); `error` is visible to applications by design and is
left out). A server that crashed at its point is started again, unarmed.

Seed: $STRIPEFS_CRASH_SEED, else a random one. It is printed at the start
with the whole plan of choices, and in every failure message; the same seed
makes the same choices (servers, points, actions, kill moments counted in
workload operations, the workload's operations and bytes), so
`STRIPEFS_CRASH_SEED=N pytest tests/e2e/test_crash_random.py` replays a run.
Iterations: 3 by default, `--crash-iterations N` or
$STRIPEFS_CRASH_ITERATIONS for more. Everything is bounded in time and
cleaned up (servers stopped, mounts unmounted) also on failure.
"""

import errno
import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import BIN, wait_for
from helpers import two_mount_cluster
from rawprocs import BIN_N1, free_port, log_of, procs_fixture

CALLBACK_TIMEOUT = 5          # seconds (stripefs-dlm --callback-timeout)
OPS = 60                      # operations per workload and iteration
WORKLOADS = 2                 # workloads running at once
WORKLOAD_MAX_SECONDS = 150    # one iteration's workload, at most
HERE = os.path.dirname(os.path.abspath(__file__))

SERVERS = ["mdt0", "ost0", "ost1", "dlm"]
# Fault points per server and the actions a client must not notice there.
# (The DLM's points are not on a reply path: only a crash means anything.)
POINTS = {
    "mdt0": [("mds.before_commit", ["crash"]),
             ("mds.after_commit", ["crash", "drop"]),
             ("mds.before_reply", ["crash", "drop"]),
             ("mds.before_destroy", ["crash"]),
             ("mds.after_destroy", ["crash"])],
    "oss": [("oss.before_write", ["crash", "drop"]),
            ("oss.mid_write", ["crash", "drop"]),
            ("oss.before_sync", ["crash", "drop"]),
            ("oss.before_reply", ["crash", "drop"]),
            ("oss.after_destroy", ["crash", "drop"])],
    "dlm": [("dlm.before_persist", ["crash"]),
            ("dlm.after_persist", ["crash"])],
}


def crash_seed():
    s = os.environ.get("STRIPEFS_CRASH_SEED")
    if s:
        return int(s)
    return random.SystemRandom().randrange(1, 2**31)


def crash_iterations(config):
    n = config.getoption("--crash-iterations", default=None)
    if n is None:
        n = int(os.environ.get("STRIPEFS_CRASH_ITERATIONS", "3"))
    assert 1 <= n <= 1000, f"crash iterations {n}: want 1..1000"
    return n


def make_plan(seed, iterations):
    """The choices of every iteration, from the seed alone (iteration i's
    choices do not depend on how many iterations there are)."""
    rng = random.Random(seed)
    plan = []
    for i in range(iterations):
        server = rng.choice(SERVERS)
        # Forced failover (SIGUSR1) exists for the MDS and the OSSs only.
        kinds = ["kill9", "fault"] + ([] if server == "dlm" else ["failover"])
        step = {"iteration": i, "server": server, "kind": rng.choice(kinds),
                "workload_seed": rng.randrange(2**31)}
        if step["kind"] in ("kill9", "failover"):
            step["after_op"] = rng.randrange(2, OPS - 5)
        else:
            role = "oss" if server.startswith("ost") else server
            point, actions = rng.choice(POINTS[role])
            action = rng.choice(actions)
            prob = rng.choice([0.25, 0.5, 1.0])
            count = 1 if action == "crash" else rng.randint(1, 3)
            step.update(point=point, action=action,
                        spec=f"{point}={action}@{prob}*{count}",
                        fault_seed=rng.randrange(1, 2**31))
        plan.append(step)
    return plan


def describe(step):
    if step["kind"] == "kill9":
        what = f"kill -9 after op {step['after_op']}"
    elif step["kind"] == "failover":
        what = f"forced failover after op {step['after_op']}"
    else:
        what = (f"STRIPEFS_FAULTS={step['spec']} "
                f"STRIPEFS_FAULT_SEED={step['fault_seed']}")
    return (f"iteration {step['iteration']}: {step['server']} {what}, "
            f"workload seed {step['workload_seed']}")


class Driver:
    def __init__(self, c, seed, plan):
        self.c = c
        self.seed = seed
        self.plan = plan
        self.procs = []
        self.events = []   # what happened, for failure messages

    def fail(self, step, msg):
        tail = "\n".join(self.events[-30:])
        plan = "\n".join(describe(s) for s in self.plan)
        pytest.fail(
            f"{msg}\n--- seed {self.seed} ({describe(step)}); replay with "
            f"STRIPEFS_CRASH_SEED={self.seed} --crash-iterations "
            f"{len(self.plan)}\nplan:\n{plan}\nlast events:\n{tail}",
            pytrace=False)

    def note(self, msg):
        self.events.append(msg)

    def cli(self, step, *args, env=None, timeout=120, check=True):
        cmd = [os.path.join(BIN, "stripefs"), *map(str, args)]
        full_env = dict(os.environ)
        for k in ("STRIPEFS_FAULTS", "STRIPEFS_FAULT_SEED"):
            full_env.pop(k, None)
        full_env.update(env or {})
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=full_env)
        self.note(f"$ {' '.join(cmd[1:])} -> {p.returncode}")
        if check and p.returncode != 0:
            self.fail(step, f"{' '.join(cmd)} exited {p.returncode}\n"
                            f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def pid(self, target):
        """Pid of the running server `target`, or 0."""
        path = os.path.join(self.c.home, "run", f"{target}.pid")
        try:
            with open(path) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return 0
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[-1].startswith("Z"):
                    return 0
        except OSError:
            return 0
        return pid

    def start(self, step, target, env=None):
        self.cli(step, "server", "start", "--home", self.c.home, target,
                 env=env, timeout=120)

    def restart(self, step, target, env=None):
        """Controlled stop, then start (with `env`: arms or disarms)."""
        self.cli(step, "server", "stop", "--controlled", "--home",
                 self.c.home, target, timeout=120)
        self.start(step, target, env)

    def kill9(self, step, target):
        pid = self.pid(target)
        if pid == 0:
            self.fail(step, f"{target} is not running before kill -9")
        os.kill(pid, signal.SIGKILL)
        if not wait_for(lambda: self.pid(target) == 0, timeout=20):
            self.fail(step, f"{target} (pid {pid}) survived SIGKILL")
        self.note(f"killed {target} (pid {pid})")

    def run_iteration(self, step):
        c, target = self.c, step["server"]
        armed = step["kind"] == "fault"
        crashed = False
        log_path = os.path.join(c.home, "log", f"{target}.log")
        log_start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        if armed:
            self.cli(step, "server", "stop", "--controlled", "--home",
                     c.home, target)
            p = self.cli(step, "server", "start", "--home", c.home, target,
                         env={"STRIPEFS_FAULTS": step["spec"],
                              "STRIPEFS_FAULT_SEED": str(step["fault_seed"])},
                         check=False)
            if p.returncode != 0:
                # Its point is on the start-up path too (the DLM commits
                # its table as it opens it): a crash there is a crash.
                if self.pid(target) != 0 or "code 99" not in p.stderr:
                    self.fail(step, f"armed start of {target} failed:\n"
                                    f"{p.stdout}\n{p.stderr}")
                crashed = True
                self.note(f"{target} exited at {step['point']} while "
                          f"starting; starting it again")
                self.start(step, target)
        armed_pid = self.pid(target)
        # Two workloads at once (more requests in flight when the fault
        # hits), each in its own directory and on both mounts; the fault's
        # moment is counted in operations of the first.
        names = [f"it{step['iteration']}-{k}" for k in range(WORKLOADS)]
        live = {}
        for k, name in enumerate(names):
            mounts = [c.mnt, c.mnt_b] if k % 2 == 0 else [c.mnt_b, c.mnt]
            p = subprocess.Popen(
                ["timeout", str(WORKLOAD_MAX_SECONDS), sys.executable,
                 os.path.join(HERE, "crash_workload.py"),
                 "--seed", str(step["workload_seed"] + k), "--ops", str(OPS),
                 "--dir", name, *mounts],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.procs.append(p)
            live[p.stdout] = (k, p)
        models, errs = {}, []
        deadline = time.monotonic() + WORKLOAD_MAX_SECONDS + 30
        while live and time.monotonic() < deadline:
            r, _, _ = select.select(list(live), [], [], 0.2)
            if armed and not crashed and self.pid(target) == 0:
                # It died at its fault point: start it again, unarmed.
                crashed = True
                self.note(f"{target} (pid {armed_pid}) exited at "
                          f"{step['point']}; starting it again")
                self.start(step, target)
            for out in r:
                k, p = live[out]
                line = out.readline()
                if not line:
                    del live[out]
                    continue
                line = line.rstrip("\n")
                if line.startswith("MODEL "):
                    models[k] = json.loads(line[6:])
                    continue
                self.note(f"workload {k}: {line}")
                if line.startswith("ERR "):
                    errs.append(f"workload {k}: {line}")
                elif (k == 0 and step["kind"] in ("kill9", "failover")
                      and line.startswith("OK ")
                      and int(line.split()[1]) == step["after_op"]):
                    if step["kind"] == "kill9":
                        self.kill9(step, target)
                        self.start(step, target)
                    else:
                        # SIGUSR1, wait for the exit, start the replacement.
                        self.cli(step, "server", "failover", "--force",
                                 "--home", c.home, target)
        failed = list(errs)
        for k, name in enumerate(names):
            p = self.procs[-WORKLOADS + k]
            try:
                rc = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait(timeout=10)
            stderr = p.stderr.read()
            if rc != 0 or k not in models:
                failed.append(f"workload {k} exited {rc}: {stderr}")
        if failed:
            self.fail(step, "workload failed:\n" + "\n".join(failed))
        if armed and not crashed and wait_for(
                lambda: self.pid(target) == 0, timeout=3):
            # Some points are on background paths (object destroys run
            # 200 ms after the unlink, the DLM commits on timers).
            crashed = True
            self.note(f"{target} (pid {armed_pid}) exited at "
                      f"{step['point']} after the workload; starting it again")
            self.start(step, target)
        if armed:
            with open(log_path, errors="replace") as f:
                f.seek(log_start)
                fired = f.read().count(
                    f"fault point {step['point']}: {step['action']}")
            self.note(f"{step['point']} fired {fired} time(s)")
        if armed and not crashed:
            if self.pid(target) == 0:
                self.fail(step, f"{target} is not running after the workload")
            self.restart(step, target)   # disarmed for what follows
        for k, name in enumerate(names):
            self.check(step, name, models[k])
        self.check_cluster(step, names[0])

    def check(self, step, name, model):
        c = self.c
        for m in (c.mnt, c.mnt_b):
            root = os.path.join(m, name)
            dirs, files = [], {}
            for dirpath, dirnames, filenames in os.walk(root):
                rel = os.path.relpath(dirpath, root)
                dirs.append("" if rel == "." else rel)
                for f in filenames:
                    path = os.path.join(dirpath, f)
                    with open(path, "rb") as fh:
                        data = fh.read()
                    files[os.path.relpath(path, root)] = [
                        len(data), hashlib.sha256(data).hexdigest()]
            if sorted(dirs) != model["dirs"]:
                self.fail(step, f"directories on {m}: {sorted(dirs)}, "
                                f"acknowledged: {model['dirs']}")
            if files != model["files"]:
                missing = sorted(set(model["files"]) - set(files))
                extra = sorted(set(files) - set(model["files"]))
                differ = sorted(p for p in set(files) & set(model["files"])
                                if files[p] != model["files"][p])
                self.fail(step, f"files on {m}: missing {missing}, extra "
                                f"{extra}, wrong contents {differ}")
        self.note(f"{name} checked: {len(model['files'])} files, "
                  f"{len(model['dirs'])} dirs")

    def check_cluster(self, step, name):
        c = self.c
        status = json.loads(self.cli(step, "cluster", "status", "--home",
                                     c.home, "--json").stdout)
        bad = [(s["target"], s["state"]) for s in status
               if s["state"] != "running"]
        if bad:
            self.fail(step, f"servers not running: {bad}")
        for m in (c.mnt, c.mnt_b):
            probe = os.path.join(m, name, f"probe-{os.path.basename(m)}")
            with open(probe, "wb") as f:
                f.write(b"alive")
                f.flush()
                os.fsync(f.fileno())
            with open(probe, "rb") as f:
                if f.read() != b"alive":
                    self.fail(step, f"probe on {m} reads back wrong")
            os.unlink(probe)


@pytest.fixture
def crash_cluster():
    # Teardown starts the servers a failed iteration left stopped.
    with two_mount_cluster("stripefs-crash-e2e-", CALLBACK_TIMEOUT,
                           restart=SERVERS) as c:
        yield c


def test_crash_random(crash_cluster, request, capsys):
    seed = crash_seed()
    plan = make_plan(seed, crash_iterations(request.config))
    with capsys.disabled():
        print(f"\ncrash test seed {seed} (replay: STRIPEFS_CRASH_SEED={seed});"
              f" plan:")
        for step in plan:
            print("  " + describe(step))
        print("run:")
    d = Driver(crash_cluster, seed, plan)
    try:
        for step in plan:
            first = len(d.events)
            d.note(describe(step))
            d.run_iteration(step)
            with capsys.disabled():   # progress, also of long runs
                for e in d.events[first:]:
                    if not (e.startswith("workload ") or e.startswith("$ ")):
                        print("  " + e)
    finally:
        for p in d.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


procs = procs_fixture("stripefs-crash-points-")


def test_oss_and_dlm_read_their_fault_points(procs):
    """The OSS and DLM mains arm $STRIPEFS_FAULTS (logged with the seed) and
    refuse a bad spec; an armed oss.before_write fails one write with EIO
    (the visible `error` action the random test leaves out)."""
    for binary, target in (("stripefs-oss", "ost0"), ("stripefs-dlm", "dlm")):
        r = procs.run(BIN_N1, binary, "--target", target, "--listen",
                      f"127.0.0.1:{free_port()}", "--data",
                      procs.data(f"bad-{target}"),
                      env={"STRIPEFS_FAULTS": "oss.before_write=explode"})
        assert r.returncode != 0, f"{binary} started with a bad spec"
        assert "oss.before_write=explode" in r.stderr, r.stderr
    dlm = procs.serve(BIN_N1, "stripefs-dlm", free_port(), "--target", "dlm",
                      "--data", procs.data("dlm"),
                      env={"STRIPEFS_FAULTS": "dlm.after_persist=delay:1",
                           "STRIPEFS_FAULT_SEED": "11"})
    oss_port, mds_port = free_port(), free_port()
    oss = procs.serve(BIN_N1, "stripefs-oss", oss_port, "--target", "ost0",
                      "--data", procs.data("ost0"),
                      env={"STRIPEFS_FAULTS": "oss.before_write=error*1",
                           "STRIPEFS_FAULT_SEED": "9"})
    procs.serve(BIN_N1, "stripefs-mds", mds_port, "--target", "mdt0",
                "--data", procs.data("mdt0"), "--ost",
                f"0=127.0.0.1:{oss_port}")
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, mds_port, mnt)
    path = os.path.join(mnt, "f")
    with pytest.raises(OSError) as e:
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
    assert e.value.errno == errno.EIO
    with open(path, "wb") as f:   # fired its one time: works again
        f.write(b"y" * 4096)
        f.flush()
        os.fsync(f.fileno())
    with open(path, "rb") as f:
        assert f.read() == b"y" * 4096
    log = log_of(oss)
    assert "fault points armed: 'oss.before_write=error*1' (seed 9)" in log
    assert log.count("fault point oss.before_write: error") == 1
    assert ("fault points armed: 'dlm.after_persist=delay:1' (seed 11)"
            in log_of(dlm))
