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
# No __pycache__ / .pytest_cache in the tree.
export PYTHONDONTWRITEBYTECODE=1

log() { echo "=== tests/run.sh: $*"; }

# Pids of stripefs daemons running from this build (to find leftovers).
our_daemons() {
  local exe
  for exe in /proc/[0-9]*/exe; do
    case "$(readlink "$exe" 2>/dev/null)" in
      "$BUILD"/bin/stripefs-mds|"$BUILD"/bin/stripefs-oss|"$BUILD"/bin/stripefs-mount)
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
ccache -s 2>/dev/null | grep -Ei 'hits|misses' || true

before="$(our_daemons)"
rc=0

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
    if [ "$(readlink /proc/$pid/exe 2>/dev/null)" = "$BUILD/bin/stripefs-mount" ]; then
      mnt="$(tr '\0' '\n' < /proc/$pid/cmdline | tail -n 1)"
      [ -n "$mnt" ] && fusermount3 -u -z "$mnt" 2>/dev/null || true
    fi
    kill -KILL "$pid" 2>/dev/null || true
  done
  rc=1
fi

if [ "$rc" -eq 0 ]; then log "all tests passed"; else log "some tests FAILED"; fi
exit "$rc"
