// MdsCore: the metadata service's logic — the namespace (inodes, dentries,
// layouts, xattrs, open handles, orphans) over a storage::KvStore, object
// allocation from per-OST precreated pools, and background object
// destruction. No RPC types: MdsService adapts gRPC onto it.
//
// Thread-safety: all public methods are thread-safe. Mutations serialize on
// mu_ (one WriteBatch each); reads take mu_ shared. Lock order: mu_ before
// bg_mu_. No OSS call is made while holding mu_ except an on-demand
// precreate when an OST's pool ran dry.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "mds/ost_pool.h"
#include "mds/records.h"
#include "storage/kv.h"

namespace stripefs::mds {

// Bits of SetAttrArgs::valid (same values as rpc SetAttrValid).
inline constexpr uint32_t kSetMode = 1;
inline constexpr uint32_t kSetUid = 2;
inline constexpr uint32_t kSetGid = 4;
inline constexpr uint32_t kSetSize = 8;
inline constexpr uint32_t kSetAtime = 16;
inline constexpr uint32_t kSetMtime = 32;
inline constexpr uint32_t kSetAtimeNow = 64;
inline constexpr uint32_t kSetMtimeNow = 128;
inline constexpr uint32_t kSetCtime = 256;

inline constexpr uint32_t kRenameNoReplace = 1;
inline constexpr uint32_t kRenameExchange = 2;
inline constexpr uint32_t kXattrCreate = 1;
inline constexpr uint32_t kXattrReplace = 2;

inline constexpr size_t kNameMax = 255;
inline constexpr size_t kSymlinkMax = 4095;
inline constexpr size_t kXattrValueMax = 64 * 1024;
inline constexpr uint64_t kMaxFileSize = (1ULL << 63) - 1;
inline constexpr uint64_t kMaxInodes = 1ULL << 32;

struct MdsOptions {
  std::string target = "mdt0";
  // HOST:PORT of the lock service, handed to clients in GetConfig; empty
  // when the cluster runs without one.
  std::string dlm_address;
  // Root directory's default layout, used when the store is formatted.
  uint32_t default_stripe_size = 1 << 20;
  int32_t default_stripe_count = 1;
  // Objects precreated per OSS call, and the pool level that triggers a
  // background refill.
  uint32_t precreate_batch = 512;
  uint32_t precreate_low_water = 256;
  // Run the refill and destroy threads (unit tests may drive them by hand).
  bool background_threads = true;
  // How long the destroy thread waits after a failed destroy.
  absl::Duration destroy_retry = absl::Seconds(2);
  // How long the destroy thread lets removals accumulate before an OSS call.
  absl::Duration destroy_batch_delay = absl::Milliseconds(200);
  // Start(): keep the open handles the previous instance persisted (it
  // stopped cleanly or crashed; the start is not forced) so their clients
  // can Reopen them for `reopen_window`; false: discard them at start.
  // Default false.
  bool keep_open_handles = false;
  // How long kept handles wait for Reopen before ExpireReopenWindow
  // discards them (a background thread calls it). Default 60 s.
  absl::Duration reopen_window = absl::Seconds(60);
  // How long a reply record is kept (a client resends a request whose reply
  // it lost for much less: 30 s), and how often the background sweep
  // prunes older ones. Defaults 10 min and 60 s.
  absl::Duration reply_retention = absl::Minutes(10);
  absl::Duration reply_sweep_interval = absl::Seconds(60);
  // How long a client that negotiated rpc::kFeatureLease may stay silent
  // before it is evicted (mds/client_leases.h; --client-lease). Zero: never.
  // Default 60 s.
  absl::Duration client_lease = absl::Seconds(60);
  // Measures elapsed time for the reply records (only differences of its
  // Now() count): they are stamped with the wall time at Start() plus the
  // time elapsed since on this clock, so that a step of the wall clock
  // neither prunes young records nor keeps old ones. nullptr: the system's
  // monotonic clock. Must outlive the core.
  Clock* steady_clock = nullptr;
};

// The caller of a syscall.
struct Cred {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;
};

// (client_id, xid) of a modifying request; reply records key on it. Every
// modifying method that commits writes a reply record for a non-zero
// client_id in the same batch as its change, and answers a request whose
// record exists from it without executing it again (exactly once across
// resends and restarts, for `reply_retention`). client_id 0: no record.
struct ReqId {
  uint64_t client_id = 0;
  uint64_t xid = 0;
};

struct SetAttrArgs {
  uint32_t valid = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  Timespec atime, mtime, ctime;
  uint64_t handle = 0;
};

struct OpenResult {
  Inode inode;
  uint64_t handle = 0;
  bool truncated = false;
};

struct DirEntryOut {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;
  uint64_t cookie = 0;
  std::optional<Inode> inode;  // when plus
};

// What MdsCore::EvictClient dropped.
struct EvictResult {
  size_t handles = 0;    // open handles dropped
  size_t reclaimed = 0;  // unlinked-while-open inodes deleted
  // With handles > 0: the highest dropped handle id plus one. Handle ids
  // only grow (across restarts too), so every handle the client gets after
  // the eviction is at or above it (StatusReply.evicted_below_handle).
  uint64_t below_handle = 0;
};

struct ReaddirResult {
  std::vector<DirEntryOut> entries;
  bool eof = false;
};

struct StatfsResult {
  uint32_t bsize = 4096;
  uint64_t blocks = 0, bfree = 0, bavail = 0;
  uint64_t files = 0, ffree = 0;
  uint32_t namelen = kNameMax;
};

// What the MDS knows about one OST, for statfs/df.
struct OstUsage {
  uint32_t index = 0;
  bool ok = false;
  OstStatfs statfs;
};

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

