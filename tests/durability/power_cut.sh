#!/usr/bin/env bash
# The real power cut (issue 12): a stripefs cluster whose home -- every
# server's data dir, logs, pid files -- is on LazyFS, a FUSE filesystem that
# keeps unsynced writes in its own cache and drops them on
# `lazyfs::clear-cache`. Two mounts (outside LazyFS) run a writer each:
# create, write 64 KiB, fsync, close, fsync the directory, then log the file as
# acknowledged (the log is outside LazyFS); renames and unlinks of acknowledged
# files followed by fsync of the directory. After LOAD_SECONDS every server and
# mount daemon of the cluster is killed -9, the stale mounts are lazily
# unmounted, LazyFS drops every unsynced write, the cluster is started again
# on the same home and mounted again, and every acknowledged state is checked
# byte for byte (tests/durability/powercut_load.py verify). CUTS times.
#
#   tests/durability/power_cut.sh [--expect-loss]
#
# Environment: CUTS (10), LOAD_SECONDS (5, plus up to 1 s of jitter),
# TIME_BUDGET (900 s for the whole run), OSS (2), STRIPEFS_BUILD (the repo's
# build/; binaries in $STRIPEFS_BUILD/bin), LAZYFS_BIN (default
# /var/tmp/stripefs-lazyfs/src/lazyfs/build/lazyfs, as built by
# tests/durability/build_lazyfs.sh), KEEP=1 keeps the run's directory,
# CUT_KIND=kill (default power) is the control: kill -9 with LazyFS writing
# its cached writes through instead of dropping them; nothing may be lost.
# STRIPEFS_TEST_NO_SYNC=1 is passed on to the servers (they skip their syncs):
# such a run must report loss; --expect-loss inverts the exit status (0 only if
# at least one acknowledged file or byte was lost), so
#   STRIPEFS_TEST_NO_SYNC=1 tests/durability/power_cut.sh --expect-loss
# proves the check can fail.
#
# One cluster for the whole run (restarted after every cut), each cut's writers
# in new directories. Cumulative: while nothing is lost, later cuts check the
# files of earlier cuts too; after a cut that lost something those are no
# longer checked, so each row counts its own losses. (New files are still
# checked byte for byte, so an object id handed out again after a cut shows as
# wrong bytes.) Only a cluster that does not come back is wiped and formatted
# again.
#
# Exit: 0 all acknowledged state survived every cut; 1 something acknowledged
# was lost or wrong (or the cluster did not come back); 2 setup failure or
# fewer than CUTS cuts in TIME_BUDGET; 77 skipped (LazyFS not built, no
# /dev/fuse).
set -uo pipefail

EXPECT_LOSS=0
for arg in "$@"; do
  case $arg in
    --expect-loss) EXPECT_LOSS=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "power_cut: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STRIPEFS_BUILD=${STRIPEFS_BUILD:-$REPO/build}
BIN=$(cd "$STRIPEFS_BUILD/bin" 2>/dev/null && pwd) || BIN=$STRIPEFS_BUILD/bin
LAZYFS_BIN=${LAZYFS_BIN:-${LAZYFS_WORK:-/var/tmp/stripefs-lazyfs}/src/lazyfs/build/lazyfs}
CUTS=${CUTS:-10}
LOAD_SECONDS=${LOAD_SECONDS:-5}
TIME_BUDGET=${TIME_BUDGET:-900}
OSS=${OSS:-2}
CUT_KIND=${CUT_KIND:-power}
case $CUT_KIND in power|kill) ;; *) echo "power_cut: CUT_KIND is power or kill" >&2; exit 2 ;; esac
LOAD_PY=$HERE/powercut_load.py
PY=${PYTHON:-python3}

if [ ! -x "$LAZYFS_BIN" ]; then
  echo "power_cut: SKIPPED: LazyFS is not built (no executable $LAZYFS_BIN);"
  echo "power_cut: build it with tests/durability/build_lazyfs.sh (or set LAZYFS_BIN)."
  exit 77
