#!/usr/bin/env bash
# Installs the dependencies, builds build/ (ccache + ninja), runs every unit
# and component test (ctest) and then the end-to-end suite (pytest on real
# mounts). Exits non-zero if anything fails. Works from a fresh clone on a
# bare Debian 12 machine; leaves no processes or mounts behind.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${STRIPEFS_BUILD:-$ROOT/build}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Cache hits across clones at different paths (CI clones afresh).
export CCACHE_BASEDIR="$ROOT"
export CCACHE_NOHASHDIR=1
export STRIPEFS_BUILD="$BUILD"
# Release N (the previous release: this tree with -DSTRIPEFS_PREVIOUS_RELEASE=ON)
# for the upgrade/downgrade tests; only its binaries are built.
BUILD_N="${STRIPEFS_BUILD_N:-$ROOT/build-n}"
export STRIPEFS_BUILD_N="$BUILD_N"
# No __pycache__ / .pytest_cache in the tree.
export PYTHONDONTWRITEBYTECODE=1

log() { echo "=== tests/run.sh: $*"; }

# Pids of stripefs daemons running from this build (to find leftovers):
# every stripefs-* binary (servers, mounts, tools), whatever the list of
# cluster binaries in CMakeLists.txt holds.
our_daemons() {
  local exe
  for exe in /proc/[0-9]*/exe; do
    case "$(readlink "$exe" 2>/dev/null)" in
      "$BUILD"/bin/stripefs-*|"$BUILD_N"/bin/stripefs-*)
        exe="${exe#/proc/}"; echo "${exe%/exe}" ;;
    esac
  done | sort
}

log "installing dependencies"
deploy/install-deps.sh

log "configuring and building $BUILD"
mkdir -p "$CCACHE_DIR"
cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
ninja -C "$BUILD" -j"$(nproc)"
log "configuring and building release N in $BUILD_N (the cluster binaries only)"
# Same compiler flags as $BUILD, so ccache serves every object that does not
# depend on the release (only version.h and the protocol-2 paths differ).
cmake -G Ninja -S "$ROOT" -B "$BUILD_N" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTRIPEFS_PREVIOUS_RELEASE=ON
ninja -C "$BUILD_N" -j"$(nproc)" cluster-binaries
ccache -s 2>/dev/null | grep -Ei 'hits|misses' || true

# Containers of servers (tests/e2e/test_upgrade_podman.py): stripefs-<target>-<port>.
our_containers() {
  command -v podman >/dev/null || return 0
  CONTAINERS_CONF="${CONTAINERS_CONF:-/dev/null}" podman --runtime runc \
    --cgroup-manager=cgroupfs ps -a --format '{{.Names}}' 2>/dev/null |
    grep -E '^stripefs-(mdt|ost|dlm)' | sort || true
}

before="$(our_daemons)"
before_containers="$(our_containers)"
rc=0

log "thread-safety analysis (clang -Wthread-safety over every source file)"
if ! tests/thread_safety.sh; then
  log "thread-safety analysis FAILED"
  rc=1
fi

log "size check (no source file over 800 lines, no function over 120, outside tests)"
if ! /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/tools ||
   ! /usr/bin/python3 tests/tools/size_check.py; then
  log "size check FAILED"
  rc=1
fi

log "ctest"
if ! ctest --test-dir "$BUILD" --output-on-failure -j2; then
  log "ctest FAILED"
  rc=1
fi

if compgen -G "tests/e2e/test_*.py" >/dev/null || compgen -G "tests/e2e/*_test.py" >/dev/null; then
  log "pytest tests/e2e"
  # Debian's python3 (python3-pytest comes from install-deps.sh), even when
  # another python3 is first in PATH.
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
  if ! "$PY" -m pytest -v -p no:cacheprovider tests/e2e; then
    log "pytest FAILED"
    rc=1
  fi
else
  log "no end-to-end tests in tests/e2e; skipping pytest"
fi

# Safety net: anything the tests started and did not stop is a failure, and
# is cleaned up here so the machine is left as it was.
leftover="$(comm -13 <(echo "$before") <(our_daemons) | grep . || true)"
if [ -n "$leftover" ]; then
  log "FAILED: tests left stripefs processes running: $(echo $leftover)"
  for pid in $leftover; do
    exe="$(readlink /proc/$pid/exe 2>/dev/null || true)"
    if [ "$exe" = "$BUILD/bin/stripefs-mount" ] || [ "$exe" = "$BUILD_N/bin/stripefs-mount" ]; then
      mnt="$(tr '\0' '\n' < /proc/$pid/cmdline | tail -n 1)"
      [ -n "$mnt" ] && fusermount3 -u -z "$mnt" 2>/dev/null || true
    fi
    kill -KILL "$pid" 2>/dev/null || true
  done
  rc=1
fi

left_containers="$(comm -13 <(echo "$before_containers") <(our_containers) | grep . || true)"
if [ -n "$left_containers" ]; then
  log "FAILED: tests left server containers: $(echo $left_containers)"
  for c in $left_containers; do
    CONTAINERS_CONF="${CONTAINERS_CONF:-/dev/null}" podman --runtime runc \
      --cgroup-manager=cgroupfs rm -f "$c" >/dev/null 2>&1 || true
  done
  rc=1
fi

if [ "$rc" -eq 0 ]; then log "all tests passed"; else log "some tests FAILED"; fi
exit "$rc"
