"""Releases N and N+1 side by side (issue 4, DESIGN.md "Versions"), with
real processes on 127.0.0.1:

- a mixed cluster (MDS at N+1, ost0 at N, ost1 at N+1, a file striped over
  both) serves a mount (release N+1) correctly: written bytes read back
  after a remount; `stripefs cluster status` shows protocol 1 on every
  link to the N server and 2 on the links between N+1 peers; the N+1 MDS
  got Open2 (the protocol-2 open), the N+1 OSS Write2 (checksummed write),
  the N OSS only protocol-1 writes;
- the compat on-disk feature N+1 turns on by itself (release_history) does
  not stop a downgrade: ost0's store was first served by N+1, then by N;
- the incompatible feature wide_dirs, turned on by the operator on N+1
  (--enable-feature), moves the object files (the data still reads back)
  and makes release N refuse that store (exit 3, naming the feature and
  both releases), while N+1 still serves it.

Release N+1 binaries come from $STRIPEFS_BUILD/bin, release N binaries
from $STRIPEFS_BUILD_N/bin (default /work/main/build-n/bin). Every process
is started and stopped here, also when a test fails.
"""

import json
import os
import subprocess

from rawprocs import (BIN_N, BIN_N1, EXIT_REFUSED, RELEASE_N, RELEASE_N1,
                      free_port as _free_port, have, need_release_n,
                      procs_fixture, wait as _wait)

STRIPE = 1 << 20

SERVER_BINS = ("stripefs-mds", "stripefs-oss")


need_n = need_release_n(SERVER_BINS)


def _have(bindir, names=SERVER_BINS):
    return have(bindir, names)


procs = procs_fixture("stripefs-versions-")


def _data(procs, name):
    return procs.data(name)