fi
if [ ! -c /dev/fuse ]; then
  echo "power_cut: SKIPPED: no /dev/fuse"
  exit 77
fi
for b in stripefs stripefs-mds stripefs-oss stripefs-dlm stripefs-mount; do
  if [ ! -x "$BIN/$b" ]; then
    echo "power_cut: $BIN/$b missing: build stripefs first (STRIPEFS_BUILD=$STRIPEFS_BUILD)" >&2
    exit 2
  fi
done
CLI=$BIN/stripefs

WORK=$(mktemp -d /var/tmp/stripefs-powercut.XXXXXX)
BACKING=$WORK/backing     # LazyFS's backing directory (the "disk")
LAZY=$WORK/lazy           # LazyFS mount = the cluster home
MNT_A=$WORK/mnt-a         # the two stripefs mounts, outside LazyFS
MNT_B=$WORK/mnt-b
STATE=$WORK/state         # acknowledged-state logs, copies of server logs, results
EMPTY=$WORK/empty
FIFO=$WORK/faults.fifo
FIFO_DONE=$WORK/faults-done.fifo
CFG=$WORK/lazyfs.toml
mkdir -p "$BACKING" "$LAZY" "$MNT_A" "$MNT_B" "$STATE" "$EMPTY"
# Tag every process of this run (servers and mount daemons inherit it).
export STRIPEFS_POWERCUT_TAG=$WORK

LAZYFS_PID=""
WRITER_PIDS=()
START=$(date +%s)
RESULT=2

log() { echo "power_cut: $*"; }
elapsed() { echo $(( $(date +%s) - START )); }
is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# Pids of this run's stripefs servers and mount daemons: the binary is one of
# $BIN's and its command line names this run's directory (servers: --data,
# mounts: the mountpoint) or it carries the run's tag.
cluster_pids() {
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    exe=${exe% (deleted)}
    case $exe in
      "$BIN"/stripefs-mds|"$BIN"/stripefs-oss|"$BIN"/stripefs-dlm|"$BIN"/stripefs-mount) ;;
      *) continue ;;
    esac
    if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF "$WORK/" ||
       tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "STRIPEFS_POWERCUT_TAG=$WORK"; then
      echo "${p#/proc/}"
    fi
  done
}

wait_pids_gone() {  # wait_pids_gone SECONDS PID...
  local until=$(( $(date +%s) + $1 )); shift
  local p alive
  while :; do
    alive=0
    for p in "$@"; do
      # a zombie has no exe link any more: it is as good as gone
      if [ -e "/proc/$p" ] && readlink "/proc/$p/exe" >/dev/null 2>&1; then alive=1; fi
    done
    [ $alive -eq 0 ] && return 0
    [ "$(date +%s)" -ge "$until" ] && return 1
    sleep 0.1
  done
}

unmount_fuse() {  # lazily if busy; never blocks for long
  local m=$1
  is_mounted "$m" || return 0
  timeout 10 fusermount3 -u "$m" 2>/dev/null || timeout 10 fusermount3 -uz "$m" 2>/dev/null ||
    timeout 10 umount -l "$m" 2>/dev/null || true
}

kill_writers() {
  local p
  for p in "${WRITER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${WRITER_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  WRITER_PIDS=()
}

