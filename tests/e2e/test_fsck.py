"""stripefs fsck on a real cluster (issue 15): silent on a clean cluster;
finds an orphan object, a missing object and an object with data beyond
its file's end, each injected straight at an OSS with stripefs-ossctl
(tests/tools/ossctl.cc); --repair destroys the orphan and a second run
reports only what cannot be repaired. Errors (no MDS, release N servers,
no cluster home) are clear and exit 8.

The cluster is the test's own (two OSS, two mounts): the injections break
it on purpose. The MDS precreates PRECREATE_BATCH objects per call, so a
few creates carry its horizon past an object precreated behind its back.
"""

import json
import os
import re
import subprocess

from conftest import BIN
from helpers import two_mount_cluster
from rawprocs import BIN_N, free_port, need_release_n, procs_fixture

PRECREATE_BATCH = 4
PROBLEM_LINE = re.compile(r"^(orphan|missing|wrong size|shared): ", re.M)


def fsck(c, *args, pause_ms=0):
    """`stripefs fsck`; pause_ms: its test pause between steps
    ($STRIPEFS_TEST_FSCK_PAUSE_MS)."""
    env = {"STRIPEFS_TEST_FSCK_PAUSE_MS": str(pause_ms)}
    saved = os.environ.get("STRIPEFS_TEST_FSCK_PAUSE_MS")
    os.environ.update(env)
    try:
        p = c.cli("fsck", "--home", c.home, *args, check=False, timeout=120)
    finally:
        if saved is None:
            os.environ.pop("STRIPEFS_TEST_FSCK_PAUSE_MS", None)
        else:
            os.environ["STRIPEFS_TEST_FSCK_PAUSE_MS"] = saved
    assert p.returncode in (0, 1, 4), (
        f"fsck failed ({p.returncode}): {p.stdout}\n{p.stderr}")
    return p


def problems(p):
    return sorted(line for line in p.stdout.splitlines()
                  if PROBLEM_LINE.match(line))


def objects_of(c, path):
    """[(ost, oid)] of a file, from `stripefs getstripe`."""
    out = c.cli("getstripe", path).stdout
    rows = out.split("obdidx objid", 1)[1].split()
    return [(int(rows[i]), int(rows[i + 1])) for i in range(0, len(rows), 2)]


