#!/usr/bin/env bash
# Quick start on a bare Debian 12 machine: installs the build dependencies,
# builds the cluster binaries into build/, starts a local cluster (1 MDS +
# 4 OSS + the lock service, data under $STRIPEFS_HOME, default ~/.stripefs)
# and mounts it.
#
#   deploy/quickstart.sh [MOUNTPOINT]   start and mount (default /mnt/stripefs)
#   deploy/quickstart.sh stop           unmount and stop everything
# Environment: STRIPEFS_HOME (cluster home), STRIPEFS_BUILD (default build/).
#
# Safe to run again: servers already running are kept, a mount of this
# cluster that still works is kept, a stale one (its daemon was killed) is
# cleaned and mounted again; a mountpoint taken by something else, or a
# non-empty directory, is refused with a one-line reason before anything
# starts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${STRIPEFS_BUILD:-$ROOT/build}"
STRIPEFS="$BUILD/bin/stripefs"
CLUSTER_HOME="${STRIPEFS_HOME:-$HOME/.stripefs}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"

say() { echo "quickstart: $*"; }
die() { echo "quickstart: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  stop)
    [ $# -eq 1 ] || die "usage: $0 stop"
    if [ ! -x "$STRIPEFS" ]; then
      say "$STRIPEFS is not built; nothing was started from this tree"
      exit 0
    fi
    say "stopping the cluster in $CLUSTER_HOME"
    "$STRIPEFS" cluster down --home "$CLUSTER_HOME" || die "cluster down failed"
    say "stopped"
    exit 0
    ;;
esac

[ $# -le 1 ] || die "usage: $0 [MOUNTPOINT] | $0 stop"
MNT="${1:-/mnt/stripefs}"

say "installing dependencies"
"$ROOT/deploy/install-deps.sh" || die "dependency installation failed"

# One list of binaries, in CMakeLists.txt (STRIPEFS_CLUSTER_BINARIES): the
# cluster-binaries target builds every binary `cluster up` runs.
say "building the cluster binaries into $BUILD (ccache in $CCACHE_DIR)"
mkdir -p "$CCACHE_DIR"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null \
    || die "cmake configure failed"
fi
ninja -C "$BUILD" cluster-binaries || die "build failed (ninja -C $BUILD cluster-binaries)"

[ -e /dev/fuse ] || die "/dev/fuse is missing (load the fuse module: modprobe fuse)"

# The mountpoint as /proc/mounts names it, without stat(2)ing it: a stale
# mount answers "Transport endpoint is not connected" (the CLI cleans it).
parent="$(cd "$(dirname "$MNT")" 2>/dev/null && pwd -P)" \
  || die "the parent directory of $MNT does not exist"
MNT_ABS="$parent/$(basename "$MNT")"
if ! awk -v m="$MNT_ABS" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; then
  [ ! -e "$MNT" ] || [ -d "$MNT" ] || die "$MNT exists and is not a directory"
  mkdir -p "$MNT" 2>/dev/null || die "cannot create mountpoint $MNT (try: sudo $0, or $0 \$HOME/stripefs)"
  [ -z "$(ls -A "$MNT")" ] \
    || die "$MNT is not empty: mounting there would hide its files (choose an empty directory)"
fi

OSS_ARGS=(--oss 4)
[ ! -f "$CLUSTER_HOME/cluster.json" ] || OSS_ARGS=()  # keep its recorded OSS count
say "starting the cluster in $CLUSTER_HOME and mounting it at $MNT"
err="$(mktemp)"
trap 'rm -f "$err"' EXIT
if ! "$STRIPEFS" cluster up --home "$CLUSTER_HOME" "${OSS_ARGS[@]}" --mount "$MNT" 2>"$err"; then
  # The CLI's first line is the reason; anything after it (a server's log
  # tail) goes before it.
  tail -n +2 "$err" >&2
  reason="$(head -n 1 "$err" | sed 's/^stripefs: //')"
  die "${reason:-cluster up failed; server logs are in $CLUSTER_HOME/log/}"
fi
cat "$err" >&2

# Mounted, by this run or an earlier one: check that it answers.
timeout 30 "$STRIPEFS" df "$MNT" >/dev/null 2>"$err" \
  || die "$MNT is mounted but does not answer: $(head -n 1 "$err" | sed 's/^stripefs: //')"

"$STRIPEFS" cluster status --home "$CLUSTER_HOME"
cat <<MSG

stripefs is mounted at $MNT.
  $STRIPEFS df $MNT
  $STRIPEFS setstripe -c 4 $MNT/wide-file && $STRIPEFS getstripe $MNT/wide-file
Stop everything with: $0 stop
MSG
