"""A server cut off from the network for a while (issue 5): the server runs
in a network namespace this test creates, reached over a veth pair; taking
the host end of the link down cuts it off — packets go nowhere, nothing
tells either side — for a bounded time, then the link comes back.

Two mounts keep writing, fsyncing, renaming and reading files through the
cut; they must finish with no syscall error and every byte right. A short
cut (5 s) stalls the TCP connections, which carry on when the link returns;
a long one (20 s) outlasts gRPC keepalive (10 s + 5 s), so the connections
are declared dead and the mounts resend their requests (same xid) until
the server is reachable again.

The rest of the cluster (DLM, MDS or OSSs, mounts) stays in this
namespace but listens on the host end of the veth pair, so the server in
the namespace can reach it. All addresses are in a /30 of our own."""

import fcntl
import os
import random
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

from rawprocs import BIN_N1, Procs, free_port, log_of, wait

SHORT_CUT_S = 5
LONG_CUT_S = 20


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True,
                       timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Netns:
    """A network namespace joined to this one by a veth pair; removed (with
    its link) by close()."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.name = f"sfs-cut-{tag}"
        self.host_if = f"sfc{tag}h"
        self.ns_if = f"sfc{tag}n"
        net = random.Random(tag).randrange(1, 250)
        self.host_addr = f"10.232.{net}.1"
        self.ns_addr = f"10.232.{net}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name",
                self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_addr}/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            self.exec_ip("link", "set", "lo", "up")
            self.exec_ip("addr", "add", f"{self.ns_addr}/30", "dev",
                         self.ns_if)
            self.exec_ip("link", "set", self.ns_if, "up")
        except BaseException:
            self.close()
            raise

    def exec_ip(self, *args):
        return _ip("netns", "exec", self.name, "ip", *args)

    def link(self, up):
        """Sets the host end up or down with an ioctl, not with `ip`: a
        forked child closes the workers' inherited descriptors of files on
        the mounts, each close is a FUSE flush, and a flush writes the
        file's buffered data back to the server this very call cuts off, so
        a fork here could wait on the cut it is meant to end."""
        siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            name = self.host_if.encode()
            req = fcntl.ioctl(s, siocgifflags, struct.pack("16sH22x", name, 0))
            flags = struct.unpack("16sH22x", req)[1]
            flags = flags | iff_up if up else flags & ~iff_up
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", name, flags))

    def close(self):
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.name, check=False)


def _reachable(addr, port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, port)) == 0


class NetProcs(Procs):
    """Procs whose servers listen on given addresses, some of them inside
    the namespace."""

    def serve_at(self, binary, addr, port, *args, netns=None, name=None):
        argv = [os.path.join(BIN_N1, binary), "--listen", f"{addr}:{port}",
                *map(str, args)]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns.name, *argv]
        name = name or binary
        log = open(os.path.join(self.root, f"{name}.{len(self.procs)}.log"),
                   "w")
        # `ip netns exec` execs the server: p.pid is the server's.
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        p.log_path = log.name
        log.close()
        self.procs.append(p)
        wait(lambda: _reachable(addr, port) or p.poll() is not None, 30,
             f"{binary} on {addr}:{port}")
        assert p.poll() is None, f"{binary} exited {p.returncode}: {log_of(p)}"
        return p

    def mount_at(self, mds, mnt):
        os.makedirs(mnt, exist_ok=True)
        log = os.path.join(self.root, os.path.basename(mnt) + ".log")
        r = subprocess.run([os.path.join(BIN_N1, "stripefs-mount"), "--mds",
                            mds, "--log-file", log, mnt],
                           capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"mount failed: {r.stdout}{r.stderr}"
        self.mounts.append(mnt)


@pytest.fixture
def netcluster(tmp_path):
    ns = Netns()
    procs = NetProcs(str(tmp_path))
    try:
        yield ns, procs
    finally:
        try:
            ns.link(True)
        finally:
            procs.stop_all()
            ns.close()


def _start(ns, procs, cut):
    """DLM, MDS and two OSSs; `cut` (mdt0 or ost0) runs in the namespace.
    Returns (address:port of the cut server, its port, [mnt_a, mnt_b])."""
    host, inside = ns.host_addr, ns.ns_addr
    dlm_port, mds_port = free_port(), free_port()
    oss_ports = [free_port(), free_port()]
    dlm = f"{host}:{dlm_port}"
    procs.serve_at("stripefs-dlm", host, dlm_port, "--data",
                   procs.data("dlm"), "--callback-timeout", 10)
    oss_addr = []
    for i, port in enumerate(oss_ports):
        addr = inside if cut == f"ost{i}" else host
        procs.serve_at("stripefs-oss", addr, port, "--target", f"ost{i}",
                       "--data", procs.data(f"ost{i}"), "--dlm", dlm,
                       netns=ns if addr == inside else None, name=f"ost{i}")
        oss_addr.append(f"{addr}:{port}")
    mds_addr = inside if cut == "mdt0" else host
    procs.serve_at("stripefs-mds", mds_addr, mds_port, "--target", "mdt0",
                   "--data", procs.data("mdt0"), "--dlm", dlm,
                   "--stripe-count", -1, "--stripe-size", 65536,
                   *[f"--ost={i}={a}" for i, a in enumerate(oss_addr)],
                   netns=ns if mds_addr == inside else None, name="mdt0")
    mnts = [os.path.join(procs.root, "mnt-a"), os.path.join(procs.root, "mnt-b")]
    for m in mnts:
        procs.mount_at(f"{mds_addr}:{mds_port}", m)
    if cut == "mdt0":
        return inside, mds_port, mnts
    return inside, oss_ports[int(cut[3:])], mnts


def _block(name, i, n):
    unit = f"{name}:{i}:".encode()
    return (unit * (n // len(unit) + 1))[:n]


class Worker(threading.Thread):
    """Creates, writes (fsync), renames and re-reads files in its own
    directory of one mount, and appends to one file held open throughout,
    until told to stop or `max_ops` rounds are done. Records every
    acknowledged file and any syscall error."""

    BLOCK = 96 * 1024

    def __init__(self, mnt, name, max_ops=400):
        super().__init__(daemon=True)
        self.dir = os.path.join(mnt, name)
        self.name_ = name
        self.max_ops = max_ops
        self.stop = threading.Event()
        self.errors = []
        self.files = {}  # final name -> expected bytes
        self.held_blocks = 0
        self.rounds = 0

    def run(self):
        try:
            os.mkdir(self.dir)
            held = os.open(os.path.join(self.dir, "held"),
                           os.O_CREAT | os.O_RDWR, 0o644)
            try:
                for i in range(self.max_ops):
                    if self.stop.is_set():
                        break
                    data = _block(self.name_, i, self.BLOCK)
                    tmp = os.path.join(self.dir, f"tmp{i}")
                    with open(tmp, "wb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    final = os.path.join(self.dir, f"f{i}")
                    os.rename(tmp, final)
                    with open(final, "rb") as f:
                        if f.read() != data:
                            raise AssertionError(f"{final}: content differs")
                    self.files[f"f{i}"] = data
                    os.pwrite(held, _block("held", i, 4096), i * 4096)
                    if i % 4 == 3:
                        os.fsync(held)
                    self.held_blocks = i + 1
                    self.rounds = i + 1
                    time.sleep(0.05)
                os.fsync(held)
            finally:
                os.close(held)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{self.name_} round {self.rounds}: {e!r}")


def _cut(ns, addr, port, seconds, workers):
    """Takes the link down for `seconds`, checking the server is really
    unreachable, then brings it back and waits until every worker makes
    progress again."""
    ns.link(False)
    try:
        assert not _reachable(addr, port), "the server is still reachable"
        time.sleep(1)  # a round already past the server may still finish
        stalled = [w.rounds for w in workers]
        time.sleep(seconds - 1)
        # Every round needs the server: nobody got through the cut.
        assert [w.rounds for w in workers] == stalled, "the cut cut nothing"
    finally:
        ns.link(True)
    wait(lambda: _reachable(addr, port), 30, f"{addr}:{port} after the cut")
    # Every worker makes progress again after the cut.
    after_cut = [w.rounds for w in workers]
    wait(lambda: all(w.rounds > a or not w.is_alive()
                     for w, a in zip(workers, after_cut)), 60,
         "the workers to make progress after the cut")


@pytest.mark.parametrize("cut", ["ost0", "mdt0"])
def test_server_cut_off_and_back(netcluster, cut):
    ns, procs = netcluster
    addr, port, mnts = _start(ns, procs, cut)
    workers = [Worker(mnts[i % 2], f"w{i}") for i in range(4)]
    for w in workers:
        w.start()
    try:
        wait(lambda: all(w.rounds >= 3 or not w.is_alive() for w in workers),
             60, "the workers to get going")
        _cut(ns, addr, port, SHORT_CUT_S, workers)
        _cut(ns, addr, port, LONG_CUT_S, workers)
    finally:
        for w in workers:
            w.stop.set()
        for w in workers:
            w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a worker hangs"
    errors = [e for w in workers for e in w.errors]
    assert not errors, errors
    # Everything acknowledged is there, read through the other mount.
    for i, w in enumerate(workers):
        other = mnts[(i + 1) % 2]
        d = os.path.join(other, w.name_)
        names = sorted(os.listdir(d))
        assert names == sorted([*w.files, "held"]), (w.name_, names)
        for fname, data in w.files.items():
            with open(os.path.join(d, fname), "rb") as f:
                assert f.read() == data, f"{w.name_}/{fname}"
        with open(os.path.join(d, "held"), "rb") as f:
            held = f.read()
        expect = b"".join(_block("held", j, 4096)
                          for j in range(w.held_blocks))
        assert held == expect, f"{w.name_}/held"
