#!/usr/bin/env bash
# stripefs benchmark: the same jobs, in one run, on a stripefs mount, on a live
# MooseFS, on a libfuse passthrough (-o writeback) and on a local directory,
# printed as one table with the stripefs/MooseFS and stripefs/passthrough
# ratio per row, the worst stripefs/MooseFS ratio last, then the goal line.
#
# Jobs (BENCH_JOBS picks a subset):
#   fio     psync, 1M sequential write (end_fsync) and read, 4k random write
#           and read, each with numjobs=1 and numjobs=4 (the size is split
#           over the jobs, one file per job); reads after drop_caches
#   ior     IOR, 2 MPI processes, 1 MiB transfers: file per process and one
#           shared file (N-to-1; on stripefs striped over all OSTs), write
#           (fsync) then read after drop_caches
#   mdtest  mdtest -F -n N with 2 processes: create, stat, read, remove
#   mdbench stripefs-mdbench: create, stat, remove of BENCH_MD_FILES files
#   bigdir  BENCH_BIGDIR_FILES (200000) empty files created in one directory
#           by 2 processes (open O_CREAT|O_EXCL + close): the create rate of
#           the first and of the last 10% of the files and their ratio (goal
#           >= 0.8), and the metadata server's RSS before and after (the
#           stripefs MDS; MooseFS's master). Part of the full run; with
#           BENCH_QUICK only when BENCH_JOBS names it
# IOR and mdtest are built by tests/bench/build_ior.sh (from the fetched
# github:hpc/ior); when they are absent the script says so and skips them.
#
# stripefs: its own cluster (1 MDS + 4 OSS) started with the `stripefs` CLI in
# a temporary home. MooseFS and the passthrough: tests/bench/peers.sh (the
# MooseFS master in a network namespace of its own, on a veth pair; a peer
# that cannot start is skipped with the reason). Everything is torn down by a
# trap, also on failure or Ctrl-C.
#
# Environment:
#   STRIPEFS_BUILD      build dir with bin/ (default: build REPO/build now)
#   BENCH_QUICK=1       small sizes, no lock, N-to-1 or failover lines (< 3 min)
#   BENCH_PEERS         subset of "stripefs moosefs passthrough local"
#   BENCH_JOBS          subset of "fio ior mdtest mdbench bigdir"
#   BENCH_BIGDIR_FILES  files of the bigdir job (200000)
#   BENCH_NUMJOBS       fio numjobs values ("1 4")
#   BENCH_TMP           where the temp home, mounts and local dir go (/var/tmp)
#   BENCH_LOCAL_DIR     local directory to compare with (default: under BENCH_TMP)
#   BENCH_OSS           number of OSS (4)
#   BENCH_STRIPE_COUNT  stripe count of the benchmark directory (4)
#   BENCH_STRIPE_SIZE   stripe size (1M)
#   BENCH_SEQ_SIZE      total size of the sequential jobs (1G; quick 128M)
#   BENCH_RAND_SIZE     total size of the random jobs (256M; quick 32M)
#   BENCH_RAND_RUNTIME  seconds per random job (15; quick 3)
#   BENCH_IOR_BLOCK     IOR data per process (512M; quick 64M)
#   BENCH_MDTEST_FILES  mdtest -n, files per process (2000; quick 200)
#   BENCH_MD_FILES      files for stripefs-mdbench (2000; quick 300)
#   BENCH_IOR_BIN       dir with ior and mdtest (/var/tmp/stripefs-ior/src/src)
#   BENCH_BUILD_IOR=1   run tests/bench/build_ior.sh first when they are absent
#   BENCH_MFS_NET       first three octets of MooseFS's /30 (10.231.0)
#   BENCH_JSON          also write the results as JSON ({job: {peer: value}})
#   BENCH_LOCAL_ONLY=1  skip the cluster (checks the script and the local fs)
#   BENCH_LOCKS=0       skip the lock lines (default 1, quick 0)
#   BENCH_DLM_OPS       enqueue+cancel pairs for dlm_bench (20000)
#   BENCH_LOCK_FILES    files for the create-cost comparison (MD_FILES)
#   BENCH_LOCK_ONLY=1   only the lock lines: dlm_bench and the create, stat
#                       and remove rates on a mount with the DLM (and on one
#                       with -o no_md_adaptive) versus a `cluster up --no-dlm` one
#   BENCH_N1=0          skip the N-to-1 line (default 1, quick 0)
#   BENCH_FAILOVER=0    skip the failover pause line (default 1, quick 0)
#
# Lock lines: `dlm_bench` (dlm/) measures lock enqueue/cancel throughput
# through real gRPC; the create cost of locking is stripefs-mdbench's create
# rate in a default-layout directory on this cluster's mount (with the DLM)
# versus on a second cluster started with `stripefs cluster up --no-dlm`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/tests/bench"
PY="$(command -v /usr/bin/python3 || command -v python3)"
TABLE=("$PY" "$HERE/table.py")
if [[ "${BENCH_QUICK:-}" == 1 ]]; then
  q() { echo "$1"; }