def _status(procs, servers):
    """`stripefs cluster status --json` over a cluster.json naming the
    servers this test started ([(target, role, port, data)])."""
    home = os.path.join(procs.root, "home")
    os.makedirs(home, exist_ok=True)
    config = {"servers": [{"target": t, "role": r, "address": f"127.0.0.1:{p}",
                           "data": d} for t, r, p, d in servers],
              "stripe_count": 2, "stripe_size": STRIPE}
    with open(os.path.join(home, "cluster.json"), "w") as f:
        json.dump(config, f)
    r = subprocess.run([os.path.join(BIN_N1, "stripefs"), "cluster", "status",
                        "--home", home, "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return {s["target"]: s for s in json.loads(r.stdout)}


def _protocols(server):
    """{client name: protocol} of a server's status."""
    conns = server.get("connections") or []
    return {c["client"]: int(c["protocol"]) for c in conns}


def _pattern(n, seed):
    block = bytes((i * 7 + seed) & 0xFF for i in range(4096))
    return (block * (n // len(block) + 1))[:n]


def _read(path):
    with open(path, "rb") as f:
        return f.read()


@need_n
def test_mixed_cluster_serves_and_reports_protocols(procs):
    assert _have(BIN_N1, SERVER_BINS + ("stripefs-mount", "stripefs")), \
        f"release N+1 binaries missing in {BIN_N1}"
    p0, p1, pm = _free_port(), _free_port(), _free_port()
    d0, d1, dm = (_data(procs, n) for n in ("ost0", "ost1", "mdt0"))

    # ost0's store is first served by N+1 (which turns on its compat
    # feature release_history), then downgraded to N: allowed.
    ost0 = procs.serve(BIN_N1, "stripefs-oss", p0, "--target", "ost0",
                       "--data", d0, name="ost0-n1")
    procs.stop(ost0)
    ost0 = procs.serve(BIN_N, "stripefs-oss", p0, "--target", "ost0", "--data",
                       d0, name="ost0-n")
    procs.serve(BIN_N1, "stripefs-oss", p1, "--target", "ost1",
                "--data", d1, name="ost1-n1")
    mds_args = ["--target", "mdt0", "--data", dm, "--ost",
                f"0=127.0.0.1:{p0}", "--ost", f"1=127.0.0.1:{p1}",
                "--stripe-count", "2", "--stripe-size", STRIPE]
    procs.serve(BIN_N1, "stripefs-mds", pm, *mds_args, name="mdt0-n1")
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, pm, mnt)

    # Four stripe units: two on each OST, so both wire formats carry data.
    files = {"a": _pattern(4 * STRIPE + 123, 1), "b": _pattern(3 * STRIPE, 2)}
    for name, data in files.items():
        with open(os.path.join(mnt, name), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    # Rewrite a range inside a file opened read-write (an Open, not a Create).
    patch = _pattern(STRIPE + 5000, 9)
    with open(os.path.join(mnt, "a"), "r+b") as f:
        f.seek(STRIPE - 2500)
        f.write(patch)
    a = bytearray(files["a"])
    a[STRIPE - 2500:STRIPE - 2500 + len(patch)] = patch
    files["a"] = bytes(a)
    for name, data in files.items():
        assert _read(os.path.join(mnt, name)) == data, name

    servers = [("mdt0", "mds", pm, dm), ("ost0", "oss", p0, d0),
               ("ost1", "oss", p1, d1)]
    st = _status(procs, servers)
    assert st["mdt0"]["release"] == RELEASE_N1
    assert st["ost0"]["release"] == RELEASE_N
    assert st["ost1"]["release"] == RELEASE_N1
    mds_links = _protocols(st["mdt0"])
    assert mds_links and set(mds_links.values()) == {2}, mds_links  # the mount
    ost0_links = _protocols(st["ost0"])
    ost1_links = _protocols(st["ost1"])
    # The mount and the MDS ("mds:<pid>") talk to both OSTs; protocol 1 with
    # the N one, 2 with the N+1 one.
    for links in (ost0_links, ost1_links):
        assert any(c.startswith("mds:") for c in links), links
        assert any(not c.startswith("mds:") for c in links), links
    assert set(ost0_links.values()) == {1}, ost0_links
    assert set(ost1_links.values()) == {2}, ost1_links
    # Which wire formats were used.
    mds_counts = st["mdt0"]["rpc_counts"]
    assert mds_counts.get("Open2", 0) >= 1, mds_counts
    assert st["ost1"]["rpc_counts"].get("Write2", 0) >= 2, st["ost1"]
    assert st["ost1"]["rpc_counts"].get("Write", 0) == 0, st["ost1"]
    assert st["ost0"]["rpc_counts"].get("Write", 0) >= 2, st["ost0"]
    assert st["ost0"]["rpc_counts"].get("Write2", 0) == 0, st["ost0"]

    # Remount (no page cache), everything reads back.
    procs.umount(mnt)
    procs.mount(BIN_N1, pm, mnt)
    for name, data in files.items():
        assert _read(os.path.join(mnt, name)) == data, name


@need_n
def test_incompat_feature_refuses_release_n(procs):
    assert _have(BIN_N1, SERVER_BINS + ("stripefs-mount",)), \
        f"release N+1 binaries missing in {BIN_N1}"
    p1, pm = _free_port(), _free_port()
    d1, dm = _data(procs, "ost1"), _data(procs, "mdt0")
    ost_args = ["--target", "ost0", "--data", d1]
    ost = procs.serve(BIN_N1, "stripefs-oss", p1, *ost_args, name="ost-n1")
    procs.serve(BIN_N1, "stripefs-mds", pm, "--target", "mdt0", "--data", dm,
                "--ost", f"0=127.0.0.1:{p1}", name="mdt0-n1")
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, pm, mnt)
    data = {f"f{i}": _pattern(100_000 + i * 4096, i) for i in range(8)}
    for name, d in data.items():
        with open(os.path.join(mnt, name), "wb") as f:
            f.write(d)
            f.flush()
            os.fsync(f.fileno())
    procs.umount(mnt)
    procs.stop(ost)

    # An unknown feature name is refused with the list of known ones.
    r = procs.run(BIN_N1, "stripefs-oss", "--listen", f"127.0.0.1:{p1}",
                  *ost_args, "--enable-feature", "no_such_feature")
    assert r.returncode == EXIT_REFUSED, r.stdout + r.stderr
    assert "wide_dirs" in r.stderr, r.stderr

    # The operator turns on wide_dirs: the object files move.
    ost = procs.serve(BIN_N1, "stripefs-oss", p1, *ost_args,
                      "--enable-feature", "wide_dirs", name="ost-wide")
    objects = os.path.join(d1, "objects")
    moved = [n for sub in os.listdir(objects) if len(sub) == 3
             for n in os.listdir(os.path.join(objects, sub))]
    left = [n for sub in os.listdir(objects) if len(sub) == 2
            for n in os.listdir(os.path.join(objects, sub))]
    assert len(moved) >= len(data) and not left, (moved, left)
    procs.mount(BIN_N1, pm, mnt)
    for name, d in data.items():
        assert _read(os.path.join(mnt, name)) == d, name
    procs.umount(mnt)
    procs.stop(ost)

    # Release N refuses the store even after a clean stop and with --force,
    # naming the feature and both releases.
    for extra in ([], ["--force"]):
        r = procs.run(BIN_N, "stripefs-oss", "--listen", f"127.0.0.1:{p1}",
                      *ost_args, *extra)
        out = r.stdout + r.stderr
        assert r.returncode == EXIT_REFUSED, out
        line = [l for l in r.stderr.splitlines() if "wide_dirs" in l]
        assert line, out
        assert RELEASE_N in line[0] and RELEASE_N1 in line[0], line[0]
    # N has no such flag at all.
    r = procs.run(BIN_N, "stripefs-oss", "--listen", f"127.0.0.1:{p1}",
                  *ost_args, "--enable-feature", "wide_dirs")
    assert r.returncode != 0

    # N+1 still serves it (without being asked again), data intact.
    procs.serve(BIN_N1, "stripefs-oss", p1, *ost_args, name="ost-wide-again")
    procs.mount(BIN_N1, pm, mnt)
    for name, d in data.items():
        assert _read(os.path.join(mnt, name)) == d, name
    with open(os.path.join(mnt, "new"), "wb") as f:
        f.write(b"x" * 70000)
    assert _read(os.path.join(mnt, "new")) == b"x" * 70000


@need_n
def test_lock_service_negotiates_per_client(procs):
    """A release N+1 DLM with a release N OSS among its clients: protocol 1
    with that one, 2 with the N+1 MDS, OSS and mount; data path works."""
    assert _have(BIN_N1, SERVER_BINS + ("stripefs-dlm", "stripefs-mount",
                                        "stripefs")), \
        f"release N+1 binaries missing in {BIN_N1}"
    assert _have(BIN_N, ("stripefs-oss",))
    pd, p0, p1, pm = (_free_port() for _ in range(4))
    dd, d0, d1, dm = (_data(procs, n) for n in ("dlm", "ost0", "ost1", "mdt0"))
    dlm = f"127.0.0.1:{pd}"
    procs.serve(BIN_N1, "stripefs-dlm", pd, "--target", "dlm", "--data", dd,
                name="dlm-n1")
    procs.serve(BIN_N, "stripefs-oss", p0, "--target", "ost0", "--data", d0,
                "--dlm", dlm, name="ost0-n")
    procs.serve(BIN_N1, "stripefs-oss", p1, "--target", "ost1", "--data", d1,
                "--dlm", dlm, name="ost1-n1")
    procs.serve(BIN_N1, "stripefs-mds", pm, "--target", "mdt0", "--data", dm,
                "--ost", f"0=127.0.0.1:{p0}", "--ost", f"1=127.0.0.1:{p1}",
                "--stripe-count", "2", "--stripe-size", STRIPE, "--dlm", dlm,
                name="mdt0-n1")
    mnt = os.path.join(procs.root, "mnt")
    procs.mount(BIN_N1, pm, mnt)
    data = _pattern(3 * STRIPE + 17, 5)
    with open(os.path.join(mnt, "f"), "wb") as f:
        f.write(data)
    assert _read(os.path.join(mnt, "f")) == data

    servers = [("mdt0", "mds", pm, dm), ("ost0", "oss", p0, d0),
               ("ost1", "oss", p1, d1), ("dlm", "dlm", pd, dd)]

    def links():
        return _protocols(_status(procs, servers)["dlm"])

    # Servers connect their lock client once they serve: wait for all four.
    _wait(lambda: {"ost0", "ost1", "mdt0"} <= set(links()), 30,
          "the servers' lock clients")
    got = links()
    assert got["ost0"] == 1, got
    assert got["ost1"] == 2 and got["mdt0"] == 2, got
    mounts = {c: p for c, p in got.items() if c not in ("ost0", "ost1", "mdt0")}
    assert mounts and set(mounts.values()) == {2}, got
