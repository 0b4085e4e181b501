// MdsCore: the metadata service's logic, free of RPC types (MdsService
// adapts gRPC onto it). One class, its parts in files by concern:
//  - mds_core.cc          start, recovery, stop, loads, the commit path
//  - mds_core_locks.cc    which metadata locks a change takes (the core
//                         decides; md_lock_taker.h takes them)
//  - mds_core_ns.cc       namespace: lookup, create/mknod/mkdir/symlink,
//                         link, unlink/rmdir, readdir
//  - mds_core_rename.cc   rename, in named steps
//  - mds_core_attr.cc     attributes, sizes, xattrs, layouts, statfs
//  - mds_core_handles.cc  open handles: open, reopen (reopen window),
//                         release; mds_core_evict.cc: a dead client's
//  - mds_core_replies.cc  reply records (exactly-once) and their pruning
//  - mds_core_objects.cc  object allocation from per-OST precreated
//                         pools, and the destroy queue
//  - mds_core_space.cc    the OSTs' free space that allocation weighs
//                         (ost_allocator.h), refreshed in the background
//
// Thread-safety: all public methods are thread-safe. Mutations serialize on
// mu_ (one WriteBatch each); reads take mu_ shared, except GetAttr (one
// key: a batch is atomic), which takes no lock. Lock order: metadata
// locks (taken before mu_, never while holding it), then mu_, then bg_mu_.
// No OSS call is made while holding mu_: a create that finds the pool of an
// OST it needs dry returns without effect, waits for a refill of that pool
// outside mu_ (WithPooledObjects) and is run again.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "mds/md_lock_taker.h"
#include "mds/mds_fsck.h"
#include "mds/mds_types.h"
#include "mds/ost_allocator.h"
#include "mds/ost_pool.h"
#include "mds/records.h"
#include "storage/kv.h"

namespace stripefs::mds {

class MdsCore {
 public:
  // store, osts and clock must outlive the core.
  MdsCore(storage::KvStore* store, OstPool* osts, Clock* clock,
          MdsOptions options);
  ~MdsCore();
  MdsCore(const MdsCore&) = delete;
  MdsCore& operator=(const MdsCore&) = delete;

  // Formats an empty store (root inode) or loads an existing one; discards
  // open handles of a previous instance and reclaims their orphans (with
  // keep_open_handles: keeps them for the reopen window and reclaims only
  // orphans no handle keeps); starts background threads. Call once before
  // anything else.
  [[nodiscard]] absl::Status Start();
  // Stops background threads. Idempotent.
  void Stop();
  // The metadata locks changes take (md_lock_taker.h); default: none. Set
  // before serving; `locks` must outlive the core.
  void set_md_locks(MdLockTaker* locks) { md_locks_ = locks; }

