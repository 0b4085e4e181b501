// What the three server mains (stripefs-mds, -oss, -dlm) share about their
// life cycle (DESIGN.md "Controlled failover", docs/internals.md "Server
// life cycle"):
//  - StopSignals: SIGTERM/SIGINT (plain clean stop), SIGUSR2 (controlled
//    stop) and, for the MDS and the OSS, SIGUSR1 (forced failover, seed
//    002), blocked in every thread and taken by one waiter;
//  - (server/failover_gate.h: how a service answers once a forced failover
//    began);
//  - the start-up check over storage/server_record: refuse (exit code 3,
//    one line naming both releases) unless --force, record {release,
//    clean=0} before serving and {release, clean=1} after the store's last
//    write;
//  - the controlled stop's EX lock on PLAIN resource `active:<target>`,
//    taken through the server's DlmClient on its stable client id.
// Thread-compatible: each object is used by the main thread (StopSignals::
// Wait may run on a dedicated thread).
#pragma once

#include <signal.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "dlm/dlm_client.h"
#include "server/failover_gate.h"
#include "storage/kv.h"
#include "storage/server_record.h"

namespace stripefs::server {

// Exit code of a server that refuses to start (start-up check failed).
inline constexpr int kExitRefused = 3;

// How long a controlled stop waits for its EX on active:<target> before it
// gives up and stops plainly. Default 60 s.
inline constexpr absl::Duration kActiveLockTimeout = absl::Seconds(60);

enum class StopKind {
  kClean,       // SIGTERM / SIGINT
  kControlled,  // SIGUSR2: take EX on active:<target> first
  // SIGUSR1 (only with StopSignals(/*forced_failover=*/true)): seed 002.
  // Stop replying at once (every RPC answers UNAVAILABLE "failing over"),
  // turn the backend read-only, wait for the executing requests, exit 0
  // WITHOUT recording a clean stop: the next instance recovers as after a
  // crash (handles kept, reply records answer the resends).
  kForcedFailover,
};

// How long a forced failover waits for the requests still executing.
inline constexpr absl::Duration kForcedFailoverGrace = absl::Seconds(10);

class StopSignals {
 public:
  // Blocks SIGTERM, SIGINT and SIGUSR2 (and SIGUSR1 with forced_failover:
  // the MDS and the OSS; the DLM leaves SIGUSR1 to its default action, a
  // crash) in the calling thread; call before any other thread starts so
  // that every thread inherits the mask.
  explicit StopSignals(bool forced_failover = false);
  // Waits for one of them.
  StopKind Wait();

 private:
  sigset_t sigs_;
};

// The on-disk features this release knows (per role), for CheckStartup
// (storage/on_disk_features.h).
storage::FeatureSet KnownFeatures(const std::string& role);

// The start-up check of a server: loads the record from `kv`, checks it
// against this build's release (rpc::ThisBuild()) and, when allowed, stores
// the new record (clean=0). A refusal is an error whose message says why;
// the caller prints it on one line and exits kExitRefused (see Refused).
// `enable_features`: on-disk features the operator turns on
// (--enable-feature; storage::EnableFeatures), set in the record before it
// is stored. Also keeps the store's release history (compat feature).
absl::StatusOr<storage::StartupDecision> StartupCheck(
    storage::KvStore& kv, const std::string& role, const std::string& target,
    bool force, const std::vector<std::string>& enable_features = {});
// True for a StartupCheck error that is a refusal (exit kExitRefused) rather
// than an unreadable store.
bool Refused(const absl::Status& s);

// Stores `record` with clean=1: call after the store's last write.
absl::Status RecordCleanStop(storage::KvStore& kv,
                             storage::ServerRecord record);
// A start that failed before serving: stores the decided record with the
// PREVIOUS instance's clean flag, so that a failed start never turns an
// unclean store (not recovered yet) into a clean one.
absl::Status RecordFailedStart(storage::KvStore& kv,
                               const storage::StartupDecision& d);

// The stable DLM client options of the server of `target`: id
// dlm::ServerDlmClientId(target), kind `role`, reset on the first connect
// (drops what a previous instance left, e.g. its EX on active:<target>),
// deferred: call DlmClient::StartConnecting() once the server serves, so
// that clients granted their PR again find it ready.
dlm::DlmClientOptions ServerDlmOptions(const std::string& address,
                                       const std::string& role,
                                       const std::string& target);

// Controlled stop: takes EX on PLAIN active:<target> (every client holding
// PR gets a blocking callback, drains and cancels) and waits for the grant,
// at most `timeout`. Returns the lock's handle; the lock stays in use:
// close the client with Close(/*cancel_locks=*/true, handle) so that the EX
// (and only it) stays in the DLM until the next instance resets it.
// ETIMEDOUT when not granted in time (the request is cancelled).
absl::StatusOr<uint64_t> TakeActiveLock(
    dlm::DlmClient& dlm, const std::string& target,
    absl::Duration timeout = kActiveLockTimeout);

// A forced start (StartupDecision::evict_clients), once serving: takes EX on
// active:<target> and cancels it at once. Every client holding PR gets the
// blocking callback, drains, and on the new grant reconnects and
// re-establishes its state with THIS instance, which refuses what the old
// clients held (MDS: open handles -> ESTALE), so their old handles get a
// clear error instead of silently pointing at nothing. At most `timeout`.
absl::Status BounceActiveLock(dlm::DlmClient& dlm, const std::string& target,
                              absl::Duration timeout = kActiveLockTimeout);

// The MDS's and an OSS's use of the two above. Once serving: a forced start
// bounces active:<target> (a failure is logged: the old clients then
// notice only on their next error). At a stop of `kind`: a controlled stop
// with a DLM takes EX on active:<target> and returns its handle, to keep
// when closing the DLM client; 0 for any other stop, without a DLM, or
// when the EX could not be had (logged; the stop is then plain).
void BounceIfForced(dlm::DlmClient* dlm, const std::string& target,
                    bool evict_clients);
uint64_t ActiveLockForStop(dlm::DlmClient* dlm, const std::string& target,
                           StopKind kind);

}  // namespace stripefs::server
