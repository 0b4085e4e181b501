"""The workload and the measurements of the rolling-upgrade tests
(test_upgrade.py, test_upgrade_podman.py; issue 4 "must show" 1-3).

While servers are rolled, these run against the mounts:
  - fio with --verify=crc32c on several files, held open throughout
    (time-based, ended through fio's --trigger-file so it exits 0);
  - a writer that unlinks its file right after opening it and keeps
    appending a known pattern, then reads everything back through the
    same descriptor;
  - a holder of an fcntl write lock, checked from the other mount at the
    end with F_GETLK and F_SETLK;
  - a probe per mount timing, every ~20 ms, a 4 KiB pwrite+fsync (OSS path)
    and a create+unlink (MDS path), logging every latency with a
    CLOCK_MONOTONIC timestamp, for the longest I/O pause per restart.
Every helper process reports a JSON result on stdout and exits non-zero on
any syscall error. Every loop is bounded in time (max_seconds).
"""

import errno
import glob
import json
import os
import signal
import struct
import subprocess
import sys
import time
import fcntl

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# --- helper programs (run with PY -c SCRIPT ARGS) -------------------------

UNLINKED_WRITER = r'''
import json, os, sys, time
path, stop, max_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
CHUNK = 8192
def pattern(i):
    b = (b"%08d:" % i) * (CHUNK // 9 + 1)
    return b[:CHUNK]
res = {"chunks": 0, "error": None, "mismatch": None}
try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.unlink(path)
    if os.path.exists(path):
        raise RuntimeError("file still visible after unlink")
    end = time.monotonic() + max_s
    i = 0
    while not os.path.exists(stop) and time.monotonic() < end:
        n = os.pwrite(fd, pattern(i), i * CHUNK)
        if n != CHUNK:
            raise RuntimeError("short write %d at chunk %d" % (n, i))
        i += 1
        if i % 16 == 0:
            os.fsync(fd)
        time.sleep(0.02)
    os.fsync(fd)
    res["chunks"] = i
    st = os.fstat(fd)
    if st.st_size != i * CHUNK:
        res["mismatch"] = "size %d, expected %d" % (st.st_size, i * CHUNK)
    for j in range(i):
        got = os.pread(fd, CHUNK, j * CHUNK)
        if got != pattern(j):
            res["mismatch"] = "chunk %d differs" % j
            break
    os.close(fd)
except Exception as e:
    res["error"] = repr(e)
print(json.dumps(res), flush=True)
sys.exit(0 if res["error"] is None and res["mismatch"] is None else 1)
'''

LOCK_HOLDER = r'''
import fcntl, json, os, sys, time
path, stop, ready, max_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
res = {"error": None}
try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"L" * 4096)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)
    open(ready, "w").close()
    end = time.monotonic() + max_s
    while not os.path.exists(stop) and time.monotonic() < end:
        time.sleep(0.1)
    # Still the owner: re-locking our own range succeeds at once.
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)
    # Wait for the checker to finish before letting go.
    end = time.monotonic() + 60
    while not os.path.exists(stop + ".checked") and time.monotonic() < end:
        time.sleep(0.05)
    os.close(fd)
except Exception as e:
    res["error"] = repr(e)
print(json.dumps(res), flush=True)
sys.exit(0 if res["error"] is None else 1)
'''

PROBE = r'''
import json, os, sys, time
d, name, stop, max_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
res = {"samples": [], "errors": []}
fd = None
try:
    fd = os.open(os.path.join(d, name + ".data"), os.O_RDWR | os.O_CREAT, 0o644)
except Exception as e:
    res["errors"].append(repr(e))
end = time.monotonic() + max_s
i = 0
buf = b"p" * 4096
while fd is not None and not os.path.exists(stop) and time.monotonic() < end:
    t0 = time.monotonic()
    try:
        os.pwrite(fd, buf, (i % 256) * 4096)
        os.fsync(fd)
        t1 = time.monotonic()
        p = os.path.join(d, "%s.%d" % (name, i))
        f = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(f)
        os.unlink(p)
        t2 = time.monotonic()
        res["samples"].append((round(t0, 4), round(t1 - t0, 4), round(t2 - t1, 4)))
    except Exception as e:
        res["errors"].append("%.3f %r" % (t0, e))
        if len(res["errors"]) > 20:
            break
    i += 1
    time.sleep(0.02)
if fd is not None:
    os.close(fd)
print(json.dumps(res), flush=True)
sys.exit(0 if not res["errors"] else 1)
'''

F_GETLK = fcntl.F_GETLK
FLOCK_FMT = "@hhqqi4x"  # struct flock on x86_64/aarch64 Linux


