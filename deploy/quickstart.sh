#!/usr/bin/env bash
# Quick start on a bare Debian 12 machine: installs the build dependencies,
# builds stripefs into build/, starts a local cluster (1 MDS + 4 OSS, data
# under $STRIPEFS_HOME, default ~/.stripefs) and mounts it.
#
#   deploy/quickstart.sh [MOUNTPOINT]   start and mount (default /mnt/stripefs)
#   deploy/quickstart.sh stop           unmount and stop everything
# Environment: STRIPEFS_HOME (cluster home), STRIPEFS_BUILD (default build/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${STRIPEFS_BUILD:-$ROOT/build}"
STRIPEFS="$BUILD/bin/stripefs"
CLUSTER_HOME="${STRIPEFS_HOME:-$HOME/.stripefs}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"

say() { echo "quickstart: $*"; }
die() { echo "quickstart: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
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

say "building into $BUILD (ccache in $CCACHE_DIR)"
mkdir -p "$CCACHE_DIR"
cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null \
  || die "cmake configure failed"
ninja -C "$BUILD" stripefs stripefs-mds stripefs-oss stripefs-mount \
  || die "build failed"

[ -e /dev/fuse ] || die "/dev/fuse is missing (load the fuse module: modprobe fuse)"
mkdir -p "$MNT" 2>/dev/null || die "cannot create mountpoint $MNT (try: sudo $0, or $0 \$HOME/stripefs)"

say "starting the cluster in $CLUSTER_HOME and mounting it at $MNT"
"$STRIPEFS" cluster up --home "$CLUSTER_HOME" --oss 4 --mount "$MNT" \
  || die "cluster up failed (server logs are in $CLUSTER_HOME/log/)"

"$STRIPEFS" cluster status --home "$CLUSTER_HOME"
cat <<MSG

stripefs is mounted at $MNT.
  $STRIPEFS df $MNT
  $STRIPEFS setstripe -c 4 $MNT/wide-file && $STRIPEFS getstripe $MNT/wide-file
Stop everything with: $0 stop
MSG
