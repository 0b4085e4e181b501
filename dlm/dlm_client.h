// DlmClient: the client library of the lock service, for the FUSE client,
// the MDS, the OSS and the CLI. Thread-safe: every method may be called
// from any thread.
//
// What it does:
//  - Connects (handshake) and keeps ONE Session stream open on a reader
//    thread. When the stream breaks (e.g. the DLM restarts) it reconnects
//    with jittered backoff and Replays every granted lock it holds, so
//    the embedder notices nothing. Requests made while the DLM is away
//    are held (retried with the same xid) until it is back.
//  - Lock(): reuses a cached granted lock that covers the request (mode,
//    bits, range); otherwise enqueues and waits for the grant. The wait can
//    be aborted by an interrupt check (e.g. "a signal is pending"): the
//    request is cancelled and Lock returns EINTR.
//  - Every lock returned by Lock() is "in use" until Release(handle). A
//    lock in use is not cancelled when the DLM asks for it back (blocking
//    callback); the library Touches it meanwhile so the DLM extends its
//    timeout, and cancels it once the last user released it. While a
//    handler says it is working (HandlerWorking), it Touches every lock
//    asked back and not yet cancelled.
//  - Unused granted locks stay cached (LRU, count and age limits) and are
//    cancelled when the DLM asks for them back or the LRU drops them.
//  - Handlers per resource-name prefix (longest prefix wins):
//      OnBlocking(lock, lost): before a cached lock is cancelled (blocking
//        callback or LRU) the embedder flushes dirty data and invalidates
//        what the lock covered; the library cancels after it returns.
//        lost=true: the lock is already gone (eviction, failed replay):
//        invalidate, do not write back under it.
//      OnGlimpse(lock): the DLM asks for the lock's value (e.g. the file
//        size this holder knows) without revoking it. Must be quick.
//    Handlers run on library threads, never while the library's mutex is
//    held, so they may call Lock/Release/Cancel (but must not wait for a
//    lock that conflicts with the one being cancelled).
//  - RPC counts per kind (RpcCounts()).
//
// Minimal use:
//   auto c = DlmClient::Start({.address = "127.0.0.1:7000", .name = "mnt"});
//   (*c)->RegisterHandler("ino:", &my_handler);
//   auto l = (*c)->Lock({{"ino:42", LockType::kIbits}, LockMode::kPR,
//                        kBitLookup | kBitUpdate});
//   ... use the cached attributes ...
//   (*c)->Release(l->handle);
// or with RAII: ScopedLock held(c.get(), *l);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "dlm/lock_types.h"