  absl::StatusOr<Inode> Lookup(const Cred& cred, uint64_t parent,
                               const std::string& name);
  absl::StatusOr<Inode> GetAttr(uint64_t ino);
  absl::StatusOr<Inode> SetAttr(const ReqId& req, const Cred& cred,
                                uint64_t ino, const SetAttrArgs& args);
  absl::StatusOr<OpenResult> Create(const ReqId& req, const Cred& cred,
                                    uint64_t parent, const std::string& name,
                                    uint32_t mode, uint32_t flags,
                                    const IntentLock& intent = {});
  absl::StatusOr<OpenResult> Open(const ReqId& req, const Cred& cred,
                                  uint64_t ino, uint32_t flags);
  // Controlled failover: the client req.client_id re-establishes its open
  // `handle` of inode `ino`, kept from the previous instance (see
  // MdsOptions::keep_open_handles). Returns the same handle and the
  // inode's current attributes. ESTALE when the handle is gone (forced or
  // unclean start, reopen window over), belongs to another client or to
  // another inode. A repeated reopen of a handle already reopened by the
  // same client answers the same.
  absl::StatusOr<OpenResult> Reopen(const ReqId& req, uint64_t handle,
                                    uint64_t ino);
  // Discards the kept handles not reopened yet (their orphans are
  // reclaimed when no handle is left). Returns how many it discarded.
  // Called by a background thread once the reopen window is over; tests
  // may call it by hand.
  absl::StatusOr<size_t> ExpireReopenWindow();
  // Kept handles still waiting to be reopened.
  size_t PendingReopenCount();
  // A dead client (lease expired, mds/client_leases.h): drops every open
  // handle `client_id` owns (their H records too) except kept handles
  // still pending a reopen (the reopen window governs those), and deletes
  // the unlinked-while-open inodes no other handle keeps, queueing their
  // objects for destroy; one batch. Its later requests on those handles
  // answer EBADF. Client id 0 (owner unknown) is never evicted.
  absl::StatusOr<EvictResult> EvictClient(uint64_t client_id);
  // EBADF when the handle is unknown or (both ids nonzero) another client
  // owns it.
  absl::Status Release(const ReqId& req, uint64_t handle);
  absl::StatusOr<Inode> Mknod(const ReqId& req, const Cred& cred,
                              uint64_t parent, const std::string& name,
                              uint32_t mode, uint64_t rdev);
  absl::StatusOr<Inode> Mkdir(const ReqId& req, const Cred& cred,
                              uint64_t parent, const std::string& name,
                              uint32_t mode);
  absl::StatusOr<Inode> Symlink(const ReqId& req, const Cred& cred,
                                uint64_t parent, const std::string& name,
                                const std::string& target);
  absl::StatusOr<Inode> Link(const ReqId& req, const Cred& cred, uint64_t ino,
                             uint64_t new_parent, const std::string& new_name);
  // exempt_child (with req.own_md_cache): when `name` is this inode, its
  // lock is taken with the own-change exemption too (the mount drops what
  // it cached of it itself, RemoveRequest.exempt_child).
  absl::Status Remove(const ReqId& req, const Cred& cred, uint64_t parent,
                      const std::string& name, bool dir,
                      uint64_t exempt_child = 0);
  absl::Status Rename(const ReqId& req, const Cred& cred, uint64_t parent,
                      const std::string& name, uint64_t new_parent,
                      const std::string& new_name, uint32_t flags);
  absl::StatusOr<std::string> Readlink(const Cred& cred, uint64_t ino);
  absl::StatusOr<ReaddirResult> Readdir(const Cred& cred, uint64_t ino,
                                        uint64_t cookie, uint32_t max_entries,
                                        bool plus);
  absl::StatusOr<StatfsResult> Statfs();
  // Makes every change committed before the call durable (commits are
  // written unsynced; one sync of the store's log serves every concurrent
  // caller). A client's fsync and fsyncdir end here.
  absl::Status Sync();
  // Per-OST usage (OSS calls; no lock held).
  std::vector<OstUsage> OstUsages();
  absl::Status SetXattr(const ReqId& req, const Cred& cred, uint64_t ino,
                        const std::string& name, const std::string& value,
                        uint32_t flags);
  absl::StatusOr<std::string> GetXattr(const Cred& cred, uint64_t ino,
                                       const std::string& name);
  absl::StatusOr<std::vector<std::string>> ListXattr(const Cred& cred,
                                                     uint64_t ino);
  absl::Status RemoveXattr(const ReqId& req, const Cred& cred, uint64_t ino,
                           const std::string& name);
  absl::Status Access(const Cred& cred, uint64_t ino, uint32_t mask);
  absl::StatusOr<Inode> UpdateSize(const ReqId& req, const Cred& cred,
                                   uint64_t ino, uint64_t size,
                                   std::optional<Timespec> mtime,
                                   bool kill_priv);
  // Zero stripe_size / stripe_count and an absent stripe_offset keep the
  // current value.
  absl::StatusOr<Layout> SetLayout(const ReqId& req, const Cred& cred,
                                   uint64_t ino, uint32_t stripe_size,
                                   int32_t stripe_count,
                                   std::optional<int32_t> stripe_offset);
  absl::StatusOr<Layout> GetLayout(const Cred& cred, uint64_t ino);

  // Deletes the reply records committed more than reply_retention ago;
  // returns how many. Reads only the expired part of the time index. Ages
  // are measured on MdsOptions::steady_clock, and nothing is pruned before
  // this instance has run for reply_retention (the age of a previous
  // instance's records is only known from the wall clock). A background
  // thread calls it every reply_sweep_interval; tests may call it by hand.
  absl::StatusOr<size_t> PruneReplyRecords();

