# shellcheck shell=bash disable=SC2034  # sourced by run.sh, which reads MFS_MNT, PT_MNT, PEER_WHY
# The peers tests/bench/run.sh measures stripefs against, started and stopped
# here (sourced by run.sh; uses its WORK, log and die):
#
#   MooseFS     Debian's moosefs-{master,chunkserver,client,cli} (installed
#               by `deploy/install-deps.sh --bench`): one master in a network
#               namespace of its own, reached over a veth pair (its
#               chunkservers refuse a master on 127.0.0.1), 2 chunkservers in
#               this namespace, goal 1, mounted with mfsmount. Every config
#               and data file lives under WORK/mfs; /etc/mfs is never read.
#   passthrough libfuse's passthrough_ll example (libfuse3-dev), built into
#               WORK with the system's fuse3 and mounted with -o writeback over
#               a local directory.
#
# Each *_up either mounts its peer and sets MFS_MNT / PT_MNT, or sets
# PEER_WHY to why it cannot and returns 1, so run.sh skips that column.
# peers_down undoes whatever was done, in reverse, and is safe to call at any
# point (run.sh's trap calls it on success, failure and Ctrl-C).
#
# Network: only the veth pair this file creates (BENCH_MFS_NET, default
# 10.231.0: .1/30 outside, .2/30 inside the namespace) and loopback.

MFS_NET="${BENCH_MFS_NET:-10.231.0}"
MFS_OUT_IP="$MFS_NET.1"
MFS_IN_IP="$MFS_NET.2"
MFS_CS_PORT="${BENCH_MFS_CS_PORT:-9422}"   # chunkserver i listens on PORT+i
MFS_NS="stripefs-bench-mfs-$$"
MFS_VETH="sfbm$$"                           # +o outside, +i inside (<= 15 chars)
MFS_DIR=""
MFS_MNT=""
MFS_PIDS=()                                 # master, chunkservers, mfsmount
MFS_NS_MADE=0
PT_MNT=""
PT_PID=""
PEER_WHY=""

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# stop_pid PID: SIGTERM, up to 15 s, then SIGKILL (MooseFS saves its state on
# SIGTERM).
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 75; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.2
  done
  log "pid $pid did not stop in 15 s; SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

unmount() {
  local m=$1
  mountpoint -q "$m" 2>/dev/null || return 0
  fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null ||
    umount -l "$m" 2>/dev/null || log "could not unmount $m"
}

mfs_missing() {
  local c missing=()
  for c in mfsmaster mfschunkserver mfsmount mfssetgoal mfscli ip; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  [[ -f /var/lib/mfs/metadata.mfs.empty ]] || missing+=(/var/lib/mfs/metadata.mfs.empty)
  echo "${missing[*]}"
}

# mfs_cs_count: chunkservers connected to the master.
mfs_cs_count() {
  mfscli -H "$MFS_IN_IP" -SCS -p -n 2>/dev/null |
    grep -cF "$MFS_OUT_IP" || true
}

mfs_master_up() {
  "$PY" -c '
import socket, sys
socket.create_connection((sys.argv[1], 9421), timeout=1).close()' "$MFS_IN_IP"
}