else
  q() { echo "$2"; }
fi
OSS="${BENCH_OSS:-4}"
STRIPE_COUNT="${BENCH_STRIPE_COUNT:-4}"
STRIPE_SIZE="${BENCH_STRIPE_SIZE:-1M}"
SEQ_SIZE="${BENCH_SEQ_SIZE:-$(q 128M 1G)}"
RAND_SIZE="${BENCH_RAND_SIZE:-$(q 32M 256M)}"
RAND_RUNTIME="${BENCH_RAND_RUNTIME:-$(q 3 15)}"
IOR_BLOCK="${BENCH_IOR_BLOCK:-$(q 64M 512M)}"
MDTEST_FILES="${BENCH_MDTEST_FILES:-$(q 200 2000)}"
MD_FILES="${BENCH_MD_FILES:-$(q 300 2000)}"
LOCKS="${BENCH_LOCKS:-$(q 0 1)}"
N1="${BENCH_N1:-$(q 0 1)}"
FAILOVER="${BENCH_FAILOVER:-$(q 0 1)}"
JOBS=" ${BENCH_JOBS:-$(q "fio ior mdtest mdbench" "fio ior mdtest mdbench bigdir")} "
export BIGDIR_FILES="${BENCH_BIGDIR_FILES:-200000}"
NUMJOBS="${BENCH_NUMJOBS:-1 4}"
PEERS="${BENCH_PEERS:-stripefs moosefs passthrough local}"
if [[ "${BENCH_LOCK_ONLY:-}" == 1 ]]; then PEERS=stripefs; JOBS=" "; LOCKS=1; fi
[[ "${BENCH_LOCAL_ONLY:-}" == 1 ]] && PEERS=local
PEERS=" $PEERS "
export DLM_OPS="${BENCH_DLM_OPS:-20000}"
export LOCK_FILES="${BENCH_LOCK_FILES:-$MD_FILES}"

