// The gate's side of a controlled failover (DESIGN.md "Controlled
// failover"): what every client of a server does when the target's
// `active:<target>` lock (dlm/active_watch.h) is asked back and granted
// again. Used by the mount (mdt0 and each OST, fuse-client/failover.h) and
// by the MDS (each OST, mds/grpc_ost_pool.cc).
//  - pause: close the target's RequestGate (new requests wait before they
//    are formatted) and wait, at most a drain limit, for the requests in
//    flight.
//  - resume: reconnect (Connect handshake again: the server may now be
//    another instance or release; TargetClient remembers the new protocol
//    and features), re-establish the party's state there if it keeps any
//    (`after_reconnect`), then reopen the gate.
//
// Minimal use (a party with no state on the server):
//   STRIPEFS_ASSIGN_OR_RETURN(auto watch, conn::WatchActive(dlm, &ost));
//   ...
//   watch->Stop();  // before the DLM client closes
// Thread-safe; the hooks run on the watch's thread.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "conn/target_client.h"
#include "dlm/active_watch.h"
#include "dlm/dlm_client.h"

namespace stripefs::conn {

// Longest wait for in-flight requests of a target asked back.
inline constexpr absl::Duration kDrainLimit = absl::Seconds(20);

// Runs after the reconnect of a resume, with the gate still closed and the
// thread bypassing it; `lost` as in dlm::ActiveWatchHooks::resume.
using AfterReconnect = std::function<absl::Status(bool lost)>;

// Closes t's gate and waits, at most `drain_limit`, for the requests in
// flight (logs when they did not finish, the server goes anyway).
void PauseTarget(TargetClient& t, absl::Duration drain_limit = kDrainLimit);
// Reconnects t (handshake with whatever instance serves now); logs a change
// of the server's release or protocol. The caller bypasses the gate.
absl::Status ReconnectTarget(TargetClient& t);
// The resume: under a GateBypass, ReconnectTarget, `after(lost)` when set,
// then reopens the gate. The gate stays closed on error (the watch retries).
absl::Status ResumeTarget(TargetClient& t, bool lost,
                          const AfterReconnect& after = {});

// The watch's hooks over t (which must outlive the watch).
dlm::ActiveWatchHooks GateHooks(TargetClient* t, AfterReconnect after = {});
// Closes t's gate (it reopens once the target's active lock is granted) and
// starts the watch of `active:<t->name()>`. `dlm` and t must outlive it.
[[nodiscard]] absl::StatusOr<std::unique_ptr<dlm::ActiveWatch>> WatchActive(
    dlm::DlmClient* dlm, TargetClient* t, AfterReconnect after = {});

}  // namespace stripefs::conn