namespace stripefs::dlm {

struct DlmClientOptions {
  std::string address;       // HOST:PORT of stripefs-dlm (required)
  uint64_t client_id = 0;    // stable id of this session; 0 = random
  std::string kind = "client";  // "client", "mds", "oss", "cli"
  std::string name;          // free text for the DLM's logs (host:pid)
  // Ask the DLM, on the first successful connect only (never on a
  // reconnect), to drop every lock `client_id` still holds: a restarted
  // server on its stable id (ServerDlmClientId) releases what its previous
  // instance left, e.g. the EX on active:<target>. Default false.
  bool reset_on_first_connect = false;
  // Do not connect before StartConnecting() (Lock() and the other calls
  // wait meanwhile, as while the DLM is away): a restarting server
  // connects (with reset) only once it serves. Default false.
  bool defer_connect = false;
  // LRU of unused granted locks.
  size_t lru_max_count = 4096;
  absl::Duration lru_max_age = absl::Minutes(5);
  // Deadline of each unary RPC. Default 10 s.
  absl::Duration rpc_deadline = absl::Seconds(10);
  // Period of Touch for in-use locks asked back and of the LRU sweep.
  // Keep it well under the DLM's callback timeout. Default 1 s.
  absl::Duration maintenance_period = absl::Seconds(1);
  // Reconnect / retry backoff bounds.
  absl::Duration backoff_min = absl::Milliseconds(50);
  absl::Duration backoff_max = absl::Milliseconds(250);
  // Time source of the LRU ages (tests pass a fake). Default real clock.
  Clock* clock = nullptr;
};

// Handler for locks whose resource name starts with a registered prefix.
class LockHandler {
 public:
  virtual ~LockHandler() = default;
  virtual void OnBlocking(const LockInfo& lock, bool lost) = 0;
  virtual uint64_t OnGlimpse(const LockInfo& lock) { return 0; }
  // A lock that is in use (Lock() not yet Release()d) was asked back. The
  // library keeps it, Touching it, until its last user releases it; this
  // tells the embedder so it can finish with it and Release (e.g. the
  // active-server lock, dlm/active_watch.h). Called once per lock, on a
  // library thread, possibly before Lock() returned the lock to its
  // caller. Must be quick: no RPC, no waiting.
  virtual void OnBlockedInUse(const LockInfo& lock) {}
};

struct LockOptions {
  // Polled while waiting; returning true aborts the wait with EINTR.
  std::function<bool()> interrupted;
  // Fail with EAGAIN instead of waiting for a conflicting lock.
  bool no_wait = false;
  // Always enqueue a new lock, even when a cached one would cover it.
  bool no_cache_match = false;
  // EXTENT: the DLM grants exactly [start, end], never a wider range
  // (record locks, where a widened lock would make disjoint ranges of two
  // mounts conflict).
  bool exact = false;
  // EXTENT: a granted lock (handle) of this client covering the request:
  // the new lock is carved out of it, granted at once (see
  // EnqueueRequest.carve_from); the caller then cancels or keeps the old.
  uint64_t carve_from = 0;
  // Own-change exemption (EnqueueRequest.exempt_client): the locks of this
  // client id do not conflict with the new lock. A cached lock is reused
  // only when it was granted with no exemption or with this same one (an
  // EX granted beside mount M's PR must not serve a change for anyone
  // else); LockInfo.exempt_client says what the server honoured.
  uint64_t exempt_client = 0;
};

class DlmClient {
 public:
  // Starts the client's threads and connects. Succeeds even when the DLM is
  // not reachable yet (the reader keeps trying); Lock() then waits.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DlmClient>> Start(
      DlmClientOptions options);
  // Close(/*cancel_locks=*/true) unless already closed.
  ~DlmClient();

  // Stops the threads; with cancel_locks, cancels every cached lock first
  // (without calling handlers) except `keep`, which stays in the DLM (a
  // controlled stop's EX on active:<target>, for the next instance of the
  // server to reset).
  void Close(bool cancel_locks = true, uint64_t keep = 0);

  // With options.defer_connect: lets the client connect now. Idempotent.
  void StartConnecting();

  // `handler` must outlive the client (or be unregistered).
  void RegisterHandler(const std::string& prefix, LockHandler* handler);
  void UnregisterHandler(const std::string& prefix);

