// The CLI's administrative calls to the MDS: the target registry as the MDS
// records it (GetConfig) and online target changes (MdsV2.SetTarget). Like
// server_status.h, the only other CLI file that sees gRPC types.
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stripefs::cli {

struct TargetInfo {
  uint32_t index = 0;
  std::string address;
  bool active = true;
  bool fail_io = false;
  // "active", "inactive" or "inactive, I/O fails".
  std::string StateText() const;
};

// The OSTs the MDS at `mds_address` records, by index.
absl::StatusOr<std::vector<TargetInfo>> QueryTargets(
    const std::string& mds_address, absl::Duration deadline);

enum class TargetOp { kAdd, kDeactivate, kActivate, kRemove };

// One change; the MDS's error as it said it. A release-N MDS, which cannot
// change targets online, gives ENOTSUP.
// `flag`: fail_io for kDeactivate, force for kRemove.
absl::Status ChangeTarget(const std::string& mds_address, TargetOp op,
                          uint32_t index, const std::string& address,
                          bool flag, absl::Duration deadline);

}  // namespace stripefs::cli