  // stripefs fsck (mds_core_fsck.cc, read-only): per OST the highest
  // object id the MDS has had and the ids it reserves (pools); then the
  // objects the inodes and the destroy queue reference, a page of about
  // max_refs at a time from the cursor `after` ("" for the first page).
  std::vector<FsckOst> FsckState();
  absl::StatusOr<FsckRefPage> ListObjectRefs(const std::string& after,
                                             size_t max_refs);

  std::vector<OstTarget> Osts() const { return osts_->Targets(); }
  const MdsOptions& options() const { return options_; }
  uint64_t InodeCount();
  size_t OpenHandleCount();

  // Background work, callable by hand in tests: refill every pool below the
  // low-water mark; destroy queued objects (returns how many destroyed).
  void RefillPools();
  absl::StatusOr<size_t> DrainDestroyQueue();
  // Statfs of every OST (in parallel, no lock held), kept for allocation
  // (OstAllocator); a failed one keeps the last numbers. The background
  // calls it every MdsOptions::statfs_interval and after
  // kSpaceRefreshObjects allocations.
  void RefreshOstSpace();
  static constexpr uint64_t kSpaceRefreshObjects = 1024;
  size_t PooledObjects(uint32_t ost);
  // A target just added (mds/target_registry.h): its first precreated
  // objects, waited for up to `wait` (EAGAIN when the OSS did not answer).
  [[nodiscard]] absl::Status PrimeOst(uint32_t ost, absl::Duration wait);
  // A target about to be removed: how many files (open-unlinked ones
  // included) have an object on it; then, once removed, its pool state and
  // its queued destroys are dropped.
  absl::StatusOr<uint64_t> FilesOnOst(uint32_t ost);
  [[nodiscard]] absl::Status ForgetOst(uint32_t ost);
  // How long a precreate may wait for an OSS that is away (gate closed at
  // a controlled stop, or unreachable: resent until then). On demand (a
  // create waiting for a dry pool, outside mu_): short when another OST
  // can stand in, else as long as a mount waits for a restarting server.
  // The background refill in between.
  static constexpr absl::Duration kOnDemandShortWait = absl::Seconds(1);
  static constexpr absl::Duration kOnDemandWait = absl::Seconds(30);
  static constexpr absl::Duration kRefillWait = absl::Seconds(10);

 private:
  struct OstState {
    PrecreateState pool;
    uint64_t available = 0;
    bool refilling = false;
    absl::Time retry_after = absl::InfinitePast();
    uint32_t failures = 0;  // precreates failed in a row (retry backoff)
    // Orphan cleanup after a start (see Start): objects from orphans_from
    // (0: done) below the lowest id precreated by this instance are in no
    // file; known once no precreate is in flight.
    uint64_t orphans_from = 0;
    uint64_t lowest_new = 0;  // 0: nothing precreated yet
    int precreates_in_flight = 0;
    uint64_t refills_done = 0;  // precreates ended (pool_cv_ signalled)
    // Space of the OST from its last statfs (RefreshOstSpace); after a
    // failed one the OST is not asked again before space_retry_after.
    bool space_known = false;
    uint64_t avail_bytes = 0;
    uint64_t total_bytes = 0;
    absl::Time space_retry_after = absl::InfinitePast();
    uint32_t space_failures = 0;
  };
  // One request's wait for dry pools (WithPooledObjects): AllocateObjects
  // names in `need` the OST it must wait for and returns without effect;
  // the request waits outside mu_ and runs again. Per OST, `deadline`
  // bounds the waits of this request (set at its first need) and `gave_up`
  // marks an OST it goes without (its precreate failed, or the deadline
  // passed). `order` keeps the OSTs' order (OstAllocator) of the first
  // try.
  struct PoolDemand {
    absl::Time deadline = absl::InfiniteFuture();
    bool gave_up = false;
  };
  struct AllocAttempt {
    std::optional<std::vector<size_t>> order;
    std::map<uint32_t, PoolDemand> demands;
    std::optional<std::pair<uint32_t, absl::Duration>> need;  // ost, wait
  };
  // Runs `request` (which takes mu_ itself), again after waiting outside
  // mu_ whenever AllocateObjects found a pool it needs dry.
  template <typename Request>
  auto WithPooledObjects(Request request) -> decltype(request());
  // Makes `attempt` the current thread's for AllocateObjects.
  class AllocScope {
   public:
    explicit AllocScope(AllocAttempt* a);
    ~AllocScope();
    AllocScope(const AllocScope&) = delete;
    AllocScope& operator=(const AllocScope&) = delete;

