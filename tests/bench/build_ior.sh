#!/usr/bin/env bash
# Builds IOR and mdtest (github.com/hpc/ior) for tests/bench/run.sh and prints
# the directory holding the `ior` and `mdtest` binaries on its last line of
# stdout.
#
#   tests/bench/build_ior.sh [IOR_GIT]
#
# IOR_GIT (argument or env) is a git directory or clone of IOR, default the
# mirror /work/.mirror/hpc+ior/repo (as `fetch github:hpc/ior` leaves it). It
# is cloned into IOR_WORK (default /var/tmp/stripefs-ior)/src and built there
# with `./bootstrap && ./configure && make` against Debian's Open MPI (the
# packages are deploy/install-deps.sh's --bench list, installed here when
# missing). Idempotent: an existing checkout of the same commit is reused and
# the build is incremental. run.sh finds the binaries in IOR_WORK/src/src.
set -euo pipefail

IOR_GIT=${1:-${IOR_GIT:-/work/.mirror/hpc+ior/repo}}
IOR_WORK=${IOR_WORK:-/var/tmp/stripefs-ior}
SRC=$IOR_WORK/src
JOBS=${JOBS:-$(nproc)}
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { echo "build_ior: $*" >&2; }

# A mirror directory holding the bare repository in repo/.
if [ -d "$IOR_GIT/repo" ] && [ ! -e "$IOR_GIT/HEAD" ] && [ ! -e "$IOR_GIT/.git" ]; then
  IOR_GIT=$IOR_GIT/repo
fi
if ! git --git-dir="$IOR_GIT" rev-parse --verify -q 'HEAD^{commit}' >/dev/null 2>&1 &&
   ! git -C "$IOR_GIT" rev-parse --verify -q 'HEAD^{commit}' >/dev/null 2>&1; then
  log "no IOR git repository at $IOR_GIT (fetch github:hpc/ior first)"
  exit 1
fi

# --- dependencies: deploy/install-deps.sh's optional bench list ------------
need=0
for c in mpicc mpirun autoreconf libtoolize make; do
  command -v "$c" >/dev/null || need=1
done
if [ $need = 1 ]; then
  log "installing the bench packages (deploy/install-deps.sh --bench)"
  "$REPO/deploy/install-deps.sh" --bench >&2
fi

# --- sources ---------------------------------------------------------------
mkdir -p "$IOR_WORK"
want=$(git --git-dir="$IOR_GIT" rev-parse HEAD 2>/dev/null || git -C "$IOR_GIT" rev-parse HEAD)
have=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  log "checking out IOR $want into $SRC"
  rm -rf "$SRC.part"
  git clone -q --no-checkout "$IOR_GIT" "$SRC.part" >&2
  git -C "$SRC.part" checkout -q "$want" >&2
  rm -rf "$SRC"
  mv "$SRC.part" "$SRC"
fi

# --- build -----------------------------------------------------------------
cd "$SRC"
if [ ! -x configure ]; then
  log "bootstrap"
  ./bootstrap >&2
fi
if [ ! -f Makefile ]; then
  log "configure"
  ./configure >&2
fi
log "make"
make -j "$JOBS" >&2

for b in ior mdtest; do
  [ -x "$SRC/src/$b" ] || { log "no binary at $SRC/src/$b"; exit 1; }
done
echo "$SRC/src"
