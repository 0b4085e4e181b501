#!/usr/bin/env bash
# stripefs benchmark: fio (psync, 1 file, numjobs=1) and a metadata benchmark
# (create / stat / remove of 2000 files) on a stripefs mount and, in the same
# run, on a local directory, printed side by side with the DESIGN.md reference
# numbers (ext4, FUSE passthrough, MooseFS 3.0).
#
# The script starts its own cluster (1 MDS + 4 OSS) with the `stripefs` CLI
# in a temporary home and always tears it down (trap), also on failure.
#
# Environment:
#   STRIPEFS_BUILD      build dir with bin/ (default: build REPO/build now)
#   BENCH_TMP           where the temp home, mount and local dir go (/var/tmp)
#   BENCH_LOCAL_DIR     local directory to compare with (default: under BENCH_TMP)
#   BENCH_OSS           number of OSS (4)
#   BENCH_STRIPE_COUNT  stripe count of the benchmark directory (4)
#   BENCH_STRIPE_SIZE   stripe size (1M)
#   BENCH_SEQ_SIZE      file size of the sequential jobs (512M)
#   BENCH_RAND_SIZE     file size of the random jobs (128M)
#   BENCH_RAND_RUNTIME  seconds per random job (15)
#   BENCH_MD_FILES      files for create/stat/remove (2000)
#   BENCH_JSON          also write the results as JSON to this path
#   BENCH_LOCAL_ONLY=1  skip the cluster (checks the script and the local fs)
#   BENCH_DLM_OPS       enqueue+cancel pairs for dlm_bench (20000)
#   BENCH_LOCK_FILES    files for the create-cost comparison (MD_FILES)
#   BENCH_LOCK_ONLY=1   only the lock lines: dlm_bench and the create, stat
#                       and remove rates on a mount with the DLM (and on one
#                       with -o no_md_adaptive) versus a `cluster up --no-dlm` one
#
# Lock lines: `dlm_bench` (dlm/) measures lock enqueue/cancel throughput
# through real gRPC; the create cost of locking is stripefs-mdbench's create
# rate in a default-layout directory on this cluster's mount (with the DLM)
# versus on a second cluster started with `stripefs cluster up --no-dlm`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OSS="${BENCH_OSS:-4}"
STRIPE_COUNT="${BENCH_STRIPE_COUNT:-4}"
STRIPE_SIZE="${BENCH_STRIPE_SIZE:-1M}"
SEQ_SIZE="${BENCH_SEQ_SIZE:-512M}"
RAND_SIZE="${BENCH_RAND_SIZE:-128M}"
RAND_RUNTIME="${BENCH_RAND_RUNTIME:-15}"
MD_FILES="${BENCH_MD_FILES:-2000}"
PY="$(command -v /usr/bin/python3 || command -v python3)"