  // Takes a lock (see the class comment). The result is in use until
  // Release(result.handle). Errors: EINTR (interrupted), EAGAIN (no_wait and
  // busy), EINVAL (bad spec), ESHUTDOWN (closed).
  [[nodiscard]] absl::StatusOr<LockInfo> Lock(const LockSpec& spec,
                                              const LockOptions& opts = {});
  // Drops one use of a lock taken with Lock().
  void Release(uint64_t handle);
  // Changes the mode of a lock the caller has in use; waits for an
  // up-conversion to be granted (EINTR when interrupted while waiting).
  [[nodiscard]] absl::StatusOr<LockInfo> Convert(
      uint64_t handle, LockMode mode,
      const std::function<bool()>& interrupted = {});
  // Cancels a lock now (cached or in use; its users lose it). No handler
  // is called.
  [[nodiscard]] absl::Status Cancel(uint64_t handle);
  // Early cancel: cancels this client's cached locks on `resource` that
  // nobody uses, now, calling their handlers first (as a blocking callback
  // would). For a caller about to ask a server to change what the locks
  // protect: the server's conflicting lock is then granted without a
  // callback round trip. Returns how many were cancelled.
  size_t CancelUnused(const ResourceId& resource);
  // The same for every resource whose name starts with `prefix` (e.g. the
  // objects of a target taken out of service).
  size_t CancelUnusedPrefix(const std::string& prefix);
  // Called by a handler, from OnBlocking, around real work it does to give
  // its lock back (writing dirty data to a server that may be slow or cut
  // off): meanwhile the library Touches every lock asked back and not yet
  // cancelled, so the DLM's callback timeout does not evict this client. A
  // handler that hangs without saying so is evicted as before.
  void HandlerWorking(bool on);
  // Takes nothing: a granted lock of another client that conflicts with
  // `spec`, or nullopt when `spec` would not conflict with another client
  // (F_GETLK). Waits while the DLM is away, like Lock.
  [[nodiscard]] absl::StatusOr<std::optional<LockInfo>> Test(
      const LockSpec& spec);
  // Asks the PW/EX holders of overlapping extent locks for their values.
  [[nodiscard]] absl::StatusOr<std::vector<GlimpseValue>> Glimpse(
      const ResourceId& resource, uint64_t start, uint64_t end);

  // Intent locks (a server takes a lock in a client's name, the client
  // adopts it; e.g. the MDS grants a mount PR on the inode it just created,
  // docs/internals.md "Metadata coherence").
  //
  // Server side: enqueues `spec` owned by client `owner` (its DLM client
  // id) with request id (owner, xid): never waits (EAGAIN when it would),
  // not cached here. `xid` must be unique among owner's requests (a resend
  // with the same one answers the same lock).
  [[nodiscard]] absl::StatusOr<LockInfo> EnqueueFor(uint64_t owner,
                                                    uint64_t xid,
                                                    const LockSpec& spec);
  // Client side: call PrepareAdopt before the request that may bring an
  // intent lock (callbacks for it that overtake the reply are kept), then
  // Adopt exactly once with what the reply brought (nullopt: nothing). A
  // lock adopted is returned in use (Release it as one from Lock()); one
  // that cannot be adopted (another owner, this client evicted or closed
  // since PrepareAdopt) is cancelled and an error returned.
  struct AdoptToken {
    uint64_t evictions = 0;
  };
  AdoptToken PrepareAdopt();
  [[nodiscard]] absl::StatusOr<LockInfo> Adopt(
      const AdoptToken& token, const std::optional<LockInfo>& lock);

  uint64_t client_id() const { return client_id_; }
  // True while a Session stream is established.
  bool Connected() const;
  // How many times this client learned that the DLM evicted it (EVICTED
  // callback, or the DLM no longer knew it): every lock held before is gone.
  uint64_t Evictions() const;
  size_t CachedCount() const;
  std::map<std::string, uint64_t> RpcCounts() const;

 private:
  class Impl;
  explicit DlmClient(std::unique_ptr<Impl> impl, uint64_t client_id);
  std::unique_ptr<Impl> impl_;
  const uint64_t client_id_;
};

// The stable DLM client id of the server of `target` ("mdt0", "ost3"): a
// nonzero 64-bit hash of "server:" + target, the same for every instance
// and release, so a new instance can reset what the previous one held.
uint64_t ServerDlmClientId(const std::string& target);

// Releases a lock taken with DlmClient::Lock when it goes out of scope.
class ScopedLock {
 public:
  ScopedLock(DlmClient* client, const LockInfo& lock)
      : client_(client), lock_(lock) {}
  ~ScopedLock() {
    if (client_ != nullptr) client_->Release(lock_.handle);
  }
  ScopedLock(const ScopedLock&) = delete;
  ScopedLock& operator=(const ScopedLock&) = delete;
  const LockInfo& lock() const { return lock_; }

 private:
  DlmClient* client_;
  LockInfo lock_;
};

}  // namespace stripefs::dlm