   private:
    AllocAttempt* const saved_;
  };
  // Waits (mu_ not held) until the pool of attempt->need's OST has objects
  // or a precreate on it ended: starts one (with the demand's remaining
  // wait) unless one is in flight. Marks the OST gave_up when its
  // precreate failed or the demand's deadline passed.
  void WaitForPool(AllocAttempt* attempt) ABSL_LOCKS_EXCLUDED(mu_);
  struct OpenHandle {
    uint64_t ino = 0;
    uint32_t flags = 0;
    uint64_t client_id = 0;      // who opened it (0: unknown)
    bool reopen_pending = false;  // kept from the previous instance
  };

  // Metadata locks (mds_core_locks.cc). A change locks the inodes it names
  // by number, and those its names ((parent, name)) resolve to; a name is
  // resolved before its lock is taken and checked once more by the change
  // itself, under mu_, with NameLocks::Holds: had it moved meanwhile, the
  // change returns without effect and is retried with the new inode's
  // lock (RetryIfMoved).
  using NameRef = std::pair<uint64_t, std::string>;
  class NameLocks {
   public:
    NameLocks(MdLocks held, std::vector<uint64_t> resolved, bool last_try)
        : held_(std::move(held)),
          resolved_(std::move(resolved)),
          last_try_(last_try) {}
    // Name i of the change is found naming `ino` (0: no entry). False when
    // that is not the inode locked for it: the change must return at once
    // (its status is dropped) and is tried again. After a few tries the
    // change goes on with the locks it has (a name moving all the time).
    bool Holds(size_t i, uint64_t ino) {
      if (last_try_ || i >= resolved_.size() || resolved_[i] == ino) {
        return true;
      }
      moved_ = true;
      return false;
    }
    bool moved() const { return moved_; }