log() { echo "bench: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
peer() { [[ "$PEERS" == *" $1 "* ]]; }
job() { [[ "$JOBS" == *" $1 "* ]]; }
# mib SIZE: a K/M/G size in MiB.
mib() {
  local v=${1^^}
  case $v in
    *G) echo $((${v%G} * 1024)) ;;
    *M) echo "${v%M}" ;;
    *K) echo $((${v%K} / 1024)) ;;
    *) echo $((v >> 20)) ;;
  esac
}

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
LOCAL="${BENCH_LOCAL_DIR:-$WORK/local}"
RESULTS="$WORK/results.txt"
NOTES="$WORK/notes.txt"
mkdir -p "$MNT" "$LOCAL"
: >"$RESULTS"
: >"$NOTES"
# shellcheck source=tests/bench/peers.sh
source "$HERE/peers.sh"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "tearing down"
  peers_down
  for h in "$HOME_DIR" "$NODLM_HOME"; do
    if [[ -x "$BIN/stripefs" && -d "$h" ]]; then
      "$BIN/stripefs" cluster down --home "$h" >/dev/null 2>&1 || true
    fi
  done
  for m in "$MNT" "$NODLM_MNT" "$WORK/mnt-noadapt" "$WORK/mnt2"; do
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
    rm -rf "$HOME_DIR" "$MNT" "$NODLM_HOME" "$NODLM_MNT" "$LOCAL"/bench.* \
      "$LOCAL"/ior "$LOCAL"/mdtest
    rm -rf "$WORK/mfs" "$WORK/passthrough" "$WORK"/*.txt "$WORK"/*.json "$WORK"/*.out
    rmdir "$WORK" 2>/dev/null || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note() { echo "$*" >>"$NOTES"; log "$*"; }

# --- the peers ---------------------------------------------------------------
declare -A DIR=()
if peer stripefs && [[ "${BENCH_LOCAL_ONLY:-}" != 1 ]]; then
  log "starting a cluster: 1 MDS + $OSS OSS in $HOME_DIR, mounted at $MNT"
  "$BIN/stripefs" cluster up --home "$HOME_DIR" --oss "$OSS" --mount "$MNT" \
    --bin-dir "$BIN" >&2
  mountpoint -q "$MNT" || die "$MNT is not mounted after cluster up"
  SFS_DIR="$MNT/bench"
  mkdir -p "$SFS_DIR/ior"
  "$BIN/stripefs" setstripe -c "$STRIPE_COUNT" -S "$STRIPE_SIZE" "$SFS_DIR" >&2
  # IOR's files (the shared one above all) striped over every OST.
  "$BIN/stripefs" setstripe -c -1 -S "$STRIPE_SIZE" "$SFS_DIR/ior" >&2
  DIR[stripefs]="$SFS_DIR"
fi
if peer moosefs && [[ "$JOBS" != " " ]]; then
  if mfs_up; then
    mkdir -p "$MFS_MNT/bench"
    DIR[moosefs]="$MFS_MNT/bench"
  else
    note "MooseFS: skipped: $PEER_WHY"
    mfs_down
  fi
fi
if peer passthrough && [[ "$JOBS" != " " ]]; then
  if pt_up; then
    mkdir -p "$PT_MNT/bench"
    DIR[passthrough]="$PT_MNT/bench"
  else
    note "passthrough: skipped: $PEER_WHY"
    pt_down
  fi
fi
peer local && DIR[local]="$LOCAL"

# --- IOR and mdtest ------------------------------------------------------------
IOR_BIN="${BENCH_IOR_BIN:-/var/tmp/stripefs-ior/src/src}"
ior_ready() { [[ -x "$IOR_BIN/ior" && -x "$IOR_BIN/mdtest" ]] && command -v mpirun >/dev/null; }
if { job ior || job mdtest; } && ! ior_ready; then
  if [[ "${BENCH_BUILD_IOR:-}" == 1 ]]; then
    IOR_BIN="$("$HERE/build_ior.sh" | tail -n 1)" || IOR_BIN=/nonexistent
  fi
  if ! ior_ready; then
    note "IOR/mdtest: not built in $IOR_BIN (tests/bench/build_ior.sh, after fetching github:hpc/ior; or BENCH_BUILD_IOR=1): their rows are skipped"
    JOBS="${JOBS/ ior / }"
    JOBS="${JOBS/ mdtest / }"
  fi
fi
# 2 local processes; MPI's own traffic on loopback and shared memory only.
# shellcheck disable=SC2054  # "self,vader" is one argument
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to none
  --mca btl self,vader --mca btl_vader_single_copy_mechanism none
  --mca oob_tcp_if_include lo)

DROP_WARNED=0
drop_caches() {
  sync
  if ! echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
    [[ $DROP_WARNED == 1 ]] || note "drop_caches not possible (not root?): reads may be warm"
    DROP_WARNED=1
  fi
}

# fio_job LABEL DIR JOB RW BS TOTAL NUMJOBS FILES [fio args]: appends
# "LABEL JOB VALUE" (MiB/s for seq jobs, IOPS for random ones); the files are
# DIR/bench.FILES.<job number>, TOTAL split over them.
fio_job() {
  local label=$1 dir=$2 job=$3 rw=$4 bs=$5 total=$6 nj=$7 files=$8
  shift 8
  local out="$WORK/fio-$label-$job.json" size
  size="$(($(mib "$total") / nj))M"
  log "fio $job on $label ($dir, $nj x $size)"
  fio --name="$job" --directory="$dir" --filename_format="bench.$files.\$jobnum" \
    --rw="$rw" --bs="$bs" --size="$size" --ioengine=psync --numjobs="$nj" \
    --group_reporting --output-format=json --output="$out" "$@" >&2 ||
    die "fio $job on $label failed (see $out)"
  "${TABLE[@]}" fio "$out" "$label" "$job" "$rw" >>"$RESULTS" ||
    die "no result in $out"
}

bench_fio() {
  local label=$1 dir=$2 nj sfx
  for nj in $NUMJOBS; do
    sfx=""
    [[ $nj == 1 ]] || sfx="_j$nj"
    fio_job "$label" "$dir" "seqwrite$sfx" write 1M "$SEQ_SIZE" "$nj" seq --end_fsync=1
    drop_caches
    fio_job "$label" "$dir" "seqread$sfx" read 1M "$SEQ_SIZE" "$nj" seq
    rm -f "$dir"/bench.seq.*
    # The random write lays out the file that the random read then reads.
    fio_job "$label" "$dir" "randwrite$sfx" randwrite 4k "$RAND_SIZE" "$nj" rand \
      --time_based --runtime="$RAND_RUNTIME" --randrepeat=1
    drop_caches
    fio_job "$label" "$dir" "randread$sfx" randread 4k "$RAND_SIZE" "$nj" rand \
      --time_based --runtime="$RAND_RUNTIME" --randrepeat=1
    rm -f "$dir"/bench.rand.*
  done
}

# ior_run LABEL DIR MODE: write (fsync at close), drop_caches, read back.
ior_run() {
  local label=$1 dir=$2 mode=$3 f=() out
  [[ $mode == fpp ]] && f=(-F)
  mkdir -p "$dir/ior"
  for phase in write read; do
    out="$WORK/ior-$label-$mode-$phase.out"
    log "IOR $mode $phase on $label"
    if [[ $phase == write ]]; then
      "${MPIRUN[@]}" "$IOR_BIN/ior" -a POSIX -w -e -k -t 1m -b "$IOR_BLOCK" -i 1 \
        -o "$dir/ior/ior.dat" "${f[@]}" >"$out" 2>&1 || die "IOR on $label failed (see $out)"
      drop_caches
    else
      "${MPIRUN[@]}" "$IOR_BIN/ior" -a POSIX -r -E -t 1m -b "$IOR_BLOCK" -i 1 \
        -o "$dir/ior/ior.dat" "${f[@]}" >"$out" 2>&1 || die "IOR on $label failed (see $out)"
    fi
    "${TABLE[@]}" ior "$out" "$label" "ior_${mode}_$phase" >>"$RESULTS" ||
      die "no IOR result in $out"
  done
  rm -f "$dir"/ior/ior.dat*
}

bench_mdtest() {
  local label=$1 dir=$2 out="$WORK/mdtest-$1.out"
  log "mdtest -F -n $MDTEST_FILES (2 procs) on $label"
  mkdir -p "$dir/mdtest"
  "${MPIRUN[@]}" "$IOR_BIN/mdtest" -F -n "$MDTEST_FILES" -d "$dir/mdtest" >"$out" 2>&1 ||
    die "mdtest on $label failed (see $out)"
  "${TABLE[@]}" mdtest "$out" "$label" >>"$RESULTS" || die "no mdtest result in $out"
  rm -rf "$dir/mdtest"
}

bench_mdbench() {
  local label=$1 dir=$2 md
  log "mdbench ($MD_FILES files) on $label"
  md="$("$BIN/stripefs-mdbench" --dir "$dir" --files "$MD_FILES" --json)" ||
    die "stripefs-mdbench on $label failed"
  "${TABLE[@]}" mdbench "$md" "$label" >>"$RESULTS"
}

# md_pid LABEL: the pid of the peer's metadata server (empty if unknown).
md_pid() {
  case $1 in
    stripefs)
      "$BIN/stripefs" cluster status --home "$HOME_DIR" --json |
        "$PY" -c 'import json,sys; print(next(s["pid"] for s in json.load(sys.stdin) if s["role"] == "mds"))' ;;
    moosefs) echo "${MFS_PIDS[0]:-}" ;;
  esac
}

# bench_bigdir LABEL DIR: BIGDIR_FILES files in DIR/bigdir by 2 processes;
# appends "LABEL bigdir_first R", "bigdir_last R" (files/s), "bigdir_secs S"
# and, when the metadata server is known, "bigdir_rss_before/after MiB".
bench_bigdir() {
  local label=$1 dir=$2 pid t0
  [[ $label == stripefs || $label == moosefs ]] || return 0
  pid="$(md_pid "$label" || true)"
  log "bigdir: $BIGDIR_FILES files in one directory (2 procs) on $label"
  rm -rf "$dir/bigdir"
  mkdir -p "$dir/bigdir"
  t0=$SECONDS
  "$PY" "$HERE/bigdir.py" "$dir/bigdir" "$BIGDIR_FILES" "$label" "$pid" \
    >>"$RESULTS" || die "bigdir on $label failed"
  # Left in place: the peer is torn down at the end (a removal of this many
  # files would take as long as the creates).
  log "bigdir on $label: $((SECONDS - t0)) s"
}

for label in stripefs moosefs passthrough local; do
  [[ -n "${DIR[$label]:-}" ]] || continue
  d="${DIR[$label]}"
  if job fio; then bench_fio "$label" "$d"; fi
  if job ior; then ior_run "$label" "$d" fpp; ior_run "$label" "$d" shared; fi
  if job mdtest; then bench_mdtest "$label" "$d"; fi
  if job mdbench; then bench_mdbench "$label" "$d"; fi
  if job bigdir; then bench_bigdir "$label" "$d"; fi
done
peers_down

# --- lock lines ----------------------------------------------------------------
# md_create SUFFIX DIR: mdbench rates in DIR -> "stripefs create_SUFFIX R",
# and the same for stat and remove.
md_create() {
  local label=$1 dir=$2 md
  mkdir -p "$dir"
  log "mdbench create ($LOCK_FILES files) on $label"
  md="$("$BIN/stripefs-mdbench" --dir "$dir" --files "$LOCK_FILES" --json)" ||
    die "stripefs-mdbench on $label failed"
  "${TABLE[@]}" mdbench "$md" stripefs "$label" >>"$RESULTS"
}

if [[ $LOCKS == 1 ]]; then
  # Lock service throughput: "dlm enqueue+cancel: N ops in S s = R ops/s ...".
  log "dlm_bench ($DLM_OPS enqueue+cancel pairs)"
  DLM_OUT="$("$BIN/dlm_bench" --ops "$DLM_OPS")" || die "dlm_bench failed"
  echo "$DLM_OUT" >&2
  "${TABLE[@]}" dlm "$DLM_OUT" >>"$RESULTS" || die "dlm_bench reported failures"
fi
if [[ $LOCKS == 1 && -n "${DIR[stripefs]:-}" ]]; then
  md_create dlm "$MNT/lockcost"
  rm -rf "$MNT/lockcost"
  # The same on a second mount with adaptive metadata caching turned off
  # (every lookup in a directory being changed takes the directory's lock).
  NOADAPT_MNT="$WORK/mnt-noadapt"
  mkdir -p "$NOADAPT_MNT"
  MDS_ADDR="$("${TABLE[@]}" mds_addr "$HOME_DIR/cluster.json")" ||
    die "no MDS address in cluster.json"
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
if [[ $N1 == 1 && -n "${DIR[stripefs]:-}" ]]; then
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

# --- the table ---------------------------------------------------------------------
LOCAL_FS="$(df --output=fstype "$LOCAL" 2>/dev/null | tail -n 1 || echo "?")"
BIGDIR_LINE=""
if job bigdir; then BIGDIR_LINE="  bigdir: $BIGDIR_FILES files in one directory, 2 procs"; fi
"${TABLE[@]}" print "$RESULTS" "$NOTES" "$LOCAL_FS" "${BENCH_JSON:-}" \
  "stripefs benchmark: fio psync, numjobs $NUMJOBS (one file per job, the size split over them): seq $SEQ_SIZE, rand $RAND_SIZE x ${RAND_RUNTIME}s" \
  "  IOR 2 procs x $IOR_BLOCK, 1 MiB transfers; mdtest -F -n $MDTEST_FILES x 2 procs; mdbench $MD_FILES files" \
  "$BIGDIR_LINE" \
  "stripefs: $OSS OSS, stripe_count=$STRIPE_COUNT stripe_size=$STRIPE_SIZE (IOR: all OSTs); MooseFS: 2 chunkservers, goal 1"

# --- Failover pause line (issue 4): a rolling N -> N+1 -> N upgrade under
# fio; longest I/O stall per server restart against DESIGN.md's 1 s target.
# Needs release N built (tests/run.sh builds build-n); BENCH_FAILOVER=0 skips.
if [[ "${BENCH_LOCAL_ONLY:-}" != 1 && $FAILOVER != 0 ]]; then
  if [[ -x "${STRIPEFS_BUILD_N:-$REPO/build-n}/bin/stripefs-mds" ]]; then
    # BENCH_JSON is ours (the table): failover_pause.sh would write its own
    # JSON, and its test log beside it, over that path.
    BENCH_JSON="" STRIPEFS_BUILD="$BUILD" "$REPO/tests/bench/failover_pause.sh" \
      || rc_failover=$?
    [[ -z "${rc_failover:-}" ]] || log "failover pause run failed (exit $rc_failover)"
  else
    echo "failover pause: skipped (release N not built in ${STRIPEFS_BUILD_N:-$REPO/build-n}; see tests/run.sh)"
  fi
fi
