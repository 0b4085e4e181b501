// ConfigWatch: the mount follows the cluster configuration live (issue 15,
// seed 004). It holds PR on the `config` lock (a dlm::ActiveWatch on that
// resource); the MDS takes EX after each change (mds/config_notifier.h), the
// PR is called back; the watch then re-reads the configuration (GetConfig)
// and applies it, at once and again once PR is granted back:
//  - a target it does not know joins the OstSet (connected, its active
//    lock watched for controlled failover) and new layouts may name it;
//  - every target gets the administrator's state: active or not, and
//    fail_io (its I/O fails at once with EIO, after what this mount
//    buffered for it was written back) — apart from connection state, which
//    never changes it.
// A lock lost without a callback (the DLM evicted a mount that was stopped
// during a change) is followed by a re-read as well. The first read is the
// mount's own GetConfig at start; the watch re-reads from its first grant.
// Thread-safe; the re-reads run on the watch's thread.
//
//   auto w = ConfigWatch::Start(dlm, fetch, &osts, failover, topts);
//   ... mount serves ...
//   (*w)->Stop();
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "dlm/active_watch.h"
#include "fuse-client/failover.h"
#include "fuse-client/ost_set.h"
#include "rpc/proto/mds.pb.h"

namespace stripefs::client {

// Applies a configuration to the mount's targets (see above). `failover`
// may be null (no lock service).
[[nodiscard]] absl::Status ApplyConfig(const rpc::GetConfigReply& config,
                                       const TargetOptions& topts,
                                       OstSet* osts, MountFailover* failover);

class ConfigWatch {
 public:
  using Fetch = std::function<absl::StatusOr<rpc::GetConfigReply>()>;
  // All pointers must outlive the watch.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ConfigWatch>> Start(
      dlm::DlmClient* dlm, Fetch fetch, OstSet* osts, MountFailover* failover,
      TargetOptions topts);
  void Stop();
  // Configurations read and applied since Start.
  uint64_t applied() const { return watch_->resumes(); }

 private:
  ConfigWatch() = default;
  std::unique_ptr<dlm::ActiveWatch> watch_;
};

}  // namespace stripefs::client
