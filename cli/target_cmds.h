// `stripefs target add|deactivate|activate|remove|list` (issue 15, seed
// 004): the
// OSTs of a running cluster change while mounts keep files open and I/O
// running. The MDS records every change and tells the mounts (the config
// lock); these commands start the new server and keep cluster.json (what
// later `cluster up`, `server start` and `upgrade` run) in step.
// Not thread-safe: one CLI invocation drives one home at a time.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace stripefs::cli {

struct TargetAddOptions {
  // HOST:PORT for the new OSS; empty: a free port on 127.0.0.1.
  std::string address;
  std::string bin_dir;          // as `server start --binary-dir`
  std::string default_bin_dir;  // beside the CLI
  absl::Duration start_timeout = absl::Seconds(20);
};

// Starts a new OSS (the next free index), then asks the MDS to bring it into
// service; on success it is in cluster.json. If the MDS refuses, the new
// server is stopped and nothing is recorded.
absl::Status TargetAdd(const std::string& home, const TargetAddOptions& o);

// target: "ost3" or "3". `fail_io` (deactivate only): mounts fail the
// target's I/O at once. ENOENT for a target the cluster does not have.
absl::Status TargetSetActive(const std::string& home,
                             const std::string& target, bool active,
                             bool fail_io);

// Asks the MDS to drop a deactivated target no file uses (`force`: even
// so), then stops its server and drops it from cluster.json. Its data
// directory stays.
absl::Status TargetRemove(const std::string& home, const std::string& target,
                          bool force);

// One line per OST as the MDS records it: index, address, state.
absl::Status TargetList(const std::string& home);

}  // namespace stripefs::cli
