// The MDS as a server role (server/runner.h): the metadata store, MdsCore
// over its OSTs, the metadata locks through the DLM, the client leases and
// the Mds service. stripefs-mds (mds/main.cc) parses the flags into
// MdsFlags and runs the role.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mds/ost_pool.h"
#include "server/runner.h"

namespace stripefs::mds {

struct MdsFlags {
  std::string data;
  std::vector<OstTarget> osts;
  int32_t stripe_count = 1;
  uint64_t stripe_size = 1 << 20;
  std::string dlm;
  double reopen_window_s = 60;
  double client_lease_s = 60;
  double qos_threshold_rr_pct = 17;
  double statfs_interval_s = 5;
};

std::unique_ptr<server::ServerRole> NewMdsRole(std::string target,
                                               MdsFlags flags);

// --ost IDX=HOST:PORT entries, sorted by index; EINVAL naming a bad one.
absl::StatusOr<std::vector<OstTarget>> ParseOsts(
    const std::vector<std::string>& specs);
// The checks of the layout flags against the OSTs; empty when fine.
std::string CheckLayoutFlags(const MdsFlags& f);

}  // namespace stripefs::mds