mfs_up() {
  local missing
  missing="$(mfs_missing)"
  if [[ -n "$missing" ]]; then
    PEER_WHY="missing ${missing} (deploy/install-deps.sh --bench)"
    return 1
  fi
  [[ $(id -u) == 0 ]] || { PEER_WHY="needs root (network namespace)"; return 1; }
  if ip -o addr show | grep -qF " $MFS_OUT_IP/"; then
    PEER_WHY="$MFS_OUT_IP is already in use (set BENCH_MFS_NET)"
    return 1
  fi
  MFS_DIR="$WORK/mfs"
  mkdir -p "$MFS_DIR/master" "$MFS_DIR/mnt"
  log "MooseFS: master in netns $MFS_NS at $MFS_IN_IP, 2 chunkservers, in $MFS_DIR"
  ip netns add "$MFS_NS" || { PEER_WHY="ip netns add failed"; return 1; }
  MFS_NS_MADE=1
  if ! { ip link add "${MFS_VETH}o" type veth peer name "${MFS_VETH}i" &&
         ip link set "${MFS_VETH}i" netns "$MFS_NS" &&
         ip addr add "$MFS_OUT_IP/30" dev "${MFS_VETH}o" &&
         ip link set "${MFS_VETH}o" up &&
         ip netns exec "$MFS_NS" ip addr add "$MFS_IN_IP/30" dev "${MFS_VETH}i" &&
         ip netns exec "$MFS_NS" ip link set "${MFS_VETH}i" up &&
         ip netns exec "$MFS_NS" ip link set lo up; }; then
    PEER_WHY="could not set up the veth pair ${MFS_VETH}o/${MFS_VETH}i"
    return 1
  fi

  cp /var/lib/mfs/metadata.mfs.empty "$MFS_DIR/master/metadata.mfs" ||
    { PEER_WHY="cannot copy metadata.mfs.empty"; return 1; }
  echo "* / rw,alldirs,admin,maproot=0:0" >"$MFS_DIR/mfsexports.cfg"
  : >"$MFS_DIR/mfstopology.cfg"
  : >"$MFS_DIR/mfsmount.cfg"
  cat >"$MFS_DIR/mfsmaster.cfg" <<EOF
WORKING_USER = root
WORKING_GROUP = root
SYSLOG_IDENT = stripefs-bench-mfsmaster
DATA_PATH = $MFS_DIR/master
EXPORTS_FILENAME = $MFS_DIR/mfsexports.cfg
TOPOLOGY_FILENAME = $MFS_DIR/mfstopology.cfg
MATOML_LISTEN_HOST = $MFS_IN_IP
MATOCS_LISTEN_HOST = $MFS_IN_IP
MATOCL_LISTEN_HOST = $MFS_IN_IP
EOF
  ip netns exec "$MFS_NS" mfsmaster -c "$MFS_DIR/mfsmaster.cfg" -f start \
    >"$MFS_DIR/master.log" 2>&1 &
  MFS_PIDS+=($!)
  wait_for 20 mfs_master_up || { PEER_WHY="the master did not listen (see $MFS_DIR/master.log)"; return 1; }

  local i
  for i in 1 2; do
    mkdir -p "$MFS_DIR/cs$i/hdd"
    echo "$MFS_DIR/cs$i/hdd" >"$MFS_DIR/cs$i/mfshdd.cfg"
    cat >"$MFS_DIR/cs$i/mfschunkserver.cfg" <<EOF
WORKING_USER = root
WORKING_GROUP = root
SYSLOG_IDENT = stripefs-bench-mfscs$i
DATA_PATH = $MFS_DIR/cs$i
HDD_CONF_FILENAME = $MFS_DIR/cs$i/mfshdd.cfg
MASTER_HOST = $MFS_IN_IP
BIND_HOST = $MFS_OUT_IP
CSSERV_LISTEN_HOST = $MFS_OUT_IP
CSSERV_LISTEN_PORT = $((MFS_CS_PORT + i - 1))
EOF
    mfschunkserver -c "$MFS_DIR/cs$i/mfschunkserver.cfg" -f start \
      >"$MFS_DIR/cs$i.log" 2>&1 &
    MFS_PIDS+=($!)
  done
  local n=0
  for ((i = 0; i < 150; i++)); do
    n="$(mfs_cs_count)"
    [[ "$n" -ge 2 ]] && break
    sleep 0.2
  done
  [[ "$n" -ge 2 ]] || { PEER_WHY="only $n of 2 chunkservers registered (see $MFS_DIR/cs*.log)"; return 1; }

  mfsmount "$MFS_DIR/mnt" -f -H "$MFS_IN_IP" -o "mfscfgfile=$MFS_DIR/mfsmount.cfg" \
    >"$MFS_DIR/mount.log" 2>&1 &
  MFS_PIDS+=($!)
  wait_for 20 mountpoint -q "$MFS_DIR/mnt" ||
    { PEER_WHY="mfsmount did not mount (see $MFS_DIR/mount.log)"; return 1; }
  mfssetgoal -r 1 "$MFS_DIR/mnt" >/dev/null || { PEER_WHY="mfssetgoal -r 1 failed"; return 1; }
  MFS_MNT="$MFS_DIR/mnt"
}

mfs_down() {
  [[ -n "$MFS_DIR" ]] && unmount "$MFS_DIR/mnt"
  local i
  for ((i = ${#MFS_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${MFS_PIDS[i]}"; done
  MFS_PIDS=()
  ip link del "${MFS_VETH}o" 2>/dev/null || true
  if [[ $MFS_NS_MADE == 1 ]]; then
    ip netns del "$MFS_NS" 2>/dev/null || log "ip netns del $MFS_NS failed"
    MFS_NS_MADE=0
  fi
  MFS_MNT=""
}

pt_source() {
  local d
  for d in /usr/share/doc/libfuse3-dev/examples /usr/share/doc/libfuse-dev/examples; do
    if [[ -f "$d/passthrough_ll.c" ]]; then echo "$d/passthrough_ll.c"; return 0; fi
    if [[ -f "$d/passthrough_ll.c.gz" ]]; then echo "$d/passthrough_ll.c.gz"; return 0; fi
  done
  return 1
}

pt_up() {
  local src dir bin="$WORK/passthrough/passthrough_ll"
  src="$(pt_source)" || { PEER_WHY="no passthrough_ll.c among libfuse3-dev's examples"; return 1; }
  { command -v cc >/dev/null && pkg-config --exists fuse3; } ||
    { PEER_WHY="needs cc and pkg-config fuse3 (libfuse3-dev)"; return 1; }
  dir="$(dirname "$src")"
  mkdir -p "$WORK/passthrough/src" "$WORK/passthrough/mnt"
  cp "$dir"/passthrough_ll.c* "$dir"/passthrough_helpers.h* "$WORK/passthrough/" 2>/dev/null || true
  gunzip -f "$WORK"/passthrough/*.gz 2>/dev/null || true
  # shellcheck disable=SC2046
  cc -Wall -O2 "$WORK/passthrough/passthrough_ll.c" -o "$bin" \
    $(pkg-config fuse3 --cflags --libs) >"$WORK/passthrough/build.log" 2>&1 ||
    { PEER_WHY="building passthrough_ll failed (see $WORK/passthrough/build.log)"; return 1; }
  "$bin" -f -o "source=$WORK/passthrough/src,writeback" "$WORK/passthrough/mnt" \
    >"$WORK/passthrough/mount.log" 2>&1 &
  PT_PID=$!
  wait_for 10 mountpoint -q "$WORK/passthrough/mnt" ||
    { PEER_WHY="passthrough_ll did not mount (see $WORK/passthrough/mount.log)"; return 1; }
  log "passthrough: $bin -o writeback over $WORK/passthrough/src"
  PT_MNT="$WORK/passthrough/mnt"
}

pt_down() {
  unmount "$WORK/passthrough/mnt"
  [[ -n "$PT_PID" ]] && stop_pid "$PT_PID"
  PT_PID=""
  PT_MNT=""
}

peers_down() {
  pt_down
  mfs_down
}