def getlk(fd, start, length):
    """F_GETLK for a write lock over [start, start+length): (type, pid)."""
    arg = struct.pack(FLOCK_FMT, fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    out = fcntl.fcntl(fd, F_GETLK, arg)
    l_type, _, l_start, l_len, l_pid = struct.unpack(FLOCK_FMT, out)
    return l_type, l_start, l_len, l_pid


class Workload:
    """Starts the helpers and fio; stop() ends them and returns results."""

    def __init__(self, work, mnt_a, mnt_b, max_seconds, fio_files=3,
                 fio_size="8M"):
        self.work = work
        self.mnt_a = mnt_a
        self.mnt_b = mnt_b
        self.max_seconds = max_seconds
        self.fio_files = fio_files
        self.fio_size = fio_size
        self.stop_file = os.path.join(work, "stop")
        self.trigger = os.path.join(work, "fio.trigger")
        self.lock_ready = os.path.join(work, "lock.ready")
        self.procs = {}
        self.t0 = None  # CLOCK_MONOTONIC when fio was started
        self.fio_dir = os.path.join(work, "fio")
        os.makedirs(self.fio_dir, exist_ok=True)

    def _spawn(self, name, argv, cwd=None):
        out = open(os.path.join(self.work, name + ".out"), "w")
        err = open(os.path.join(self.work, name + ".err"), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd,
                             start_new_session=True)
        out.close()
        err.close()
        self.procs[name] = p
        return p

    def start(self, data_dir_a, data_dir_b):
        """data_dir_a/_b: the same directory seen through mount A / B."""
        self.data_a = data_dir_a
        self.data_b = data_dir_b
        self.lock_path_a = os.path.join(data_dir_a, "locked")
        self.lock_path_b = os.path.join(data_dir_b, "locked")
        self._spawn("lock", [PY, "-c", LOCK_HOLDER, self.lock_path_a,
                             self.stop_file, self.lock_ready,
                             str(self.max_seconds)])
        end = time.monotonic() + 30
        while not os.path.exists(self.lock_ready):
            if self.procs["lock"].poll() is not None or time.monotonic() > end:
                raise AssertionError("lock holder did not take its lock: "
                                     + self.read("lock"))
            time.sleep(0.05)
        self._spawn("unlinked", [PY, "-c", UNLINKED_WRITER,
                                 os.path.join(data_dir_b, "unlinked"),
                                 self.stop_file, str(self.max_seconds)])
        self._spawn("probe_a", [PY, "-c", PROBE, data_dir_a, "probe-a",
                                self.stop_file, str(self.max_seconds)])
        self._spawn("probe_b", [PY, "-c", PROBE, data_dir_b, "probe-b",
                                self.stop_file, str(self.max_seconds)])
        self.t0 = time.monotonic()
        self._spawn("fio", [
            "fio", "--name=upgrade", f"--directory={data_dir_a}",
            f"--numjobs={self.fio_files}", "--nrfiles=1",
            f"--size={self.fio_size}", "--bs=4k", "--rw=randwrite",
            "--ioengine=psync", "--verify=crc32c", "--verify_backlog=64",
            "--verify_fatal=1", "--time_based",
            f"--runtime={int(self.max_seconds)}",
            f"--trigger-file={self.trigger}",
            "--write_lat_log=" + os.path.join(self.fio_dir, "lat"),
            "--log_avg_msec=0", "--group_reporting",
            "--output-format=normal"], cwd=self.fio_dir)

    def alive(self):
        """Names of helpers that have exited already."""
        return {n: p.poll() for n, p in self.procs.items()}

    def read(self, name, ext="out"):
        try:
            with open(os.path.join(self.work, f"{name}.{ext}")) as f:
                return f.read()
        except OSError:
            return ""

    def check_lock_from_b(self):
        """From mount B: F_GETLK reports A's lock, F_SETLK is refused."""
        fd = os.open(self.lock_path_b, os.O_RDWR)
        try:
            l_type, l_start, l_len, _ = getlk(fd, 0, 100)
            refused = None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)
                refused = False
                fcntl.lockf(fd, fcntl.LOCK_UN, 100, 0)
            except OSError as e:
                refused = e.errno
            return {"getlk_type": l_type, "getlk_start": l_start,
                    "getlk_len": l_len, "setlk_errno": refused}
        finally:
            os.close(fd)

    def stop(self, timeout=120):
        """Ends everything; returns {name: (rc, stdout)} and the lock check."""
        open(self.trigger, "w").close()
        open(self.stop_file, "w").close()
        lock_check = None
        end = time.monotonic() + timeout
        # Let the lock holder finish its own check, then check from B.
        for name in ("unlinked", "probe_a", "probe_b", "fio"):
            p = self.procs.get(name)
            if p is None:
                continue
            try:
                p.wait(timeout=max(1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if self.procs.get("lock") is not None and \
                self.procs["lock"].poll() is None:
            try:
                lock_check = self.check_lock_from_b()
            except OSError as e:
                lock_check = {"error": repr(e)}
        open(self.stop_file + ".checked", "w").close()
        results = {}
        for name, p in self.procs.items():
            try:
                p.wait(timeout=max(1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            results[name] = (p.returncode, self.read(name), self.read(name, "err"))
        return results, lock_check

    def kill(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        open(self.stop_file, "w").close()
        open(self.stop_file + ".checked", "w").close()

    # --- pause measurements ---------------------------------------------

    def fio_latencies(self):
        """[(monotonic seconds, latency seconds)] from fio's lat logs."""
        out = []
        for path in glob.glob(os.path.join(self.fio_dir, "lat_lat.*.log")):
            with open(path) as f:
                for line in f:
                    parts = line.split(",")
                    if len(parts) < 2:
                        continue
                    try:
                        t_ms = int(parts[0])
                        lat_ns = int(parts[1])
                    except ValueError:
                        continue
                    # fio logs the completion time; the I/O began lat before.
                    out.append((self.t0 + t_ms / 1000.0 - lat_ns / 1e9,
                                lat_ns / 1e9))
        return out

    @staticmethod
    def probe_latencies(stdout):
        try:
            res = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return []
        out = []
        for t, w, m in res.get("samples", []):
            out.append((t, w))
            out.append((t + w, m))
        return out


def longest_pause(samples, start, end, slack=1.0):
    """The longest latency of an operation that began in [start-slack, end]."""
    best = 0.0
    for t, lat in samples:
        if start - slack <= t <= end and lat > best:
            best = lat
    return best


def pause_report(restarts, sources, target_s=1.0):
    """restarts: [{"target","from","to","start","end"}]; sources: {name:
    samples}. Returns (lines, rows) with the longest pause per restart."""
    rows = []
    lines = [f"{'restart':<22} {'roll s':>7} " +
             " ".join(f"{n + ' s':>10}" for n in sources) +
             f" {'worst s':>8}  (target < {target_s:g} s)"]
    prev_end = None
    for r in restarts:
        # An operation that began before this roll but after the previous
        # one ended counts here (it may have been blocked by this stop);
        # one that began during the previous roll belongs to that one.
        slack = 1.0 if prev_end is None else \
            max(0.0, min(1.0, r["start"] - prev_end))
        prev_end = r["end"]
        pauses = {n: longest_pause(s, r["start"], r["end"], slack)
                  for n, s in sources.items()}
        worst = max(pauses.values()) if pauses else 0.0
        row = dict(r, pauses=pauses, worst=worst,
                   roll=r["end"] - r["start"])
        rows.append(row)
        label = f"{r['target']} {r['from']}->{r['to']}"
        lines.append(
            f"{label:<22} {row['roll']:>7.2f} " +
            " ".join(f"{pauses[n]:>10.3f}" for n in sources) +
            f" {worst:>8.3f}  {'OK' if worst < target_s else 'OVER'}")
    return lines, rows


def check_results(results, lock_check):
    """Every helper of a stopped Workload ended without an error."""
    rc, out, err = results["fio"]
    assert rc == 0, f"fio exited {rc}\n{out[-3000:]}\n{err[-3000:]}"
    both = (out + err).lower()
    for bad in ("verify failed", "bad magic", "verify: bad", "io_u error"):
        assert bad not in both, f"fio: {bad}\n{out[-3000:]}\n{err[-3000:]}"
    assert "err= 0" in out, out[-3000:]
    rc, out, err = results["unlinked"]
    assert rc == 0, f"unlinked-file writer: {out} {err[-2000:]}"
    res = json.loads(out.strip().splitlines()[-1])
    assert res["chunks"] > 0 and res["mismatch"] is None, res
    for probe in ("probe_a", "probe_b"):
        rc, out, err = results[probe]
        assert rc == 0, f"{probe} saw errors: {out[-3000:]} {err[-2000:]}"
    assert lock_check is not None and "error" not in lock_check, lock_check
    assert lock_check["getlk_type"] == fcntl.F_WRLCK, lock_check
    assert (lock_check["getlk_start"], lock_check["getlk_len"]) == (0, 100), \
        lock_check
    assert lock_check["setlk_errno"] in (errno.EAGAIN, errno.EACCES), lock_check
    rc, out, err = results["lock"]
    assert rc == 0, f"lock holder: {out} {err[-2000:]}"
