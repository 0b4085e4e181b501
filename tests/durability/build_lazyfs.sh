#!/usr/bin/env bash
# Builds LazyFS (github.com/dsrhaslab/lazyfs) for tests/durability/power_cut.sh
# and prints the path of the lazyfs binary on its last line of stdout.
#
#   tests/durability/build_lazyfs.sh [LAZYFS_GIT]
#
# LAZYFS_GIT (argument or env) is a git directory or clone of LazyFS, default
# the mirror /work/.mirror/dsrhaslab+lazyfs/repo (as `fetch github:dsrhaslab/lazyfs`
# leaves it). The sources are checked out (only lazyfs/ and libs/) into
# LAZYFS_WORK (default /var/tmp/stripefs-lazyfs)/src; LazyFS's CMake fetches
# toml11 and spdlog from the network, so its FetchContent blocks are replaced
# with find_package() on Debian's libtoml11-dev / libspdlog-dev (installed here
# with apt-get when missing; deploy/install-deps.sh has no optional section).
# Then libs/libpcache and lazyfs/ are built (LazyFS's unit tests are not).
# Idempotent: an existing checkout of the same commit is reused, the patch is
# applied once, the builds are incremental.
set -euo pipefail

LAZYFS_GIT=${1:-${LAZYFS_GIT:-/work/.mirror/dsrhaslab+lazyfs/repo}}
LAZYFS_WORK=${LAZYFS_WORK:-/var/tmp/stripefs-lazyfs}
SRC=$LAZYFS_WORK/src
JOBS=${JOBS:-$(nproc)}

log() { echo "build_lazyfs: $*" >&2; }

# A mirror directory holding the bare repository in repo/.
if [ -d "$LAZYFS_GIT/repo" ] && [ ! -e "$LAZYFS_GIT/HEAD" ] && [ ! -e "$LAZYFS_GIT/.git" ]; then
  LAZYFS_GIT=$LAZYFS_GIT/repo
fi
if ! git --git-dir="$LAZYFS_GIT" rev-parse --verify -q 'HEAD^{commit}' >/dev/null 2>&1 &&
   ! git -C "$LAZYFS_GIT" rev-parse --verify -q 'HEAD^{commit}' >/dev/null 2>&1; then
  log "no LazyFS git repository at $LAZYFS_GIT (fetch github:dsrhaslab/lazyfs first)"
  exit 1
fi

# --- dependencies ----------------------------------------------------------
PKGS=(cmake g++ make git pkg-config libfuse3-dev fuse3 libtoml11-dev libspdlog-dev libfmt-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- sources ---------------------------------------------------------------
# Only lazyfs/ and libs/ are checked out (sparse): a mirror may lack blobs of
# other paths (the LazyFS mirror misses one under tests/lfscheck/).
mkdir -p "$LAZYFS_WORK"
want=$(git --git-dir="$LAZYFS_GIT" rev-parse HEAD 2>/dev/null || git -C "$LAZYFS_GIT" rev-parse HEAD)
have=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  log "checking out LazyFS $want into $SRC"
  rm -rf "$SRC.part"
  git clone -q --no-checkout "$LAZYFS_GIT" "$SRC.part" >&2
  git -C "$SRC.part" sparse-checkout set lazyfs libs >&2
  git -C "$SRC.part" checkout -q "$want" >&2
  rm -rf "$SRC"
  mv "$SRC.part" "$SRC"
fi

# --- patch: FetchContent -> find_package (idempotent) ----------------------
python3 - "$SRC" <<'PY'
import re, sys, pathlib
src = pathlib.Path(sys.argv[1])
mark = "# stripefs: Debian packages instead of FetchContent"

p = src / "libs/libpcache/CMakeLists.txt"
t = p.read_text()
if mark not in t:
    t2, n = re.subn(r"include\(FetchContent\).*?set_target_properties\(spdlog PROPERTIES POSITION_INDEPENDENT_CODE ON\)\n",
                    mark + "\nfind_package(toml11 REQUIRED)\nfind_package(spdlog REQUIRED)\n", t, flags=re.S)
    if n != 1:
        sys.exit("build_lazyfs: libpcache CMakeLists.txt: FetchContent block not found (LazyFS changed?)")
    t2, n = re.subn(r"target_link_libraries\(pcache toml11::toml11 spdlog\)",
                    "target_link_libraries(pcache toml11::toml11 spdlog::spdlog)", t2)
    if n != 1:
        sys.exit("build_lazyfs: libpcache CMakeLists.txt: link line not found")
    p.write_text(t2)

p = src / "lazyfs/CMakeLists.txt"
t = p.read_text()
if mark not in t:
    t2, n = re.subn(r"link_directories\(\.\./libs/libpcache/build/_deps/spdlog-build/\)\ninclude_directories\(\.\./libs/libpcache/build/_deps/spdlog-src/include\)\n",
                    mark + "\nfind_package(spdlog REQUIRED)\n", t)
    if n != 1:
        sys.exit("build_lazyfs: lazyfs CMakeLists.txt: spdlog _deps lines not found")
    t2, n = re.subn(r"target_link_libraries\(\$\{CMAKE_PROJECT_NAME\} fuse3 Threads::Threads libpcache.so\)",
                    "target_link_libraries(${CMAKE_PROJECT_NAME} fuse3 Threads::Threads libpcache.so spdlog::spdlog)", t2)
    if n != 1:
        sys.exit("build_lazyfs: lazyfs CMakeLists.txt: link line not found")
    p.write_text(t2)
PY

# --- build -----------------------------------------------------------------
log "building libs/libpcache"
cmake -S "$SRC/libs/libpcache" -B "$SRC/libs/libpcache/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$SRC/libs/libpcache/build" -j "$JOBS" >&2
log "building lazyfs"
cmake -S "$SRC/lazyfs" -B "$SRC/lazyfs/build" -DCMAKE_BUILD_TYPE=Release -DLAZYFS_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_RPATH="$SRC/libs/libpcache/build" >/dev/null
cmake --build "$SRC/lazyfs/build" -j "$JOBS" >&2

BIN=$SRC/lazyfs/build/lazyfs
[ -x "$BIN" ] || { log "no binary at $BIN"; exit 1; }
if ldd "$BIN" | grep -q 'not found'; then
  log "lazyfs has unresolved libraries:"; ldd "$BIN" | grep 'not found' >&2; exit 1
fi
echo "$BIN"
