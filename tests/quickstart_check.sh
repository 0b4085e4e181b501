#!/usr/bin/env bash
# README command 1 as a new user runs it, from this clone (.ci/run runs it
# after tests/run.sh): deploy/quickstart.sh with its own STRIPEFS_HOME and
# mountpoint under a temporary directory, then a file written and read back
# through the mount, `stripefs df` and `stripefs getstripe`. Then what a
# user does next on the same machine, each ending mounted and working:
#   again  - quickstart a second time (cluster up and mounted)
#   stale  - kill -9 of the mount daemon, quickstart again (stale mountpoint)
#   down   - servers and mount stopped (`cluster down`), quickstart again
# and, each refused with a one-line reason without touching the cluster:
#   busy   - a mountpoint with another filesystem (tmpfs) on it
#   full   - a non-empty directory as mountpoint
# Last `deploy/quickstart.sh stop`, and no mount or stripefs process of this
# home may be left. Files written earlier must read back after every remount.
# Cleans up after itself on failure too. Exits non-zero on the first failure.
#
# Environment: STRIPEFS_BUILD (default build/; quickstart builds
# cluster-binaries there, a no-op after tests/run.sh), QUICKSTART_TMP (where
# the temporary directory goes, default /tmp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${STRIPEFS_BUILD:-$ROOT/build}"
export STRIPEFS_BUILD="$BUILD"
STRIPEFS="$BUILD/bin/stripefs"
QS="$ROOT/deploy/quickstart.sh"
WORK="$(mktemp -d "${QUICKSTART_TMP:-/tmp}/stripefs-quickstart.XXXXXX")"
export STRIPEFS_HOME="$WORK/home"
MNT="$WORK/mnt"
START=$SECONDS

log() { echo "=== quickstart_check: $*"; }
fail() { log "FAILED: $*"; exit 1; }

# Pids of stripefs processes of this check: a stripefs* binary whose
# command line names $WORK (servers: --data, mounts: the mountpoint).
our_pids() {
  local d exe
  for d in /proc/[0-9]*; do
    exe="$(readlink "$d/exe" 2>/dev/null)" || continue
    case "${exe##*/}" in stripefs*) ;; *) continue ;; esac
    if tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -qF "$WORK/"; then
      echo "${d#/proc/}"
    fi
  done
}
# Mountpoints under $WORK, from /proc/mounts.
our_mounts() { awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts; }
fstype_of() { awk -v m="$1" '$2 == m { t = $3 } END { print t }' /proc/mounts; }

