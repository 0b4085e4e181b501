// LockManager: the DLM's core logic, with no gRPC types. Keeps the lock
// table (resources, granted and waiting locks, client sessions), decides
// grants with the compatibility rules of lock_types.h, queues waiting locks
// FIFO (a waiter also waits behind earlier conflicting waiters, so a
// shutdown's EX on active:T holds back later PR requests), and produces the
// callbacks each client's session stream must carry: BLOCKING to holders of
// locks a waiter conflicts with, COMPLETION when a waiter is granted,
// GLIMPSE to ask PW/EX extent holders for their value, EVICTED when a
// holder did not cancel (nor Touch) within the callback timeout.
//
// Every grant/convert/cancel is persisted as one WriteBatch in the KvStore,
// so a restarted DLM has the same table. When the previous instance did not
// shut down cleanly, a recovery window opens: clients may Replay locks the
// table lacks, and new enqueues wait until the window closes (or every
// known client has said ReplayDone).
//
// Time comes from the injected Clock; Tick() must be called periodically
// (the service does, once a second) to evict and to close the recovery
// window. Thread-safe: every public method may be called concurrently.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "dlm/lock_record.h"
#include "dlm/lock_types.h"
#include "storage/kv.h"

namespace stripefs::dlm {

struct LockManagerOptions {
  // A holder must cancel (or Touch) within this long after a blocking
  // callback, else it is evicted. Default 10 s.
  absl::Duration callback_timeout = absl::Seconds(10);
  // After an unclean restart, how long clients may Replay. Default 15 s.
  absl::Duration recovery_window = absl::Seconds(15);
  // Extent expansion is bounded to kExpandChunk-aligned ranges once a
  // resource has more than this many conflicting locks. Default 32.
  size_t expand_contention_limit = 32;
};

// Granularity of bounded extent expansion (32 MiB).
inline constexpr uint64_t kExpandChunk = uint64_t{32} << 20;


struct CallbackEvent {
  enum Kind { kBlocking = 1, kCompletion = 2, kGlimpse = 3, kEvicted = 4 };
  Kind kind = kBlocking;
  LockInfo lock;
  LockInfo blocking;  // kBlocking: the lock that waits
  uint64_t glimpse_id = 0;
};


class LockManager {
 public:
  // Loads the table from `kv` (which must outlive the manager) and marks the
  // store "in use" (not clean) until Close().
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LockManager>> Open(
      storage::KvStore* kv, Clock* clock, LockManagerOptions options = {});
  ~LockManager();

  // Closes every session stream (their readers see the end) and records a
  // clean shutdown. Further calls fail with ESHUTDOWN.
  [[nodiscard]] absl::Status Close();

  // Registers (or refreshes) a client. A known client keeps its locks,
  // unless `reset`: then every lock it holds or waits for is dropped first
  // (their waiters are granted), as if cancelled; returns how many through
  // *dropped when given. Used by a restarting server whose client id is
  // stable, to release what its previous instance left (active:<target>).
  [[nodiscard]] absl::Status Connect(uint64_t client_id,
                                     const std::string& name,
                                     bool reset = false,
                                     size_t* dropped = nullptr);

  // Enqueues a lock. Returns it granted, or waiting (a COMPLETION event
  // follows when granted). `no_wait`: EAGAIN instead of waiting. `exact`:
  // an EXTENT lock is granted over exactly the range asked, never expanded.
  // `carve_from`: a granted EXTENT lock of the client covering the request
  // (range and mode): granted at once, exact, ignoring that lock and the
  // waiters (splitting a held lock); EINVAL when it does not cover.
  // `exempt_client` (own-change exemption, 0: none): the locks, granted or
  // waiting, of that client do not conflict with this one: they are not
  // called back and not waited for (the reverse still holds: that client's
  // later requests wait for this lock).
  // A resent request with the same (client_id, xid) returns the same lock.
  [[nodiscard]] absl::StatusOr<LockInfo> Enqueue(uint64_t client_id,
                                                 uint64_t xid,
                                                 const LockSpec& spec,
                                                 bool no_wait = false,
                                                 bool exact = false,
                                                 uint64_t carve_from = 0,
                                                 uint64_t exempt_client = 0);
  // Creates nothing: a granted lock of ANOTHER client that conflicts with
  // `spec`, or nullopt when there is none (F_GETLK). Waiting locks and the
  // caller's own locks are not considered.
  [[nodiscard]] absl::StatusOr<std::optional<LockInfo>> Test(
      uint64_t client_id, const LockSpec& spec);
  // Changes a granted lock's mode. Down-conversions are granted at once;
  // an up-conversion that conflicts returns granted=false and a COMPLETION
  // follows.
  [[nodiscard]] absl::StatusOr<LockInfo> Convert(uint64_t client_id,
                                                 uint64_t handle,
                                                 LockMode mode);
  // Drops a granted or waiting lock. Unknown handles are OK (idempotent).
  [[nodiscard]] absl::Status Cancel(uint64_t client_id, uint64_t handle);
  // Extends the callback timeout of the client's locks that are in use.
  [[nodiscard]] absl::Status Touch(uint64_t client_id,
                                   const std::vector<uint64_t>& handles);
  // Re-declares a granted lock the client holds. OK if the table has it;
  // re-inserted during the recovery window if it does not conflict; else
  // ESTALE (the client must drop it).
  [[nodiscard]] absl::Status Replay(uint64_t client_id, const LockInfo& lock);
  [[nodiscard]] absl::Status ReplayDone(uint64_t client_id);

