#!/usr/bin/env bash
# Installs every Debian package stripefs needs to build, test and benchmark.
# Idempotent: when every package is present it does not touch apt at all.
#
#   deploy/install-deps.sh            the packages every build and test needs
#   deploy/install-deps.sh --bench    also the optional peers and tools of
#                                     tests/bench/run.sh (BENCH_PKGS below)
set -euo pipefail

PKGS=(
  # build
  cmake ninja-build g++ pkg-config ccache git
  # clang's thread-safety analysis (tests/thread_safety.sh)
  clang
  # libraries
  libfuse3-dev fuse3 libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler librocksdb-dev libabsl-dev libgtest-dev libgmock-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  # tests and benchmarks
  fio attr acl python3 python3-pytest util-linux procps psmisc iproute2 e2fsprogs
  # containers (deploy/container, tests/e2e/test_upgrade_podman.py)
  podman runc netavark
)

# Optional: what tests/bench/run.sh measures stripefs against (a live MooseFS,
# 2 chunkservers) and what tests/bench/build_ior.sh needs to build IOR and
# mdtest. Not needed to build or test; installed only with --bench.
BENCH_PKGS=(
  moosefs-master moosefs-chunkserver moosefs-client moosefs-cli
  openmpi-bin libopenmpi-dev autoconf automake libtool make
)

case "${1:-}" in
  "") ;;
  --bench) PKGS+=("${BENCH_PKGS[@]}") ;;
  *) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

# One dpkg-query for all of them (fast enough to run on every quickstart).
installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null |
  awk '$NF == "installed" && $(NF-1) == "ok" { print $1 }' || true)"
missing=()
for p in "${PKGS[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
