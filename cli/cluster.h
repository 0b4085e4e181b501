// Cluster lifecycle from a cluster home: create/reuse cluster.json, start the
// servers detached (OSSs, then the MDS), wait for their Status RPC, stop them,
// report their state, and make/remove client mounts recorded in
// run/mounts.json. Progress goes to stdout, problems are returned as
// statuses. Not thread-safe: one CLI invocation drives one home at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stripefs::cli {

struct UpOptions {
  std::string home;
  std::optional<int> oss_count;  // default 4 for a new cluster
  std::optional<std::string> mountpoint;
  std::optional<int64_t> stripe_count;  // default 1 for a new cluster
  std::optional<uint64_t> stripe_size;  // default 1 MiB for a new cluster
  std::string bin_dir;                  // where stripefs-* live
  absl::Duration start_timeout = absl::Seconds(20);
};

absl::Status ClusterUp(const UpOptions& options);

// Unmounts the cluster's mounts, then stops the MDS, then the OSSs.
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
};

absl::StatusOr<std::vector<ServerState>> ClusterStatus(const std::string& home);
std::string FormatStatusText(const std::vector<ServerState>& states);
std::string FormatStatusJson(const std::vector<ServerState>& states);

// Mounts the cluster at mountpoint (an existing directory) via stripefs-mount
// and records it in run/mounts.json. Succeeds if it is already mounted there.
absl::Status Mount(const std::string& home, const std::string& mountpoint,
                   const std::string& bin_dir);

// fusermount3 -u (then -u -z if busy), waits for the daemon, drops the
// record.
absl::Status Umount(const std::string& home, const std::string& mountpoint);

}  // namespace stripefs::cli
