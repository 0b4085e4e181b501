// Asks a stripefs server for its Status over gRPC with a short deadline.
// With cli/fsck.cc the only CLI files that see gRPC types. Thread-safe (no
// shared state).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stripefs::cli {

struct ServerStatus {
  std::string target;
  std::string release;
  int64_t pid = 0;
  std::string state;  // "running", "stopping"
  std::map<std::string, uint64_t> rpc_counts;  // per method name
  std::map<std::string, std::string> info;     // role-specific extras
};

// role: "mds", "oss" or "dlm". UNAVAILABLE/DEADLINE_EXCEEDED when it does not answer.
// wait_for_ready: wait (up to the deadline) for the connection instead of
// failing fast; use it when the server process is known to be alive.
absl::StatusOr<ServerStatus> QueryStatus(const std::string& role,
                                         const std::string& address,
                                         absl::Duration deadline,
                                         bool wait_for_ready = false);

}  // namespace stripefs::cli
