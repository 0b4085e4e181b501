"""The rolling upgrade with every server in a podman container (issue 4,
must-show 2).

Images stripefs:1.0.0 and stripefs:1.1.0 are built FROM scratch by
deploy/container/build-image.sh from $STRIPEFS_BUILD_N/bin and
$STRIPEFS_BUILD/bin. `stripefs cluster up --image stripefs:1.0.0` runs the
DLM, the MDS and 2 OSS in containers (host network, data dirs
bind-mounted); mount A (N+1) and mount B (N) run on the host. With the same
workload as test_upgrade.py (fio --verify on open files, a file unlinked
while open, an fcntl lock), `stripefs upgrade --image stripefs:1.1.0` rolls
mdt0, each OSS and the DLM to N+1 one at a time, then `stripefs upgrade
--image stripefs:1.0.0` rolls them all back (the CLI's default order). The
checks are those of test_upgrade.py; the longest pause per restart is
printed.

Skips (with the reason) only when podman is missing or cannot run a
container here.
"""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, REPO, Cluster, _mounted
from test_upgrade import (BIN_N, RELEASE_N, RELEASE_N1, Roller, _have,
                          check_results, releases, report_pauses)
from upgrade_workload import Workload

BUILD_IMAGE = os.path.join(REPO, "deploy", "container", "build-image.sh")
WORKLOAD_MAX_S = 900


def _podman_env(tmp):
    env = dict(os.environ)
    if not env.get("CONTAINERS_CONF"):
        conf = os.path.join(tmp, "containers.conf")
        with open(conf, "w") as f:
            f.write("[containers]\ndefault_ulimits = []\n")
        env["CONTAINERS_CONF"] = conf
    return env


def _podman_problem():
    """None if podman can build and run a FROM-scratch image here."""
    if shutil.which("podman") is None:
        return "podman is not installed (deploy/install-deps.sh installs it)"
    if shutil.which("runc") is None:
        return "runc is not installed"
    tmp = tempfile.mkdtemp(prefix="stripefs-podman-probe-")
    try:
        env = _podman_env(tmp)
        p = subprocess.run(["podman", "--runtime", "runc",
                            "--cgroup-manager=cgroupfs", "info"],
                           capture_output=True, text=True, timeout=60, env=env)
        if p.returncode != 0:
            return f"podman cannot run here: {p.stderr.strip()[-500:]}"
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"podman cannot run here: {e!r}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


PODMAN_PROBLEM = _podman_problem()

pytestmark = [
    pytest.mark.skipif(not _have(BIN_N),
                       reason=f"release N binaries not found in {BIN_N}"),
    pytest.mark.skipif(PODMAN_PROBLEM is not None,
                       reason=PODMAN_PROBLEM or ""),
]


def build_image(bindir, env):
    p = subprocess.run([BUILD_IMAGE, bindir], capture_output=True, text=True,
                       timeout=600, env=env)
    assert p.returncode == 0, f"{BUILD_IMAGE} {bindir}: {p.stderr}"
    return p.stdout.strip().splitlines()[-1]


@pytest.fixture
def podman_cluster():
    tmp = tempfile.mkdtemp(prefix="stripefs-podman-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    env = _podman_env(tmp)
    saved_conf = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = env["CONTAINERS_CONF"]  # for the CLI
    c = Cluster(os.path.join(tmp, "home"), os.path.join(tmp, "mnt-a"), oss=2)
    c.work = os.path.join(tmp, "work")
    os.makedirs(c.work)
    c.env = env
    try:
        yield c
    finally:
        wl = getattr(c, "workload", None)
        if wl is not None:
            wl.kill()
        c.down()
        c.force_cleanup()
        # Containers whose `podman run` client was killed.
        try:
            for s in c.config()["servers"]:
                port = s["address"].rsplit(":", 1)[1]
                subprocess.run(["podman", "--runtime", "runc",
                                "--cgroup-manager=cgroupfs", "rm", "-f",
                                "--ignore", f"stripefs-{s['target']}-{port}"],
                               capture_output=True, timeout=60, env=env)
        except (OSError, KeyError, ValueError, subprocess.TimeoutExpired):
            pass
        for m in (c.mnt, os.path.join(tmp, "mnt-b")):
            if _mounted(m):
                os.system(f"fusermount3 -u -z {m}")
        shutil.rmtree(tmp, ignore_errors=True)
        if saved_conf is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = saved_conf


def test_roll_in_containers(podman_cluster):
    c = podman_cluster
    image_n = build_image(BIN_N, c.env)
    image_n1 = build_image(BIN, c.env)
    assert image_n == f"stripefs:{RELEASE_N}"
    assert image_n1 == f"stripefs:{RELEASE_N1}"

    os.makedirs(c.mnt)
    mnt_b = os.path.join(os.path.dirname(c.mnt), "mnt-b")
    os.makedirs(mnt_b)
    c.cli("cluster", "up", "--home", c.home, "--oss", 2, "--image", image_n,
          timeout=300)
    for s in c.status():
        assert s.get("runtime") == "podman", s
    assert set(releases(c).values()) == {RELEASE_N}
    c.cli("mount", "--home", c.home, "--bin-dir", BIN, c.mnt)
    c.cli("mount", "--home", c.home, "--bin-dir", BIN_N, mnt_b)
    c.extra_mounts.append(mnt_b)
    data_a = os.path.join(c.mnt, "roll")
    os.mkdir(data_a)
    c.cli("setstripe", "-c", 2, data_a)
    data_b = os.path.join(mnt_b, "roll")

    wl = Workload(c.work, c.mnt, mnt_b, WORKLOAD_MAX_S, fio_files=2)
    c.workload = wl
    wl.start(data_a, data_b)
    roller = Roller(c, wl)
    time.sleep(3)
    roller.check_workload_alive("before the roll")

    for target in ("mdt0", "ost0", "ost1", "dlm"):
        roller.roll(target, None, RELEASE_N1, image=image_n1)
        if target == "mdt0":
            time.sleep(5)  # mixed
    print(c.cli("cluster", "status", "--home", c.home).stdout)

    # Back to N with the CLI's default order, in one command.
    start = time.monotonic()
    p = c.cli("upgrade", "--home", c.home, "--image", image_n, check=False,
              timeout=600)
    print(p.stdout, end="")
    assert p.returncode == 0, p.stderr
    assert set(releases(c).values()) == {RELEASE_N}
    # One window for the whole one-command downgrade (its progress lines
    # give each server's stop and start times).
    roller.restarts.append({"target": "all (1 command)", "from": RELEASE_N1,
                            "to": RELEASE_N, "start": start,
                            "end": time.monotonic()})
    for s in c.config()["servers"]:
        assert s["runtime"] == "podman" and s["image"] == image_n, s
    time.sleep(2)

    results, lock_check = wl.stop()
    report_pauses(roller, wl, results)
    check_results(results, lock_check)
