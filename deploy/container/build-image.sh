#!/usr/bin/env bash
# Builds the stripefs server image (stripefs-mds, stripefs-oss, stripefs-dlm
# and exactly the shared libraries they load, found with ldd) FROM scratch
# and tags it with the binaries' release: stripefs:<release>.
#
#   deploy/container/build-image.sh BIN_DIR [TAG]
#
# BIN_DIR holds the server binaries and the `stripefs` CLI of one release
# (e.g. build/bin for release N+1, build-n/bin for release N). TAG defaults
# to stripefs:<release>, the release being what `BIN_DIR/stripefs --version`
# prints. Prints the tag on the last line of stdout.
#
# Podman runs with PLATFORM.md's settings (runc, cgroupfs, a containers.conf
# with `default_ulimits = []` named by CONTAINERS_CONF); no registry is
# needed. Run the servers with `stripefs cluster up --image TAG` or
# `stripefs server start --image TAG`, roll them with `stripefs upgrade`.
set -euo pipefail

die() { echo "build-image: $*" >&2; exit 1; }
[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 BIN_DIR [TAG]"
BIN="$(cd "$1" && pwd)" || die "no such directory: $1"
command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc)"
SERVERS=(stripefs-mds stripefs-oss stripefs-dlm)
for b in "${SERVERS[@]}" stripefs; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing"
done
RELEASE="$("$BIN/stripefs" --version | tr -d '[:space:]')"
[[ "$RELEASE" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read the release from $BIN/stripefs --version ('$RELEASE')"
TAG="${2:-stripefs:$RELEASE}"

if [[ -z "${CONTAINERS_CONF:-}" ]]; then
  CONF_DIR="${XDG_RUNTIME_DIR:-/tmp}/stripefs-podman"
  mkdir -p "$CONF_DIR"
  printf '[containers]\ndefault_ulimits = []\n' > "$CONF_DIR/containers.conf"
  export CONTAINERS_CONF="$CONF_DIR/containers.conf"
fi
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)

CTX="$(mktemp -d "${TMPDIR:-/tmp}/stripefs-image.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
ROOT="$CTX/rootfs"
mkdir -p "$ROOT/usr/local/bin" "$ROOT/tmp" "$ROOT/etc"
chmod 1777 "$ROOT/tmp"
# gRPC resolves "localhost" through the usual files.
printf '127.0.0.1 localhost\n::1 localhost\n' > "$ROOT/etc/hosts"
printf 'hosts: files dns\n' > "$ROOT/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/usr/local/bin/none\n' > "$ROOT/etc/passwd"

copy_with_parents() {  # copies $1 (following symlinks) to $ROOT$1
  local src="$1"
  mkdir -p "$ROOT$(dirname "$src")"
  cp -L "$src" "$ROOT$src"
}

declare -A seen=()
for b in "${SERVERS[@]}"; do
  cp "$BIN/$b" "$ROOT/usr/local/bin/$b"
  # Debug info stays in the build tree; the image carries the code only.
  if command -v strip >/dev/null; then strip --strip-debug "$ROOT/usr/local/bin/$b"; fi
  # ldd lines: "libx.so.1 => /path/libx.so.1 (0x...)" or "/lib64/ld-linux... (0x...)".
  while read -r lib; do
    [[ -n "$lib" && -z "${seen[$lib]:-}" ]] || continue
    seen[$lib]=1
    copy_with_parents "$lib"
  done < <(ldd "$BIN/$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  if ldd "$BIN/$b" | grep -q "not found"; then
    die "$b has unresolved libraries: $(ldd "$BIN/$b" | grep 'not found')"
  fi
done
# The glibc name-service modules are loaded with dlopen (not in ldd).
for lib in /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libnss_dns.so.2; do
  [[ -e "$lib" ]] && copy_with_parents "$lib"
done

cat > "$CTX/Containerfile" <<CF
FROM scratch
COPY rootfs/ /
LABEL org.stripefs.release="$RELEASE"
# No default command: the CLI names the server binary (stripefs-mds,
# stripefs-oss or stripefs-dlm under /usr/local/bin) and its flags.
CF
"${PODMAN[@]}" build --quiet -t "$TAG" -f "$CTX/Containerfile" "$CTX" >&2
echo "build-image: built $TAG from $BIN ($(du -sh "$ROOT" | cut -f1) of binaries and libraries)" >&2
echo "$TAG"