start_lazyfs() {
  [ -p "$FIFO" ] || mkfifo "$FIFO"
  [ -p "$FIFO_DONE" ] || mkfifo "$FIFO_DONE"
  cat >"$CFG" <<EOF
[faults]
fifo_path="$FIFO"
fifo_path_completed="$FIFO_DONE"
[cache]
apply_eviction=false
[cache.simple]
custom_size="2gb"
blocks_per_page=1
[filesystem]
log_all_operations=false
logfile="$STATE/lazyfs.log"
EOF
  # LazyFS prints a line per operation on stdout: dropped; its own log is
  # $STATE/lazyfs.log.
  "$LAZYFS_BIN" "$LAZY" --config-path "$CFG" -o allow_other -o modules=subdir \
    -o subdir="$BACKING" -f >/dev/null 2>>"$STATE/lazyfs.err" &
  LAZYFS_PID=$!
  for _ in $(seq 1 300); do
    is_mounted "$LAZY" && return 0
    kill -0 "$LAZYFS_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "LazyFS did not mount $LAZY:"; tail -5 "$STATE/lazyfs.err" "$STATE/lazyfs.log" 2>/dev/null
  return 1
}

stop_lazyfs() {
  unmount_fuse "$LAZY"
  if [ -n "$LAZYFS_PID" ]; then
    if ! wait_pids_gone 10 "$LAZYFS_PID"; then kill -9 "$LAZYFS_PID" 2>/dev/null; fi
    wait "$LAZYFS_PID" 2>/dev/null
    LAZYFS_PID=""
  fi
}

clear_cache() {  # drops every write LazyFS holds that was not fsynced
  local line=""
  # drain any stale completion line
  while read -r -t 0.01 -u 8 line; do :; done
  if ! timeout 10 bash -c 'echo "lazyfs::clear-cache" > "$1"' _ "$FIFO"; then
    log "could not write to the LazyFS fifo"; return 1
  fi
  if read -r -t 60 -u 8 line && [ "$line" = "finished::clear-cache" ]; then return 0; fi
  log "LazyFS did not confirm clear-cache (got '$line')"; return 1
}

# The control: CUT_KIND=kill writes every cached write through to the backing
# directory instead of dropping it (a kill -9 without power loss), which must
# never lose anything, with or without syncs.
checkpoint_cache() {
  local before after
  before=$(grep -c 'checkpoint is done' "$STATE/lazyfs.log" 2>/dev/null)
  if ! timeout 10 bash -c 'echo "lazyfs::cache-checkpoint" > "$1"' _ "$FIFO"; then
    log "could not write to the LazyFS fifo"; return 1
  fi
  for _ in $(seq 1 1200); do
    after=$(grep -c 'checkpoint is done' "$STATE/lazyfs.log" 2>/dev/null)
    [ "${after:-0}" -gt "${before:-0}" ] && return 0
    sleep 0.1
  done
  log "LazyFS did not finish its checkpoint"; return 1
}

why() {  # the CLI's last message and the log's last non-empty line, on one line
  local cli last
  cli=$(grep '^stripefs:' "$1" 2>/dev/null | tail -1)
  last=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -1 | sed 's/^[[:space:]]*//')
  [ "$cli" = "$last" ] && cli=""
  echo "${cli:+$cli / }$last" | cut -c1-400
}

cluster_up() {  # cluster_up LOGFILE
  timeout 120 "$CLI" cluster up --home "$LAZY" --oss "$OSS" --bin-dir "$BIN" >>"$1" 2>&1
}

mount_both() {  # mount_both LOGFILE
  local m
  for m in "$MNT_A" "$MNT_B"; do
    unmount_fuse "$m"
    timeout 60 "$CLI" mount --home "$LAZY" --bin-dir "$BIN" "$m" >>"$1" 2>&1 || return 1
  done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  kill_writers
  if [ -n "$LAZYFS_PID" ] && is_mounted "$LAZY" && [ -f "$LAZY/cluster.json" ]; then
    timeout 90 "$CLI" cluster down --home "$LAZY" >>"$STATE/cleanup.log" 2>&1
    mkdir -p "$STATE/final.server-logs"
    cp -r "$LAZY/log/." "$STATE/final.server-logs/" 2>/dev/null
  fi
  local pids
  pids=$(cluster_pids)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null; wait_pids_gone 10 $pids
  fi
  unmount_fuse "$MNT_A"
  unmount_fuse "$MNT_B"
  stop_lazyfs
  exec 8<&- 2>/dev/null
  rm -rf "$BACKING"
  rmdir "$EMPTY" "$LAZY" "$MNT_A" "$MNT_B" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ] || [ "$RESULT" -ne 0 ]; then
    log "logs kept in $WORK/state"
  else
    rm -rf "$WORK"
  fi
  [ "$rc" -ne 0 ] || rc=$RESULT
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Set up
# LazyFS opens the completion fifo write-only at start: hold it open (read
# side) for the whole run so that open does not block.
mkfifo "$FIFO" "$FIFO_DONE" || exit 2
exec 8<>"$FIFO_DONE"
start_lazyfs || exit 2