   private:
    MdLocks held_;
    std::vector<uint64_t> resolved_;  // empty: no lock service
    bool last_try_;
    bool moved_ = false;
  };
  // exempt: of a namespace change (own-change exemption, Exempt).
  absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t> inos,
                                     const Exemption& exempt = {})
      ABSL_LOCKS_EXCLUDED(mu_);
  // exempt_client: the exemption covers `inos` (the directories), never
  // what the names resolve to.
  // exempt_child: a name resolved to it is exempt too (Remove).
  absl::StatusOr<NameLocks> LockNames(std::vector<uint64_t> inos,
                                      const std::vector<NameRef>& names,
                                      int attempt, uint64_t exempt_client,
                                      uint64_t exempt_child = 0)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The client whose locks a namespace change asked by `req` may leave in
  // place (it applies the change to its own cache), or 0.
  static uint64_t ExemptClient(const ReqId& req) {
    return req.own_md_cache ? req.client_id : 0;
  }
  static Exemption Exempt(const ReqId& req, std::vector<uint64_t> dirs) {
    return {ExemptClient(req), std::move(dirs)};
  }
  // Runs change(NameLocks&) under the locks of `inos` and `names`, again
  // while it reports a moved name.
  template <typename Change>
  auto RetryIfMoved(const std::vector<uint64_t>& inos,
                    const std::vector<NameRef>& names, uint64_t exempt_client,
                    Change change, uint64_t exempt_child = 0)
      -> decltype(change(std::declval<NameLocks&>())) {
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<NameLocks> locks =
          LockNames(inos, names, attempt, exempt_client, exempt_child);
      if (!locks.ok()) return locks.status();
      auto result = change(*locks);
      if (!locks->moved()) return result;
    }
  }

  Timespec Now();
  // Wall time at Start() plus the steady time elapsed since: the time of
  // the reply records, immune to steps of the wall clock.
  absl::Time RecordNow();
  // Loads and decodes; ENOENT if absent.
  absl::StatusOr<Inode> LoadInode(uint64_t ino);
  absl::StatusOr<std::optional<Dentry>> LoadDentry(uint64_t parent,
                                                   const std::string& name);
  absl::StatusOr<Inode> LoadDir(uint64_t ino);  // ENOTDIR if not a directory
  void PutInode(storage::WriteBatch* b, const Inode& n);
  void PutSuper(storage::WriteBatch* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the reply record `reply` of req (client_id != 0) to the batch,
  // writes it, then runs `applied` (in-memory state that follows the
  // change) before the fault point mds.after_commit, so that a reply lost
  // there leaves the server as a sent one would.
  absl::Status Commit(
      const ReqId& req, storage::WriteBatch* b, ReplyRec reply = {},
      absl::FunctionRef<void()> applied = [] {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The reply record of req, if it has one (client_id 0: never).
  absl::StatusOr<std::optional<ReplyRec>> FindReply(const ReqId& req)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A reply rebuilt from a record: the inode's current attributes (the
  // committed ones if it is gone since); for Create / Open also its handle,
  // marked reopened if it was kept from a previous instance (ESTALE if it
  // was discarded since).
  absl::StatusOr<Inode> ReplyInode(const ReplyRec& rec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<OpenResult> ReplyOpen(const ReqId& req, const ReplyRec& rec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static ReplyRec InodeReply(const Inode& n);
  static ReplyRec OpenReply(const OpenResult& r);

  // Create's intent lock (IntentLock) on the file r made; on success sets
  // r->intent_lock and re-reads r->inode after the grant. Outside mu_.
  void GrantIntent(const ReqId& req, const IntentLock& intent, OpenResult* r)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Common creation path for files, nodes, dirs and symlinks.
  absl::StatusOr<Inode> MakeNode(const ReqId& req, const Cred& cred,
                                 uint64_t parent, const std::string& name,
                                 uint32_t mode, uint64_t rdev,
                                 const std::string& symlink,
                                 std::optional<uint32_t> open_flags,
                                 OpenResult* open_out,
                                 NameLocks* name_locks = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveLocked(const ReqId& req, const Cred& cred,
                            uint64_t parent, const std::string& name,
                            bool dir_op, NameLocks& locks)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Rename's steps (mds_core_rename.cc).
  struct RenameOp;
  absl::Status RenameLocked(const ReqId& req, const Cred& cred, RenameOp& op,
                            NameLocks& locks) ABSL_LOCKS_EXCLUDED(mu_);
  // Loads both directories and entries; *same_inode when both names are
  // links to one inode (nothing to do).
  absl::Status LoadRenameEntries(const Cred& cred, RenameOp& op,
                                 NameLocks& locks, bool* same_inode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadRenameInodes(const Cred& cred, RenameOp& op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteExchange(RenameOp& op, const Timespec& now,
                     storage::WriteBatch* b);
  void WriteReplace(RenameOp& op, storage::WriteBatch* b)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<OpenResult> OpenLocked(const ReqId& req, const Cred& cred,
                                        Inode inode, uint32_t flags,
                                        storage::WriteBatch* b)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a dentry to dir (updates dir's counters, not yet stored).
  void AddEntry(storage::WriteBatch* b, Inode* dir, const std::string& name,
                uint64_t ino, uint32_t type);
  // Drops one link of `victim` (its dentry is already removed): stores it,
  // or orphans it, or deletes it and queues its objects.
  void DropLink(storage::WriteBatch* b, Inode* victim)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeleteInode(storage::WriteBatch* b, const Inode& victim)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Scope guard of a mutation (mu_ held for its whole life): sb_ is edited
  // while a batch is built (counters, next ids), so when no batch reached
  // the store meanwhile (an error before or at the write) it puts sb_ back
  // as it was; a retried request then does not count twice.
  class SuperUndo {
   public:
    explicit SuperUndo(MdsCore* core) ABSL_EXCLUSIVE_LOCKS_REQUIRED(core->mu_)
        : core_(core), saved_(core->sb_), writes_(core->writes_) {}
    ~SuperUndo() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (core_->writes_ == writes_) core_->sb_ = std::move(saved_);
    }
    SuperUndo(const SuperUndo&) = delete;
    SuperUndo& operator=(const SuperUndo&) = delete;

   private:
    MdsCore* const core_;
    Superblock saved_;
    const uint64_t writes_;
  };
  void QueueDestroy(storage::WriteBatch* b, const Layout& layout);
  // Ends a precreate on `ost` (started with ++precreates_in_flight): adds
  // the objects to its pool and, once the lowest new id is known, queues
  // the orphans below it for destruction into `b`.
  void EndPrecreate(uint32_t ost, OstState& st,
                    const absl::StatusOr<ObjectRange>& r,
                    storage::WriteBatch* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<StripeObject>> AllocateObjects(
      const Layout& spec, storage::WriteBatch* b)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when the targets after position i of `order` have `needed`
  // active OSTs with pooled objects.
  bool OthersCanSupply(const std::vector<OstTarget>& targets,
                       const std::vector<size_t>& order, size_t i,
                       size_t needed) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The wait before the next precreate on an OST whose precreate failed.
  static absl::Duration NextRetry(OstState& st);
  absl::Status ValidateLayout(uint32_t stripe_size, int32_t stripe_count,
                              int32_t stripe_offset);
  bool IsAncestor(uint64_t maybe_ancestor, uint64_t dir)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status Recover() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads the kept handles (keep_open_handles) into handles_.
  absl::Status LoadKeptHandles(std::vector<uint64_t>* orphan_inos,
                               storage::WriteBatch* b)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void KickBackground();
  // Waits on bg_mu_ (held) until Stop() or `timeout`; true when stopping,
  // so that a background loop returns.
  bool WaitForStop(absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(bg_mu_);
  void ReopenWindowLoop();
  void PruneLoop();
  void RefillLoop();
  void DestroyLoop();
  void SpaceLoop();
  // Precreates a batch on `ost` (its refilling flag set and
  // precreates_in_flight counted by the caller) and records it.
  absl::Status RefillOne(uint32_t ost, absl::Duration wait)
      ABSL_LOCKS_EXCLUDED(mu_);

  storage::KvStore* const store_;
  OstPool* const osts_;
  NoMdLocks no_md_locks_;
  MdLockTaker* md_locks_ = &no_md_locks_;
  Clock* const clock_;
  const MdsOptions options_;

  absl::Mutex mu_;
  Superblock sb_ ABSL_GUARDED_BY(mu_);
  // Batches written to the store under mu_ (SuperUndo).
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  Clock* const steady_;
  const absl::Time start_wall_;
  const absl::Time start_steady_;
  std::map<uint32_t, OstState> ost_state_ ABSL_GUARDED_BY(mu_);
  // Signalled (under mu_) whenever a precreate ends.
  absl::CondVar pool_cv_;
  OstAllocator allocator_ ABSL_GUARDED_BY(mu_){
      AllocatorOptions{options_.qos_threshold_rr, options_.alloc_seed}};
  uint64_t allocated_since_refresh_ ABSL_GUARDED_BY(mu_) = 0;
  bool balanced_ ABSL_GUARDED_BY(mu_) = true;  // last logged mode
  absl::flat_hash_map<uint64_t, OpenHandle> handles_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint32_t> open_count_ ABSL_GUARDED_BY(mu_);
  // Inodes unlinked while open (an O key exists).
  absl::flat_hash_set<uint64_t> orphans_ ABSL_GUARDED_BY(mu_);
  size_t pending_reopen_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time reopen_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  absl::Mutex bg_mu_;
  bool stop_ ABSL_GUARDED_BY(bg_mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(bg_mu_) = false;
  bool destroy_pending_ ABSL_GUARDED_BY(bg_mu_) = false;
  bool space_kicked_ ABSL_GUARDED_BY(bg_mu_) = false;
  std::thread refill_thread_;
  std::thread destroy_thread_;
  std::thread reopen_thread_;
  std::thread prune_thread_;
  std::thread space_thread_;
  bool started_ = false;
};

template <typename Request>
auto MdsCore::WithPooledObjects(Request request) -> decltype(request()) {
  AllocAttempt attempt;
  AllocScope scope(&attempt);
  while (true) {
    attempt.need.reset();
    auto result = request();
    if (!attempt.need.has_value()) return result;
    WaitForPool(&attempt);  // mu_ not held
  }
}

// Permission check of `cred` for `mask` (R_OK|W_OK|X_OK bits) on inode.
bool MayAccess(const Inode& inode, const Cred& cred, uint32_t mask);
bool InGroup(const Cred& cred, uint32_t gid);

}  // namespace stripefs::mds
