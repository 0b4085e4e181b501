// ActiveWatch: one client's side of the active-server lock of one target
// (DESIGN.md "Controlled failover"; resource `active:<target>`, PLAIN, PR).
// Used by the mount (mdt0 and every ostN) and by the MDS (every ostN).
//
// The watch keeps PR on `active:<target>` in use for as long as it runs. When
// the target's server takes EX to stop (controlled failover), the DLM asks
// the PR back; the watch then, on its own thread (never on the DLM client's
// threads):
//   1. runs `pause` (the owner closes the target's RequestGate so new
//      requests wait before they are formatted, and waits, bounded, for the
//      in-flight ones),
//   2. releases the PR (the library cancels it at once),
//   3. enqueues PR again, which waits in the DLM behind the server's EX until
//      the next instance drops it,
//   4. once granted, runs `resume` (reconnect, handshake again, re-establish
//      state, reopen the gate), retried with backoff until it succeeds, the
//      lock is asked back again, or the watch stops.
// `resume` also runs after the first grant (so an owner can keep its gate
// closed until then) and after the lock was lost (DLM eviction or a failed
// replay): the PR is enqueued again and `resume` gets lost=true.
// A DLM restart changes nothing: the PR is persisted and replayed.
//
// Thread-safe. The hooks run on the watch's thread, one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dlm/dlm_client.h"

namespace stripefs::dlm {

// "active:" + target.
std::string ActiveResource(const std::string& target);
// The configuration lock (DESIGN.md "Locks"): the MDS takes it EX after a
// change of the target registry; mounts hold PR and re-read on callback.
inline constexpr char kConfigResource[] = "config";

struct ActiveWatchHooks {
  // The server asks for the target: hold new requests, let in-flight ones
  // finish (bounded). Required.
  std::function<void()> pause;
  // PR granted again. `lost`: the previous PR was lost without a clean
  // cancel (this client was evicted by the DLM, e.g. it was stopped while
  // the server shut down). Non-OK: retried after a backoff. Required.
  std::function<absl::Status(bool lost)> resume;
};

struct ActiveWatchOptions {
  // The PLAIN resource watched; empty: ActiveResource(target). The same
  // pattern serves the `config` lock (fuse-client/config_watch.h).
  std::string resource;
  // Backoff between failed `resume` attempts.
  absl::Duration retry_min = absl::Milliseconds(50);
  absl::Duration retry_max = absl::Seconds(1);
};

class ActiveWatch : public LockHandler {
 public:
  // Registers the handler for the target's resource and starts the thread,
  // which takes PR (waiting while a server holds EX) and then runs `resume`.
  // `dlm` must outlive the watch.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ActiveWatch>> Start(
      DlmClient* dlm, std::string target, ActiveWatchHooks hooks,
      ActiveWatchOptions options = {});
  // Stop().
  ~ActiveWatch() override;
  ActiveWatch(const ActiveWatch&) = delete;
  ActiveWatch& operator=(const ActiveWatch&) = delete;

  // Stops the thread (a hook in progress finishes first), unregisters the
  // handler and releases the PR (it stays cached until the DLM client
  // closes). Idempotent.
  void Stop();

  // Waits until `resume` succeeded at least once since Start; false on
  // timeout or when stopped.
  bool WaitActive(absl::Duration timeout);
  // True between a successful `resume` and the next `pause`.
  bool active() const;
  // Number of successful `resume` calls (the first grant counts).
  uint64_t resumes() const;
  const std::string& target() const { return target_; }

  // LockHandler (DLM client threads; quick).
  void OnBlocking(const LockInfo& lock, bool lost) override;
  void OnBlockedInUse(const LockInfo& lock) override;

 private:
  ActiveWatch(DlmClient* dlm, std::string target, ActiveWatchHooks hooks,
              ActiveWatchOptions options);
  void Run();
  // Waits for the grant of a new PR; false when stopping.
  bool Acquire();
  // Sleeps `d` unless stopping or the lock is asked back; false if cut short.
  bool Nap(absl::Duration d);

  DlmClient* const dlm_;
  const std::string target_;
  const std::string resource_;
  const ActiveWatchHooks hooks_;
  const ActiveWatchOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool active_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t resumes_ ABSL_GUARDED_BY(mu_) = 0;
  // The PR this watch holds in use (0: none yet).
  uint64_t handle_ ABSL_GUARDED_BY(mu_) = 0;
  // Handles asked back / lost, as told by the DLM client (may name a handle
  // before Lock() returned it).
  uint64_t blocked_handle_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t lost_handle_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace stripefs::dlm