log() { echo "bench: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v fio >/dev/null || die "fio is not installed (deploy/install-deps.sh)"

if [[ -n "${STRIPEFS_BUILD:-}" ]]; then
  BUILD="$STRIPEFS_BUILD"
else
  BUILD="$REPO/build"
  log "building into $BUILD"
  cmake -G Ninja -S "$REPO" -B "$BUILD" >/dev/null
  ninja -C "$BUILD" cluster-binaries stripefs-mdbench dlm_bench >&2
fi
BIN="$BUILD/bin"
# The cluster binaries as the build lists them (CMakeLists.txt).
[[ -f "$BUILD/cluster-binaries.txt" ]] ||
  die "$BUILD/cluster-binaries.txt is missing (configure $BUILD with this tree's CMakeLists.txt)"
NEED="$(tr '\n' ' ' <"$BUILD/cluster-binaries.txt") stripefs-mdbench dlm_bench"
[[ "${BENCH_LOCAL_ONLY:-}" == 1 ]] && NEED="stripefs-mdbench dlm_bench"
for b in $NEED; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (build it or set STRIPEFS_BUILD)"
done

WORK="$(mktemp -d "${BENCH_TMP:-/var/tmp}/stripefs-bench.XXXXXX")"
HOME_DIR="$WORK/home"
MNT="$WORK/mnt"
NODLM_HOME="$WORK/home-nodlm"
NODLM_MNT="$WORK/mnt-nodlm"
DLM_OPS="${BENCH_DLM_OPS:-20000}"
LOCK_FILES="${BENCH_LOCK_FILES:-$MD_FILES}"
LOCAL="${BENCH_LOCAL_DIR:-$WORK/local}"
mkdir -p "$MNT" "$LOCAL"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "tearing down"
  for h in "$HOME_DIR" "$NODLM_HOME"; do
    if [[ -x "$BIN/stripefs" && -d "$h" ]]; then
      "$BIN/stripefs" cluster down --home "$h" >/dev/null 2>&1 || true
    fi
  done
  for m in "$MNT" "$NODLM_MNT" "$WORK/mnt-noadapt"; do
    if mountpoint -q "$m" 2>/dev/null; then fusermount3 -u -z "$m" || true; fi
  done
  # Servers the CLI may have left behind: only the pids it recorded here.
  for h in "$HOME_DIR" "$NODLM_HOME"; do
    [[ -d "$h/run" ]] || continue
    for f in "$h"/run/*.pid; do
      [[ -e "$f" ]] || continue
      pid="$(cat "$f" 2>/dev/null || true)"
      [[ "$pid" =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null || true
    done
  done
  if [[ $rc -ne 0 && -d "$HOME_DIR/log" ]]; then
    log "failed (rc $rc); last server log lines:"
    tail -n 5 "$HOME_DIR"/log/*.log >&2 2>/dev/null || true
  fi
  if [[ -z "${BENCH_LOCAL_DIR:-}" ]]; then rm -rf "$WORK"; else
    rm -rf "$HOME_DIR" "$MNT" "$NODLM_HOME" "$NODLM_MNT" "$LOCAL"/bench.*
    rmdir "$WORK" 2>/dev/null || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "${BENCH_LOCAL_ONLY:-}" != 1 ]]; then
log "starting a cluster: 1 MDS + $OSS OSS in $HOME_DIR, mounted at $MNT"
"$BIN/stripefs" cluster up --home "$HOME_DIR" --oss "$OSS" --mount "$MNT" \
  --bin-dir "$BIN" >&2
mountpoint -q "$MNT" || die "$MNT is not mounted after cluster up"
SFS_DIR="$MNT/bench"
mkdir -p "$SFS_DIR"
"$BIN/stripefs" setstripe -c "$STRIPE_COUNT" -S "$STRIPE_SIZE" "$SFS_DIR" >&2

fi

RESULTS="$WORK/results.txt"
: >"$RESULTS"

# fio_job LABEL DIR JOBNAME RW BS SIZE [extra fio args] -> appends
# "LABEL JOBNAME VALUE" (MiB/s for 1M jobs, IOPS for 4k jobs).
fio_job() {
  local label=$1 dir=$2 job=$3 rw=$4 bs=$5 size=$6
  shift 6
  local out="$WORK/fio-$label-$job.json"
  log "fio $job on $label ($dir)"
  fio --name="$job" --directory="$dir" --filename="bench.$rw.dat" \
    --rw="$rw" --bs="$bs" --size="$size" --ioengine=psync --numjobs=1 \
    --output-format=json --output="$out" "$@" >&2 ||
    die "fio $job on $label failed (see $out)"
  "$PY" - "$out" "$label" "$job" "$rw" >>"$RESULTS" <<'EOF'
import json, sys
path, label, job, rw = sys.argv[1:]
j = json.load(open(path))["jobs"][0]
side = j["read"] if "read" in rw else j["write"]
if job.startswith("seq"):
    value = side["bw_bytes"] / (1 << 20)
else:
    value = side["iops"]
print(label, job, "%.1f" % value)
EOF
}

bench_dir() {
  local label=$1 dir=$2
  fio_job "$label" "$dir" seqwrite write 1M "$SEQ_SIZE" --end_fsync=1
  fio_job "$label" "$dir" seqread read 1M "$SEQ_SIZE"
  rm -f "$dir/bench.write.dat"
  # Lay out the random file first so randread reads data, not holes.
  fio_job "$label" "$dir" randwrite randwrite 4k "$RAND_SIZE" \
    --time_based --runtime="$RAND_RUNTIME" --randrepeat=1
  mv "$dir/bench.randwrite.dat" "$dir/bench.randread.dat"
  fio_job "$label" "$dir" randread randread 4k "$RAND_SIZE" \
    --time_based --runtime="$RAND_RUNTIME" --randrepeat=1
  rm -f "$dir/bench.randread.dat"
  log "mdbench ($MD_FILES files) on $label"
  local md
  md="$("$BIN/stripefs-mdbench" --dir "$dir" --files "$MD_FILES" --json)" ||
    die "stripefs-mdbench on $label failed"
  "$PY" -c '
import json, sys
d = json.loads(sys.argv[2])
for k in ("create", "stat", "remove"):
    print(sys.argv[1], k, "%.1f" % d[k])' "$label" "$md" >>"$RESULTS"
}

if [[ "${BENCH_LOCK_ONLY:-}" != 1 ]]; then
  [[ "${BENCH_LOCAL_ONLY:-}" == 1 ]] || bench_dir stripefs "$SFS_DIR"
  bench_dir local "$LOCAL"
fi

# Lock service throughput: "dlm enqueue+cancel: N ops in S s = R ops/s ...".
log "dlm_bench ($DLM_OPS enqueue+cancel pairs)"
DLM_OUT="$("$BIN/dlm_bench" --ops "$DLM_OPS")" || die "dlm_bench failed"
echo "$DLM_OUT" >&2
"$PY" -c '
import re, sys
for line in sys.argv[1].splitlines():
    m = re.match(r"dlm (.*?): .* = ([0-9.]+) ops/s .*\(\d+ threads, (\d+) failed\)",
                 line)
    if not m:
        continue
    if int(m.group(3)):
        sys.exit("dlm_bench: %s" % line)
    key = {"enqueue+cancel": "dlm_enqueue_cancel",
           "cached lock reuse": "dlm_cached_reuse"}.get(m.group(1))
    if key:
        print("stripefs", key, m.group(2))' "$DLM_OUT" >>"$RESULTS" ||
  die "dlm_bench reported failures"

# md_create SUFFIX DIR: mdbench rates in DIR -> "stripefs create_SUFFIX R",
# and the same for stat and remove.
md_create() {
  local label=$1 dir=$2 md
  mkdir -p "$dir"
  log "mdbench create ($LOCK_FILES files) on $label"
  md="$("$BIN/stripefs-mdbench" --dir "$dir" --files "$LOCK_FILES" --json)" ||
    die "stripefs-mdbench on $label failed"
  "$PY" -c '
import json, sys
d = json.loads(sys.argv[2])
for k in ("create", "stat", "remove"):
    print("stripefs", k + "_" + sys.argv[1], "%.1f" % d[k])' \
    "$label" "$md" >>"$RESULTS"
}

if [[ "${BENCH_LOCAL_ONLY:-}" != 1 ]]; then
  md_create dlm "$MNT/lockcost"
  rm -rf "$MNT/lockcost"
  # The same on a second mount with adaptive metadata caching turned off
  # (every lookup in a directory being changed takes the directory's lock).
  NOADAPT_MNT="$WORK/mnt-noadapt"
  mkdir -p "$NOADAPT_MNT"
  MDS_ADDR="$("$PY" -c '
import json, sys
c = json.load(open(sys.argv[1]))
print([s["address"] for s in c["servers"] if s.get("role") == "mds"][0])' \
    "$HOME_DIR/cluster.json")" || die "no MDS address in cluster.json"
  "$BIN/stripefs-mount" --mds "$MDS_ADDR" -o no_md_adaptive "$NOADAPT_MNT" >&2 ||
    die "mount with -o no_md_adaptive failed"
  md_create dlm_noadaptive "$NOADAPT_MNT/lockcost"
  rm -rf "$NOADAPT_MNT/lockcost"
  fusermount3 -u "$NOADAPT_MNT" || fusermount3 -u -z "$NOADAPT_MNT" || true
  log "starting a second cluster without the DLM in $NODLM_HOME"
  mkdir -p "$NODLM_MNT"
  "$BIN/stripefs" cluster up --home "$NODLM_HOME" --oss "$OSS" --no-dlm \
    --mount "$NODLM_MNT" --bin-dir "$BIN" >&2
  mountpoint -q "$NODLM_MNT" || die "$NODLM_MNT is not mounted"
  md_create nodlm "$NODLM_MNT/lockcost"
  "$BIN/stripefs" cluster down --home "$NODLM_HOME" >&2
fi

# --- N-to-1 shared file (data extent locks): two mounts of the cluster
# write disjoint halves of one file at once, 64 KiB pwrites, then fsync;
# MiB/s overall. BENCH_N1_MIB (default 128): file size.
# Appends "stripefs n1_shared R"; printed after the table.
if [[ "${BENCH_LOCAL_ONLY:-}" != 1 ]]; then
  N1_MNT2="$WORK/mnt2"
  mkdir -p "$N1_MNT2"
  "$BIN/stripefs" mount --home "$HOME_DIR" "$N1_MNT2" >&2 ||
    die "second mount for the N-to-1 line failed"
  log "N-to-1: two mounts write disjoint halves of one ${BENCH_N1_MIB:-128} MiB file"
  N1_OK=1
  "$PY" - "$SFS_DIR/n1.dat" "$N1_MNT2/bench/n1.dat" "${BENCH_N1_MIB:-128}" \
    >>"$RESULTS" <<'PYN1' || N1_OK=0
import os, sys, time
a, b, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
half, bs = (mib << 20) // 2, 64 << 10
open(a, "wb").close()
buf = os.urandom(bs)
start = time.monotonic()
pids = []
for path, base in ((a, 0), (b, half)):
    pid = os.fork()
    if pid == 0:
        fd = os.open(path, os.O_WRONLY)
        for off in range(base, base + half, bs):
            os.pwrite(fd, buf, off)
        os.fsync(fd)
        os.close(fd)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit("N-to-1 writer failed")
secs = time.monotonic() - start
if os.stat(a).st_size != 2 * half:
    sys.exit("N-to-1 file has the wrong size")
os.unlink(a)
print("stripefs n1_shared %.1f" % (2 * half / (1 << 20) / secs))
PYN1
  "$BIN/stripefs" umount --home "$HOME_DIR" "$N1_MNT2" >&2 || true
  [[ $N1_OK == 1 ]] || die "N-to-1 bench failed"
fi
# --- end N-to-1

LOCAL_FS="$(df --output=fstype "$LOCAL" 2>/dev/null | tail -n 1 || echo "?")"
"$PY" - "$RESULTS" "$LOCAL_FS" "${BENCH_JSON:-}" <<EOF
import json, sys
res = {}
for line in open(sys.argv[1]):
    label, job, value = line.split()
    res.setdefault(job, {})[label] = float(value)
rows = [
    ("seqwrite", "seq write 1 MiB, MiB/s", 462, 497, 299),
    ("seqread", "seq read 1 MiB, MiB/s", 3751, 961, 493),
    ("randwrite", "rand write 4 KiB, IOPS", 109807, 140105, 14149),
    ("randread", "rand read 4 KiB, IOPS", 33127, 47719, 6254),
    ("create", "create, files/s", 55294, 7191, 4187),
    ("stat", "stat, files/s", 407669, 58685, 10730),
    ("remove", "remove, files/s", 119632, 20176, 5170),
]
local_hdr = "local (%s)" % sys.argv[2]
hdr = ("job", "stripefs", local_hdr, "ext4*", "FUSE pt*", "MooseFS*",
       "vs MooseFS")
fmt = "%-24s %10s %12s %9s %9s %9s %10s"
print()
print("stripefs benchmark: fio psync, 1 file, numjobs=1; seq $SEQ_SIZE, "
      "rand $RAND_SIZE x ${RAND_RUNTIME}s; metadata $MD_FILES files")
print("stripefs: $OSS OSS, directory layout stripe_count=$STRIPE_COUNT "
      "stripe_size=$STRIPE_SIZE")
print(fmt % hdr)
print("-" * 89)
def n(v):
    return "-" if v is None else ("%.0f" % v if v >= 100 else "%.1f" % v)
for key, name, ext4, fpt, mfs in rows:
    s = res.get(key, {}).get("stripefs")
    l = res.get(key, {}).get("local")
    ratio = "-" if s is None else "%.2fx" % (s / mfs)
    print(fmt % (name, n(s), n(l), n(ext4), n(fpt), n(mfs), ratio))
print("* reference numbers from DESIGN.md (same jobs, one machine, 2 cores)")
def one(key):
    return res.get(key, {}).get("stripefs")
enq, reuse = one("dlm_enqueue_cancel"), one("dlm_cached_reuse")
print()
print("lock service (dlm_bench, $DLM_OPS ops, gRPC on 127.0.0.1): "
      "enqueue+cancel %s ops/s, cached lock reuse %s ops/s" % (n(enq), n(reuse)))
for op in ("create", "stat", "remove"):
    with_dlm, without = one(op + "_dlm"), one(op + "_nodlm")
    noad = one(op + "_dlm_noadaptive")
    if with_dlm is not None and without is not None:
        print("file %s ($LOCK_FILES files, default layout): with DLM %s files/s "
              "(adaptive caching off: %s), without DLM (--no-dlm) %s files/s, "
              "locking costs %.1f%%"
              % (op, n(with_dlm), n(noad), n(without),
                 100.0 * (1 - with_dlm / without)))
if sys.argv[3]:
    with open(sys.argv[3], "w") as f:
        json.dump(res, f, indent=1)
EOF

# --- N-to-1 shared file line (measured in the N-to-1 block above).
if [[ "${BENCH_LOCAL_ONLY:-}" != 1 ]]; then
  awk '$2 == "n1_shared" { printf "N-to-1 shared file (2 mounts, disjoint halves, 64 KiB writes): %s MiB/s\n", $3 }' "$RESULTS"
fi

# --- Failover pause line (issue 4): a rolling N -> N+1 -> N upgrade under
# fio; longest I/O stall per server restart against DESIGN.md's 1 s target.
# Needs release N built (tests/run.sh builds build-n); BENCH_FAILOVER=0 skips.
if [[ "${BENCH_LOCAL_ONLY:-}" != 1 && "${BENCH_FAILOVER:-1}" != 0 ]]; then
  if [[ -x "${STRIPEFS_BUILD_N:-$REPO/build-n}/bin/stripefs-mds" ]]; then
    STRIPEFS_BUILD="$BUILD" "$REPO/tests/bench/failover_pause.sh" || rc_failover=$?
    [[ -z "${rc_failover:-}" ]] || log "failover pause run failed (exit $rc_failover)"
  else
    echo "failover pause: skipped (release N not built in ${STRIPEFS_BUILD_N:-$REPO/build-n}; see tests/run.sh)"
  fi
fi
