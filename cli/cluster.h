// Cluster lifecycle from a cluster home: create/reuse cluster.json, start the
// servers detached (the DLM, OSSs, then the MDS), wait for their Status RPC,
// start or stop one server, stop them all, report their state, and
// make/remove client mounts recorded in run/mounts.json. Progress goes to stdout, problems are returned as
// statuses. Not thread-safe: one CLI invocation drives one home at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/config.h"

namespace stripefs::cli {

struct UpOptions {
  std::string home;
  std::optional<int> oss_count;  // default 4 for a new cluster
  std::optional<std::string> mountpoint;
  std::optional<int64_t> stripe_count;  // default 1 for a new cluster
  std::optional<uint64_t> stripe_size;  // default 1 MiB for a new cluster
  std::string bin_dir;                  // where stripefs-* live
  absl::Duration start_timeout = absl::Seconds(20);
  // Neither add nor start the lock service; the MDS runs without --dlm.
  bool no_dlm = false;
};

// Adds a "dlm" entry (target "dlm", a free port, data dir HOME/dlm) unless
// there is one; ports already used in `config` are not picked. Returns true
// if it added one.
absl::StatusOr<bool> EnsureDlmEntry(const std::string& home,
                                    ClusterConfig* config);

// Creates or reuses cluster.json (adding the DLM entry to an older one), then
// starts the DLM, waits for it, starts the OSSs, then the MDS (with --dlm).
absl::Status ClusterUp(const UpOptions& options);

// Unmounts the cluster's mounts, then stops the MDS, then the OSSs, then the
// DLM last.
// Succeeds on a stopped cluster or an empty home.
absl::Status ClusterDown(const std::string& home,
                         absl::Duration stop_timeout = absl::Seconds(15));

struct ServerState {
  std::string target;
  std::string role;
  std::string address;
  int64_t pid = 0;      // 0 when stopped
  std::string state;    // "running", "stopping", "unresponsive", "stopped"
  std::string release;  // empty unless it answered
  // From the server's Status when it answered (empty otherwise).
  std::map<std::string, uint64_t> rpc_counts;
  // DLM only, when it answered: sessions and locks in its table.
  std::optional<uint64_t> sessions;
  std::optional<uint64_t> locks;
};

absl::StatusOr<std::vector<ServerState>> ClusterStatus(const std::string& home);
std::string FormatStatusText(const std::vector<ServerState>& states);
std::string FormatStatusJson(const std::vector<ServerState>& states);

// Starts one server of the cluster (as `cluster up` would; the MDS gets
// --dlm when the cluster has a DLM entry) and waits for its Status RPC.
// Succeeds if it is already running. ENOENT for an unknown target.
absl::Status ServerStart(const std::string& home, const std::string& target,
                         const std::string& bin_dir,
                         absl::Duration start_timeout = absl::Seconds(20));

// SIGTERM to one server, waits for it to exit (SIGKILL after stop_timeout).
// Succeeds if it is not running. ENOENT for an unknown target.
absl::Status ServerStop(const std::string& home, const std::string& target,
                        absl::Duration stop_timeout = absl::Seconds(15));

// Mounts the cluster at mountpoint (an existing directory) via stripefs-mount
// and records it in run/mounts.json. Succeeds if it is already mounted there.
absl::Status Mount(const std::string& home, const std::string& mountpoint,
                   const std::string& bin_dir);

// fusermount3 -u (then -u -z if busy), waits for the daemon, drops the
// record.
absl::Status Umount(const std::string& home, const std::string& mountpoint);

}  // namespace stripefs::cli
