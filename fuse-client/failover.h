// MountFailover: the mount's side of controlled failover (DESIGN.md
// "Controlled failover", docs/internals.md "Controlled failover"). One
// dlm::ActiveWatch per target: mdt0 and every OST of the mount.
//  - pause: close the target's RequestGate (new requests wait before they
//    are formatted; a signal interrupts the wait with EINTR) and wait, at
//    most kDrainLimit, for the requests in flight.
//  - resume: reconnect (Connect handshake again: the server may now be
//    another release; TargetClient remembers the new protocol and
//    features), for mdt0 re-establish every open file when the instance
//    changed (MdsClient::ResumeRecover, which runs Fs::ReopenAll once per
//    new instance, shared with crash recovery; after a lost lock also when
//    another path re-established them first), then reopen the gate.
// The pause and the resume are the conn library's (conn/active_gate.h),
// shared with the MDS's calls to the OSTs; the mount adds mdt0's recovery.
// Without a lock service there is no watch (and no controlled failover).
// Thread-safe; the hooks run on the watches' threads.
#pragma once

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "conn/active_gate.h"
#include "dlm/active_watch.h"
#include "dlm/dlm_client.h"
#include "fuse-client/ost_set.h"
#include "fuse-client/target_client.h"

namespace stripefs::client {

class MountFailover {
 public:
  // Longest wait for in-flight requests of a target asked back.
  static constexpr absl::Duration kDrainLimit = conn::kDrainLimit;

  // Closes every target's gate and starts the watches (each gate reopens
  // once its target's active lock is granted). All pointers must outlive
  // the result; mds's recovery function (SetRecovery) must be set.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MountFailover>> Start(
      dlm::DlmClient* dlm, MdsClient* mds, OstSet* osts);
  ~MountFailover();

  // Waits until every target is active once (a mount started during a
  // controlled shutdown waits here); false on timeout.
  bool WaitActive(absl::Duration timeout);
  // Stops the watches (before the DLM client closes).
  void Stop();
  // A target added online (already in the OstSet): watches its active lock
  // and waits, up to `timeout`, for its first grant.
  [[nodiscard]] absl::Status AddOst(uint32_t index, absl::Duration timeout);

  // The hooks, public for tests.
  static void Pause(TargetClient& t);
  static absl::Status ResumeTarget(TargetClient& t);
  // mdt0's resume: ResumeTarget, TargetClient::ResumeRecover(lost), reopen
  // the gate.
  static absl::Status ResumeMds(MdsClient& mds, bool lost);

 private:
  MountFailover() = default;
  absl::Status WatchOst(uint32_t index);
  std::vector<dlm::ActiveWatch*> Watches();

  dlm::DlmClient* dlm_ = nullptr;
  OstSet* osts_ = nullptr;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<dlm::ActiveWatch>> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::client