def ossctl(c, ost, *args):
    addr = c.server(f"ost{ost}")["address"]
    tool = os.path.join(BIN, "stripefs-ossctl")
    assert os.path.exists(tool), f"build {tool} (ninja stripefs-ossctl)"
    p = subprocess.run([tool, addr,
                        *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_fsck_finds_and_repairs():
    with two_mount_cluster(
            "stripefs-fsck-e2e-", 10,
            env={"STRIPEFS_TEST_PRECREATE_BATCH": str(PRECREATE_BATCH)}) as c:
        d = os.path.join(c.mnt, "d")
        os.mkdir(d)
        # Files of every shape: small, striped over both OSTs, sparse,
        # empty, one removed (its objects go through the destroy queue),
        # one unlinked while open.
        with open(os.path.join(d, "small"), "w") as f:
            f.write("hello\n")
        c.cli("setstripe", "-c", "2", "-S", "64K", os.path.join(d, "wide"))
        with open(os.path.join(d, "wide"), "wb") as f:
            f.write(os.urandom(300000))
        with open(os.path.join(d, "sparse"), "wb") as f:
            f.seek(5 << 20)
            f.write(b"end")
        open(os.path.join(d, "empty"), "w").close()
        for i in range(6):
            with open(os.path.join(d, f"gone{i}"), "w") as f:
                f.write("x" * i)
            os.unlink(os.path.join(d, f"gone{i}"))
        held = open(os.path.join(d, "held"), "w")
        try:
            held.write("kept while open")
            held.flush()
            os.unlink(os.path.join(d, "held"))

            clean = fsck(c)
            assert clean.returncode == 0, clean.stdout + clean.stderr
            assert problems(clean) == [], clean.stdout
            assert "scanned" in clean.stderr  # progress

            # Missing: an object of "wide" destroyed at its OSS.
            wide = objects_of(c, os.path.join(d, "wide"))
            assert len(wide) == 2
            missing_ost, missing_oid = wide[1]
            ossctl(c, missing_ost, "destroy", missing_oid)
            # Wrong size: bytes written past the end of "small" (6 bytes).
            [(small_ost, small_oid)] = objects_of(c, os.path.join(d, "small"))
            ossctl(c, small_ost, "write", small_oid, 8192, "beyond-eof")
            # Orphan: an object precreated behind the MDS's back; creates
            # on that OST make the MDS precreate past it.
            orphan_oid = int(ossctl(c, 0, "precreate", 1))
            for i in range(2 * PRECREATE_BATCH + 2):
                c.cli("setstripe", "-i", "0", os.path.join(d, f"new{i}"))

            found = fsck(c)
            want_left = sorted([
                f"missing: ost{missing_ost} object {missing_oid} of inode "
                f"{os.stat(os.path.join(d, 'wide')).st_ino} does not exist "
                f"on its OST",
                f"wrong size: ost{small_ost} object {small_oid} of inode "
                f"{os.stat(os.path.join(d, 'small')).st_ino} holds "
                f"{8192 + len('beyond-eof')} bytes, at most 6 for the "
                f"file's size 6 (data beyond the end of the file)",
            ])
            orphan_line = (f"orphan: ost0 object {orphan_oid} (0 bytes): no "
                           f"file references it")
            assert found.returncode == 4, found.stdout + found.stderr
            assert problems(found) == sorted(want_left + [orphan_line]), \
                found.stdout

            repaired = fsck(c, "--repair")
            assert repaired.returncode == 4  # missing, wrong size remain
            assert "1 orphans destroyed" in repaired.stdout, repaired.stdout

            again = fsck(c)
            assert again.returncode == 4
            assert problems(again) == want_left, again.stdout
        finally:
            held.close()


# Writes, truncates and removes files under a directory for `seconds`.
LOAD = r"""
import os, random, sys, time
d, end = sys.argv[1], time.monotonic() + float(sys.argv[2])
i = 0
while time.monotonic() < end:
    p = os.path.join(d, f"f{i % 40}")
    with open(p, "wb") as f:
        f.write(os.urandom(random.randint(0, 300000)))
        if i % 3 == 0:
            f.truncate(random.randint(0, 200000))
    if i % 2 == 0:
        os.unlink(p)
    i += 1
print("ops", i)
"""


def test_fsck_during_creates_and_removes_reports_nothing():
    """Objects precreated, handed out, queued and destroyed while fsck
    runs are never reported (the order of its reads, cli/fsck.cc)."""
    with two_mount_cluster(
            "stripefs-fsck-load-e2e-", 10,
            env={"STRIPEFS_TEST_PRECREATE_BATCH": str(PRECREATE_BATCH)}) as c:
        d = os.path.join(c.mnt, "load")
        os.mkdir(d)
        c.cli("setstripe", "-c", "2", "-S", "64K", d)
        load = subprocess.Popen(
            ["timeout", "60", "python3", "-c", LOAD, d, "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c.helpers.append(load)
        # Pauses between fsck's steps let many changes fall between them.
        runs = []
        for _ in range(4):
            runs.append(fsck(c, pause_ms=300))
        out, err = load.communicate(timeout=60)
        assert load.returncode == 0, err
        assert int(out.split()[1]) > 0
        for p in runs:
            assert p.returncode == 0, p.stdout
            assert problems(p) == [], p.stdout


procs = procs_fixture("stripefs-fsck-n-")


def _home_with(procs, mds_port, oss_port):
    """A cluster home whose cluster.json names an MDS and one OSS."""
    home = procs.data("home")
    servers = [
        {"target": "mdt0", "role": "mds", "address": f"127.0.0.1:{mds_port}",
         "data": procs.data("mdt0")},
        {"target": "ost0", "role": "oss", "address": f"127.0.0.1:{oss_port}",
         "data": procs.data("ost0")},
    ]
    with open(os.path.join(home, "cluster.json"), "w") as f:
        json.dump({"servers": servers, "stripe_count": 1,
                   "stripe_size": 1 << 20}, f)
    return home


def _fsck_home(home):
    return subprocess.run([os.path.join(BIN, "stripefs"), "fsck", "--home",
                           home], capture_output=True, text=True, timeout=120)


@need_release_n(("stripefs-mds", "stripefs-oss"))
def test_fsck_errors_are_clear(procs):
    pm, p0 = free_port(), free_port()
    home = _home_with(procs, pm, p0)
    # Nothing runs: the MDS cannot be reached.
    down = _fsck_home(home)
    assert down.returncode == 8, down.stdout + down.stderr
    assert f"cannot reach mdt0 at 127.0.0.1:{pm}" in down.stderr, down.stderr
    # Release N servers do not serve fsck.
    procs.serve(BIN_N, "stripefs-oss", p0, "--target", "ost0", "--data",
                procs.data("ost0"))
    procs.serve(BIN_N, "stripefs-mds", pm, "--target", "mdt0", "--data",
                procs.data("mdt0"), "--ost", f"0=127.0.0.1:{p0}")
    old = _fsck_home(home)
    assert old.returncode == 8, old.stdout + old.stderr
    assert "does not serve fsck (release 1.0.0?)" in old.stderr, old.stderr
    # No cluster home at all.
    none = _fsck_home(os.path.join(procs.root, "nowhere"))
    assert none.returncode == 8
    assert "no cluster in" in none.stderr, none.stderr