# Both mounts serve a create and a remove (bounded): after a restart the
# locks of the killed mounts hold new requests back until the lock
# service's recovery window and callback timeout have passed (about 25 s),
# and a load started before that would measure nothing.
wait_serving() {
  local m probe
  for m in "$MNT_A" "$MNT_B"; do
    probe="$m/.serving-probe-$$"
    timeout 90 sh -c 'mkdir "$1" && rmdir "$1"' _ "$probe" 2>/dev/null || return 1
  done
}

fresh_cluster() {  # fresh_cluster LOGFILE: wipes the "disk", formats a new cluster
  stop_lazyfs
  rm -rf "$BACKING"; mkdir -p "$BACKING"
  start_lazyfs || return 1
  cluster_up "$1" || { log "cluster up failed:"; tail -15 "$1"; return 1; }
  mount_both "$1" || { log "mount failed:"; tail -15 "$1"; return 1; }
}

# The servers must see STRIPEFS_TEST_NO_SYNC (stripefs cluster up forks them
# with its own environment): checked on the running processes.
check_env() {
  [ "${STRIPEFS_TEST_NO_SYNC:-}" = 1 ] || return 0
  local p n=0 missing=""
  for p in $(cluster_pids); do
    n=$((n + 1))
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'STRIPEFS_TEST_NO_SYNC=1' ||
      missing="$missing $(basename "$(readlink "/proc/$p/exe")")[$p]"
  done
  if [ -n "$missing" ]; then
    log "WARNING: STRIPEFS_TEST_NO_SYNC=1 did not reach:$missing"
  else
    log "STRIPEFS_TEST_NO_SYNC=1 is in the environment of all $n servers and mount daemons"
  fi
}

mode="sync path on"
[ "${STRIPEFS_TEST_NO_SYNC:-}" = 1 ] && mode="STRIPEFS_TEST_NO_SYNC=1: servers skip their syncs, loss expected"
[ "$CUT_KIND" = kill ] && mode="$mode; CUT_KIND=kill: kill -9 only, unsynced writes kept (control)"
log "run dir $WORK; binaries $BIN; LazyFS $LAZYFS_BIN"
log "$CUTS cuts, ${LOAD_SECONDS}s of load each, $OSS OSS, budget ${TIME_BUDGET}s; $mode"

fresh_cluster "$STATE/setup.log" || exit 2
check_env

# acked: files that must be there (acknowledged, not unlinked since), over
# every cut since the last fresh cluster; creates: files acknowledged in this
# cut's load; lost: acknowledged files missing; wrong: present with wrong
# bytes (wrong_bytes: how many); undone: an acknowledged unlink or rename
# undone; extra: entries nobody created; foreign: an in-flight create holding
# bytes not its own; inflight: operations in flight at the cut (either way ok).
printf '%-4s %6s %7s %6s %6s %11s %7s %6s %8s %8s %5s  %s\n' \
  cut acked creates lost wrong wrong_bytes undone extra foreign inflight time note