  // Glimpse: sends GLIMPSE events to PW/EX holders of extent locks on
  // `resource` overlapping [start, end]; WaitGlimpse collects the answers
  // (waits at most `timeout` of real time).
  [[nodiscard]] absl::StatusOr<uint64_t> StartGlimpse(
      uint64_t client_id, const ResourceId& resource, uint64_t start,
      uint64_t end);
  std::vector<GlimpseValue> WaitGlimpse(uint64_t glimpse_id,
                                        absl::Duration timeout);
  [[nodiscard]] absl::Status AnswerGlimpse(uint64_t client_id,
                                           uint64_t glimpse_id,
                                           uint64_t handle, uint64_t value);

  // Opens the client's session stream (replacing an older one) and queues
  // a COMPLETION for each granted lock and a BLOCKING for each lock asked
  // back, so nothing sent while the client was away is lost. Returns the
  // session generation for NextEvents.
  [[nodiscard]] absl::StatusOr<uint64_t> OpenSession(uint64_t client_id);
  // Moves queued events of session `gen` into *out, waiting up to
  // `timeout` (real time) for one. False once the session is over
  // (replaced, evicted, shut down); *out may still hold final events.
  bool NextEvents(uint64_t client_id, uint64_t gen, absl::Duration timeout,
                  std::vector<CallbackEvent>* out);
  // The stream of session `gen` ended.
  void CloseSession(uint64_t client_id, uint64_t gen);

  // Evicts holders past their callback deadline; closes the recovery window
  // when due.
  void Tick();

  size_t SessionCount() const;
  size_t LockCount() const;
  bool InRecovery() const;
  std::vector<LockInfo> Locks() const;  // every lock, for tests and status

 private:
  struct Lock {
    LockRecord rec;
    // Own-change exemption (Enqueue). Not persisted: it matters only when
    // the lock is granted (and replayed, where the client resends it); a
    // table reloaded from the store keeps its granted locks granted.
    uint64_t exempt_client = 0;
    bool bast_sent = false;
    absl::Time deadline = absl::InfiniteFuture();
    LockInfo blocker;  // who the BAST was for
  };
  struct Resource {
    ResourceId id;
    std::vector<uint64_t> granted;  // handles
    std::vector<uint64_t> waiting;  // handles, FIFO (seq order)
  };
  struct Client {
    std::string name;
    uint64_t session_gen = 0;  // 0: no open session
    bool evicted = false;
    std::deque<CallbackEvent> events;
    std::set<uint64_t> locks;
  };
  struct Glimpse {
    std::set<uint64_t> pending;  // handles not answered yet
    std::vector<GlimpseValue> values;
  };
  // Changes made by one operation, written as one batch.
  struct Txn {
    std::set<uint64_t> locks;    // handles to put (or delete if gone)
    std::set<uint64_t> clients;  // client ids to put (or delete if gone)
    bool meta = false;
    // Durable before the call answers: a new client's record, so that a
    // DLM restarted after a power cut knows whom to wait for to replay.
    bool sync = false;
    std::vector<std::pair<uint64_t, CallbackEvent>> events;
  };

  LockManager(storage::KvStore* kv, Clock* clock, LockManagerOptions options);
  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);

  // Writes txn's changes as one batch (logs a failure: the in-memory table
  // stays authoritative) and queues its events.
  void Commit(Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants whatever the queue of `key` allows, sends BLOCKING callbacks
  // for what it does not.
  void Reprocess(const std::string& key, Txn& txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropCompletion(uint64_t handle, Txn& txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReprocessAll(Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Widens a granted extent lock into the free range around it.
  void Expand(Resource& res, Lock& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendBlocking(Lock& holder, const Lock& waiter, Txn& txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unlinks a lock from its resource, client and the table.
  void RemoveLock(uint64_t handle, Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops every lock of client_id (its next session learns it was
  // evicted); `why` goes to the log after the culprit lock.
  void Evict(uint64_t client_id, const Lock& culprit, std::string_view why,
             Txn& txn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Client*> FindClient(uint64_t client_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Queue(uint64_t client_id, CallbackEvent ev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Grantable(const Resource& res, const Lock& lock, size_t waiting_index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when `lock` in `mode` must wait for `other` in `other_mode`:
  // they conflict and `other` is not a lock of the client `lock` exempts.
  static bool Blocks(const Lock& lock, LockMode mode, const Lock& other,
                     LockMode other_mode);
  // Ends the recovery window and grants what waited for it.
  void EndRecovery(Txn& txn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static LockInfo Info(const Lock& lock);

  storage::KvStore* const kv_;
  Clock* const clock_;
  const LockManagerOptions options_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  MetaRecord meta_ ABSL_GUARDED_BY(mu_);
  uint64_t next_gen_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_glimpse_ ABSL_GUARDED_BY(mu_) = 1;
  bool in_recovery_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time recovery_end_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::set<uint64_t> recovering_ ABSL_GUARDED_BY(mu_);  // not ReplayDone yet
  absl::Time no_evict_before_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::flat_hash_map<uint64_t, Lock> locks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Resource> resources_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Client> clients_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> by_xid_
      ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Glimpse> glimpses_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::dlm