cleanup() {
  local rc=$? m pid
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    if compgen -G "$STRIPEFS_HOME/log/*.log" >/dev/null; then
      log "last lines of the logs in $STRIPEFS_HOME/log:"
      tail -n 5 "$STRIPEFS_HOME"/log/*.log || true
    fi
    log "cleaning up"
  fi
  if [ -n "$(our_pids)$(our_mounts)" ]; then
    timeout 120 "$QS" stop >/dev/null 2>&1 || true
  fi
  for m in $(our_mounts | sort -r); do
    if [[ "$(fstype_of "$m")" == fuse.* ]]; then
      fusermount3 -u -z "$m" 2>/dev/null || true
    else
      umount -l "$m" 2>/dev/null || true
    fi
  done
  for pid in $(our_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  if [ -z "$(our_mounts)" ]; then
    rm -rf "$WORK"
  else
    log "still mounted, left in place: $(our_mounts | tr '\n' ' ')"
    rc=1
  fi
  if [ "$rc" -eq 0 ]; then
    log "passed in $((SECONDS - START)) s"
  else
    log "FAILED (exit $rc) after $((SECONDS - START)) s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_qs NAME ARGS...: deploy/quickstart.sh ARGS, output (both streams) in
# $WORK/NAME.out; returns its exit code.
run_qs() {
  local name=$1 rc=0
  shift
  log "$name: deploy/quickstart.sh $*"
  timeout 900 "$QS" "$@" >"$WORK/$name.out" 2>&1 || rc=$?
  sed 's/^/    /' "$WORK/$name.out"
  return "$rc"
}

# Expects quickstart NAME to have succeeded with a line matching PATTERN.
expect_ok() {
  local name=$1 pattern=$2
  grep -qE "$pattern" "$WORK/$name.out" || fail "$name: no line matches '$pattern'"
}

# Expects quickstart NAME (exit code RC) to have failed with one error line,
# its last, matching PATTERN, and the cluster to be mounted and working.
expect_refused() {
  local name=$1 rc=$2 pattern=$3
  [ "$rc" -ne 0 ] || fail "$name: quickstart succeeded; it should refuse"
  [ "$(grep -c '^quickstart: error:' "$WORK/$name.out")" -eq 1 ] \
    || fail "$name: not exactly one error line"
  tail -n 1 "$WORK/$name.out" | grep -qE "^quickstart: error: .*$pattern" \
    || fail "$name: the last line does not say '$pattern'"
}

# Mounted, a new file round trip (4 stripes), df and getstripe answer, and
# every file written before reads back unchanged.
N=0
check_working() {
  local name=$1 f
  [ "$(fstype_of "$MNT")" = fuse.stripefs ] || fail "$name: $MNT is not a stripefs mount"
  N=$((N + 1))
  head -c $((3 * 1024 * 1024 + N * 4099)) /dev/urandom >"$WORK/data.$N"
  timeout 60 "$STRIPEFS" setstripe -c 4 "$MNT/file.$N" >/dev/null \
    || fail "$name: setstripe -c 4 $MNT/file.$N failed"
  timeout 60 cp "$WORK/data.$N" "$MNT/file.$N" || fail "$name: writing $MNT/file.$N failed"
  for ((f = 1; f <= N; f++)); do
    timeout 60 cmp "$WORK/data.$f" "$MNT/file.$f" \
      || fail "$name: $MNT/file.$f does not read back what was written"
  done
  timeout 60 "$STRIPEFS" df "$MNT" >"$WORK/df.out" 2>&1 || { cat "$WORK/df.out"; fail "$name: stripefs df failed"; }
  grep -q '^ost3' "$WORK/df.out" && grep -q 'total' "$WORK/df.out" \
    || { cat "$WORK/df.out"; fail "$name: stripefs df does not show 4 OSTs and a total"; }
  timeout 60 "$STRIPEFS" getstripe "$MNT/file.$N" >"$WORK/getstripe.out" 2>&1 \
    || { cat "$WORK/getstripe.out"; fail "$name: stripefs getstripe failed"; }
  grep -qE '^stripe_count: +4$' "$WORK/getstripe.out" \
    && [ "$(grep -cE '^ +[0-9]+ +[0-9]+$' "$WORK/getstripe.out")" -eq 4 ] \
    || { cat "$WORK/getstripe.out"; fail "$name: getstripe does not show 4 stripes"; }
  log "$name: mounted and working ($N file(s) read back, df and getstripe fine)"
}

mkdir -p "$MNT"
log "home $STRIPEFS_HOME, mountpoint $MNT"

# 1. A first run, as README command 1.
run_qs fresh "$MNT" || fail "fresh: quickstart failed"
expect_ok fresh "^stripefs is mounted at $MNT"
check_working fresh

# 2a. Again: everything already up and mounted.
run_qs again "$MNT" || fail "again: quickstart failed"
expect_ok again "is already mounted"
expect_ok again "already running"
check_working again

# 2b. The mount daemon killed with -9: a stale mountpoint.
pid="$(for p in $(our_pids); do
         [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$BUILD/bin/stripefs-mount" ] && echo "$p"
       done | head -n 1)"
[ -n "$pid" ] || fail "stale: no stripefs-mount daemon of $MNT found"
log "stale: kill -9 of stripefs-mount (pid $pid)"
kill -KILL "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$pid" 2>/dev/null || fail "stale: pid $pid survived SIGKILL"
stale_err="$(timeout 10 stat "$MNT" 2>&1 >/dev/null || true)"
[[ "$stale_err" == *"not connected"* ]] || fail "stale: $MNT is not stale after the kill ($stale_err)"
run_qs stale "$MNT" || fail "stale: quickstart failed"
expect_ok stale "stale mount of this cluster"
check_working stale

# 2c. Servers and mount down, the home kept.
log "down: stripefs cluster down"
"$STRIPEFS" cluster down --home "$STRIPEFS_HOME" | sed 's/^/    /'
[ -z "$(our_pids)" ] || fail "down: stripefs processes left after cluster down"
run_qs down "$MNT" || fail "down: quickstart failed"
check_working down

# 2d. Mountpoints taken by something else are refused, the cluster untouched.
mkdir -p "$WORK/busy"
mount -t tmpfs stripefs-quickstart-check "$WORK/busy"
rc=0; run_qs busy "$WORK/busy" || rc=$?
umount "$WORK/busy"
expect_refused busy "$rc" "already a mountpoint \\(tmpfs"
mkdir -p "$WORK/full"
echo keep >"$WORK/full/some-file"
rc=0; run_qs full "$WORK/full" || rc=$?
expect_refused full "$rc" "is not empty"
check_working refused

# 3. Stop: nothing left.
run_qs stop stop || fail "stop: quickstart stop failed"
[ -z "$(our_mounts)" ] || fail "stop: still mounted: $(our_mounts | tr '\n' ' ')"
left="$(our_pids)"
[ -z "$left" ] || fail "stop: stripefs processes left: $(echo $left)"
log "stop: no mount and no stripefs process of $STRIPEFS_HOME left"