cut=0
ACTIVE_LOGS=()    # the logs of every cut since the last fresh cluster
TOT_ACKED=0 TOT_LOST=0 TOT_WRONG=0 TOT_WRONG_BYTES=0 TOT_OTHER=0 TOT_NORESTART=0
TOT_NOLOAD=0
while [ $cut -lt "$CUTS" ]; do
  if [ "$(elapsed)" -ge "$TIME_BUDGET" ]; then
    log "time budget of ${TIME_BUDGET}s used up after $cut cuts"
    break
  fi
  cut=$((cut + 1))
  t0=$(date +%s)
  tag=$(printf 'c%02d' "$cut")
  clog=$STATE/$tag.cluster.log

  # --- load ---------------------------------------------------------------
  ts=$(date +%s)
  if ! wait_serving; then
    log "cut $cut: the mounts do not serve requests 90 s after the restart"
    TOT_NORESTART=$((TOT_NORESTART + 1))
    break
  fi
  t0=$(date +%s)
  WRITER_PIDS=()
  for side in a b; do
    mnt=$MNT_A; [ $side = b ] && mnt=$MNT_B
    wl=$STATE/$tag-$side.log
    : >"$wl"
    ACTIVE_LOGS+=("$wl")
    "$PY" "$LOAD_PY" write --root "$mnt" --dir "$tag-$side" --log "$wl" \
      --seconds $((LOAD_SECONDS + 60)) --seed $((cut * 2 + ${#side})) 2>>"$STATE/writers.err" &
    WRITER_PIDS+=($!)
  done
  sleep "$LOAD_SECONDS.$((RANDOM % 10))"

  # --- the cut ------------------------------------------------------------
  pids=$(cluster_pids)
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null
  # shellcheck disable=SC2086
  wait_pids_gone 10 $pids || log "some cluster processes survived kill -9: $(cluster_pids | tr '\n' ' ')"
  # the writers now fail on the dead mounts; an ack they already got is logged
  for _ in $(seq 1 50); do
    alive=0; for p in "${WRITER_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break; sleep 0.1
  done
  kill_writers
  unmount_fuse "$MNT_A"
  unmount_fuse "$MNT_B"
  mkdir -p "$STATE/$tag.server-logs"
  cp -r "$LAZY/log/." "$STATE/$tag.server-logs/" 2>/dev/null
  t1=$(date +%s)
  if [ "$CUT_KIND" = kill ]; then checkpoint_cache || exit 2; else clear_cache || exit 2; fi
  t2=$(date +%s)
  new=$(cat "$STATE/$tag-a.log" "$STATE/$tag-b.log" | grep -c '"op": "create".*"t": "ack"')

  # --- restart and verify ---------------------------------------------------
  note=""
  root=$MNT_A; [ $((cut % 2)) -eq 0 ] && root=$MNT_B  # read back through either mount
  t3=$t2 t4=$t2
  if ! cluster_up "$clog"; then
    note="cluster did not come back: $(why "$clog")"
    root=$EMPTY
  else
    t3=$(date +%s)
    if ! mount_both "$clog"; then
      note="mount failed: $(why "$clog")"
      root=$EMPTY
    fi
    t4=$(date +%s)
  fi
  vout=$STATE/$tag.verify.txt
  if ! timeout 600 "$PY" "$LOAD_PY" verify --root "$root" --logs "${ACTIVE_LOGS[@]}" --details 8 >"$vout" 2>&1; then
    note="${note:+$note; }verifier failed: $(tail -1 "$vout")"
    echo '{"acked":0,"lost":0,"wrong_files":0,"wrong_bytes":0,"resurrected":0,"unexpected":0,"foreign":0,"inflight":0,"failed":1}' >>"$vout"
  fi
  read -r acked lost wrong wbytes undone extra foreign inflight vfail < <(tail -1 "$vout" | "$PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
print(*(d.get(k, 0) for k in ("acked", "lost", "wrong_files", "wrong_bytes", "resurrected", "unexpected", "foreign", "inflight", "failed")))')
  t5=$(date +%s)
  if [ "$new" -eq 0 ]; then
    note="${note:+$note; }NO LOAD: no create acknowledged before the cut"
    TOT_NOLOAD=$((TOT_NOLOAD + 1))
  fi
  note="${note:+$note; }ready $((t0 - ts))s cut $((t1 - t0 - LOAD_SECONDS))s drop $((t2 - t1))s up $((t3 - t2))s mount $((t4 - t3))s verify $((t5 - t4))s"
  [ "$root" = "$EMPTY" ] && TOT_NORESTART=$((TOT_NORESTART + 1))
  [ "$vfail" != 0 ] && TOT_OTHER=$((TOT_OTHER + 1))
  TOT_ACKED=$((TOT_ACKED + new))
  TOT_LOST=$((TOT_LOST + lost))
  TOT_WRONG=$((TOT_WRONG + wrong))
  TOT_WRONG_BYTES=$((TOT_WRONG_BYTES + wbytes))
  TOT_OTHER=$((TOT_OTHER + undone + extra + foreign))
  printf '%-4s %6s %7s %6s %6s %11s %7s %6s %8s %8s %4ss  %s\n' \
    "$cut" "$acked" "$new" "$lost" "$wrong" "$wbytes" "$undone" "$extra" "$foreign" "$inflight" \
    "$(( $(date +%s) - t0 ))" "$note"
  if [ $((lost + wrong + undone + extra + foreign)) -gt 0 ]; then
    sed -n '/^  /p' "$vout" | head -4
  fi

  # --- next cut: the same cluster; after a loss its earlier files are no
  # longer checked; a cluster that did not come back is created afresh ------
  if [ $((lost + wrong + undone + extra + foreign + vfail)) -gt 0 ]; then
    ACTIVE_LOGS=()
  fi
  if [ $cut -lt "$CUTS" ]; then
    if [ "$root" = "$EMPTY" ]; then
      timeout 90 "$CLI" cluster down --home "$LAZY" >>"$clog" 2>&1
      mkdir -p "$STATE/$tag.server-logs-after"
      cp -r "$LAZY/log/." "$STATE/$tag.server-logs-after/" 2>/dev/null
      pids=$(cluster_pids)
      # shellcheck disable=SC2086
      [ -n "$pids" ] && { kill -9 $pids 2>/dev/null; wait_pids_gone 10 $pids; }
      unmount_fuse "$MNT_A"; unmount_fuse "$MNT_B"
      fresh_cluster "$clog" || { log "could not create a fresh cluster (see $clog)"; exit 2; }
    fi
  fi
done

echo
log "$cut cuts in $(elapsed)s: $TOT_ACKED creates acknowledged; $TOT_LOST acknowledged files lost," \
  "$TOT_WRONG with wrong bytes ($TOT_WRONG_BYTES bytes), $TOT_OTHER other violations" \
  "(undone unlink/rename, unexpected entries, foreign bytes), $TOT_NORESTART restarts failed," \
  "$TOT_NOLOAD cuts without load"
loss=$((TOT_LOST + TOT_WRONG + TOT_WRONG_BYTES))
bad=$((loss + TOT_OTHER + TOT_NORESTART + TOT_NOLOAD))
if [ "$EXPECT_LOSS" = 1 ]; then
  if [ $loss -gt 0 ] || [ $TOT_NORESTART -gt 0 ]; then
    log "PASS (--expect-loss): the check saw acknowledged data lost"; RESULT=0
  else
    log "FAIL (--expect-loss): nothing acknowledged was lost"; RESULT=1
  fi
elif [ "$cut" -lt "$CUTS" ]; then
  log "FAIL: only $cut of $CUTS cuts within the time budget ($bad violations)"; RESULT=2
  [ $bad -gt 0 ] && RESULT=1
elif [ $bad -gt 0 ]; then
  log "FAIL: acknowledged state lost or wrong"; RESULT=1
else
  log "PASS: every acknowledged file, rename and unlink survived $cut cuts ($CUT_KIND)"; RESULT=0
fi
exit $RESULT