  absl::StatusOr<Inode> Lookup(const Cred& cred, uint64_t parent,
                               const std::string& name);
  absl::StatusOr<Inode> GetAttr(uint64_t ino);
  absl::StatusOr<Inode> SetAttr(const ReqId& req, const Cred& cred,
                                uint64_t ino, const SetAttrArgs& args);
  absl::StatusOr<OpenResult> Create(const ReqId& req, const Cred& cred,
                                    uint64_t parent, const std::string& name,
                                    uint32_t mode, uint32_t flags);
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
  absl::Status Remove(const ReqId& req, const Cred& cred, uint64_t parent,
                      const std::string& name, bool dir);
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

  const std::vector<OstTarget>& Osts() const { return osts_->Targets(); }
  const MdsOptions& options() const { return options_; }
  uint64_t InodeCount();
  size_t OpenHandleCount();

  // Background work, callable by hand in tests: refill every pool below the
  // low-water mark; destroy queued objects (returns how many destroyed).
  void RefillPools();
  absl::StatusOr<size_t> DrainDestroyQueue();
  size_t PooledObjects(uint32_t ost);

 private:
  struct OstState {
    PrecreateState pool;
    uint64_t available = 0;
    bool refilling = false;
    absl::Time retry_after = absl::InfinitePast();
    // Orphan cleanup after a start (see Start): objects from orphans_from
    // (0: done) below the lowest id precreated by this instance are in no
    // file; known once no precreate is in flight.
    uint64_t orphans_from = 0;
    uint64_t lowest_new = 0;  // 0: nothing precreated yet
    int precreates_in_flight = 0;
  };
  struct OpenHandle {
    uint64_t ino = 0;
    uint32_t flags = 0;
    uint64_t client_id = 0;      // who opened it (0: unknown)
    bool reopen_pending = false;  // kept from the previous instance
  };

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

  // Common creation path for files, nodes, dirs and symlinks.
  absl::StatusOr<Inode> MakeNode(const ReqId& req, const Cred& cred,
                                 uint64_t parent, const std::string& name,
                                 uint32_t mode, uint64_t rdev,
                                 const std::string& symlink,
                                 std::optional<uint32_t> open_flags,
                                 OpenResult* open_out)
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
  absl::Status RefillOne(uint32_t ost) ABSL_LOCKS_EXCLUDED(mu_);

  storage::KvStore* const store_;
  OstPool* const osts_;
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
  uint32_t rr_next_ ABSL_GUARDED_BY(mu_) = 0;
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
  std::thread refill_thread_;
  std::thread destroy_thread_;
  std::thread reopen_thread_;
  std::thread prune_thread_;
  bool started_ = false;
};

// Permission check of `cred` for `mask` (R_OK|W_OK|X_OK bits) on inode.
bool MayAccess(const Inode& inode, const Cred& cred, uint32_t mask);
bool InGroup(const Cred& cred, uint32_t gid);

}  // namespace stripefs::mds
