// MdsCore: start-up (format / load / recovery), record helpers, the commit
// path and the background threads. The other concerns: see mds_core.h.
#include "mds/mds_core.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {

bool InGroup(const Cred& cred, uint32_t gid) {
  if (cred.gid == gid) return true;
  for (uint32_t g : cred.groups) {
    if (g == gid) return true;
  }
  return false;
}

bool MayAccess(const Inode& inode, const Cred& cred, uint32_t mask) {
  mask &= 7;
  if (cred.uid == 0) {
    // Root bypasses rwx, but executing needs some x bit.
    return !((mask & X_OK) && !S_ISDIR(inode.mode) && !(inode.mode & 0111));
  }
  uint32_t bits;
  if (cred.uid == inode.uid) {
    bits = (inode.mode >> 6) & 7;
  } else if (InGroup(cred, inode.gid)) {
    bits = (inode.mode >> 3) & 7;
  } else {
    bits = inode.mode & 7;
  }
  return (bits & mask) == mask;
}

namespace {

// CLOCK_MONOTONIC as a Clock (only differences of Now() mean anything).
class MonotonicClock : public Clock {
 public:
  absl::Time Now() override {
    const auto since_boot = std::chrono::steady_clock::now().time_since_epoch();
    return absl::UnixEpoch() + absl::FromChrono(since_boot);
  }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};

Clock* Monotonic() {
  static MonotonicClock* const clock = new MonotonicClock;
  return clock;
}

}  // namespace

MdsCore::MdsCore(storage::KvStore* store, OstPool* osts, Clock* clock,
                 MdsOptions options)
    : store_(store),
      osts_(osts),
      clock_(clock),
      options_(std::move(options)),
      steady_(options_.steady_clock != nullptr ? options_.steady_clock
                                               : Monotonic()),
      start_wall_(clock_->Now()),
      start_steady_(steady_->Now()) {}

absl::Time MdsCore::RecordNow() {
  return start_wall_ + (steady_->Now() - start_steady_);
}

MdsCore::~MdsCore() { Stop(); }

Timespec MdsCore::Now() {
  timespec ts = absl::ToTimespec(clock_->Now());
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

absl::Status MdsCore::Start() {
  {
    absl::MutexLock l(&mu_);
    STRIPEFS_ASSIGN_OR_RETURN(auto sbv, store_->Get(SuperKey()));
    if (!sbv.has_value()) {
      // Format: the superblock and the root directory.
      STRIPEFS_RETURN_IF_ERROR(ValidateLayout(
          options_.default_stripe_size, options_.default_stripe_count, -1));
      sb_ = Superblock{};
      sb_.target = options_.target;
      Inode root;
      root.ino = kRootIno;
      root.mode = S_IFDIR | 0755;
      root.nlink = 2;
      root.parent = kRootIno;
      root.atime = root.mtime = root.ctime = Now();
      root.layout.stripe_size = options_.default_stripe_size;
      root.layout.stripe_count = options_.default_stripe_count;
      root.layout.stripe_offset = -1;
      storage::WriteBatch b;
      PutSuper(&b);
      PutInode(&b, root);
      STRIPEFS_RETURN_IF_ERROR(store_->Write(b, {.sync = true}));
      spdlog::info("formatted {}: root stripe_size={} stripe_count={}",
                   options_.target, options_.default_stripe_size,
                   options_.default_stripe_count);
    } else {
      STRIPEFS_ASSIGN_OR_RETURN(sb_, DecodeSuperblock(*sbv));
      if (sb_.incompat != 0 || sb_.format != 1) {
        return Errno(EPROTO,
                     absl::StrCat("MDT format ", sb_.format,
                                  " with incompat features ", sb_.incompat,
                                  " is not supported by this release"));
      }
      spdlog::info("loaded {}: {} inodes, next ino {}", sb_.target,
                   sb_.inode_count, sb_.next_ino);
    }
    // No object id is handed out twice, across any crash or power cut:
    // the pools recorded here are dropped and every instance starts from
    // ids the OSTs precreate afresh (past their synced high-water mark).
    // An id in a recorded pool may have gone to a file whose create a
    // power cut then lost (commits are unsynced until a client's fsync),
    // with that file's bytes still in the object. Everything past the
    // last id in use (a file's create and its pool's last_used share a
    // commit) is an orphan, destroyed when the first precreate tells where
    // the new ids start.
    for (const auto& t : osts_->Targets()) {
      OstState& st = ost_state_[t.index];
      STRIPEFS_ASSIGN_OR_RETURN(auto pv, store_->Get(PrecreateKey(t.index)));
      if (pv.has_value()) {
        STRIPEFS_ASSIGN_OR_RETURN(st.pool, DecodePrecreate(*pv));
      }
      st.orphans_from = st.pool.last_used + 1;
      st.pool.ranges.clear();
      st.available = 0;
    }
    STRIPEFS_RETURN_IF_ERROR(Recover());
  }
  started_ = true;
  if (options_.background_threads) {
    refill_thread_ = std::thread([this] { RefillLoop(); });
    destroy_thread_ = std::thread([this] { DestroyLoop(); });
    reopen_thread_ = std::thread([this] { ReopenWindowLoop(); });
    prune_thread_ = std::thread([this] { PruneLoop(); });
    space_thread_ = std::thread([this] { SpaceLoop(); });
    KickBackground();
  }
  return absl::OkStatus();
}

absl::Status MdsCore::Recover() {
  // Without keep_open_handles (a forced start) the handles of the previous
  // instance are gone, and so are the orphans they kept alive. With it
  // (controlled failover, or a crash: kill -9, forced failover), they wait
  // for their clients to reopen them and only orphans no handle keeps are
  // reclaimed.
  storage::WriteBatch b;
  size_t handles = 0, orphans = 0;
  {
    auto it = store_->NewIterator();
    for (it->Seek(kHandlePrefix); it->Valid() && it->key()[0] == 'H';
         it->Next()) {
      if (it->key().size() == 9) {
        const uint64_t h = storage::DecodeBE64(it->key().substr(1));
        sb_.next_handle = std::max(sb_.next_handle, h + 1);
        if (options_.keep_open_handles) {
          absl::StatusOr<HandleRec> rec = DecodeHandle(it->value());
          if (rec.ok()) {
            handles_[h] = {rec->ino, rec->flags, rec->client_id,
                           /*reopen_pending=*/true};
            open_count_[rec->ino]++;
            ++pending_reopen_;
            continue;
          }
          spdlog::warn("discarding unreadable open handle {}: {}", h,
                       rec.status().ToString());
        }
      }
      b.Delete(it->key());
      ++handles;
    }
    STRIPEFS_RETURN_IF_ERROR(it->status());
  }
  std::vector<uint64_t> orphan_inos;
  {
    auto it = store_->NewIterator();
    for (it->Seek(kOrphanPrefix); it->Valid() && it->key()[0] == 'O';
         it->Next()) {
      if (it->key().size() != 9) continue;
      const uint64_t ino = storage::DecodeBE64(it->key().substr(1));
      if (open_count_.contains(ino)) {
        orphans_.insert(ino);  // a kept handle keeps it
        continue;
      }
      orphan_inos.push_back(ino);
    }
    STRIPEFS_RETURN_IF_ERROR(it->status());
  }
  if (pending_reopen_ > 0) {
    reopen_deadline_ = clock_->Now() + options_.reopen_window;
    spdlog::info(
        "recovery: keeping {} open handles of the previous instance ({} "
        "unlinked-while-open inodes) for their clients to reopen within {}",
        pending_reopen_, orphans_.size(),
        absl::FormatDuration(options_.reopen_window));
  }
  // The handle counter resumes past every handle the store has had, so an
  // old handle is never handed out again.
  PutSuper(&b);
  for (uint64_t ino : orphan_inos) {
    auto n = LoadInode(ino);
    if (n.ok()) {
      DeleteInode(&b, *n);
    } else {
      b.Delete(OrphanKey(ino));
    }
    ++orphans;
  }
  if (!b.empty()) {
    PutSuper(&b);
    STRIPEFS_RETURN_IF_ERROR(store_->Write(b));
  }
  spdlog::info(
      "recovery: discarded {} open handles of the previous instance, "
      "reclaimed {} orphan inodes",
      handles, orphans);
  absl::MutexLock l(&bg_mu_);
  destroy_pending_ = true;
  return absl::OkStatus();
}

bool MdsCore::WaitForStop(absl::Duration timeout) {
  bg_mu_.AwaitWithTimeout(absl::Condition(&stop_), timeout);
  return stop_;
}

void MdsCore::Stop() {
  {
    absl::MutexLock l(&bg_mu_);
    stop_ = true;
  }
  if (refill_thread_.joinable()) refill_thread_.join();
  if (destroy_thread_.joinable()) destroy_thread_.join();
  if (reopen_thread_.joinable()) reopen_thread_.join();
  if (prune_thread_.joinable()) prune_thread_.join();
  if (space_thread_.joinable()) space_thread_.join();
}

absl::StatusOr<Inode> MdsCore::LoadInode(uint64_t ino) {
  STRIPEFS_ASSIGN_OR_RETURN(auto v, store_->Get(InodeKey(ino)));
  if (!v.has_value()) {
    return Errno(ENOENT, absl::StrCat("no inode ", ino));
  }
  return DecodeInode(*v);
}

absl::StatusOr<Inode> MdsCore::LoadDir(uint64_t ino) {
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  if (!S_ISDIR(n.mode)) {
    return Errno(ENOTDIR, absl::StrCat("inode ", ino, " is not a directory"));
  }
  return n;
}

absl::StatusOr<std::optional<Dentry>> MdsCore::LoadDentry(
    uint64_t parent, const std::string& name) {
  STRIPEFS_ASSIGN_OR_RETURN(auto v, store_->Get(DentryKey(parent, name)));
  if (!v.has_value()) return std::optional<Dentry>();
  STRIPEFS_ASSIGN_OR_RETURN(Dentry d, DecodeDentry(*v));
  return std::optional<Dentry>(d);
}

void MdsCore::PutInode(storage::WriteBatch* b, const Inode& n) {
  b->Put(InodeKey(n.ino), EncodeInode(n));
}

void MdsCore::PutSuper(storage::WriteBatch* b) {
  b->Put(SuperKey(), EncodeSuperblock(sb_));
}

absl::Status MdsCore::Commit(const ReqId& req, storage::WriteBatch* b,
                             ReplyRec reply,
                             absl::FunctionRef<void()> applied) {
  // The reply record commits atomically with the change: a resend finds
  // either both or neither.
  if (req.client_id != 0) {
    reply.commit_sec = absl::ToUnixSeconds(RecordNow());
    b->Put(ReplyKey(req.client_id, req.xid), EncodeReply(reply));
    b->Put(ReplyTimeKey(reply.commit_sec, req.client_id, req.xid), "");
  }
  if (absl::Status s = fault::Hit("mds.before_commit"); !s.ok()) return s;
  if (absl::Status s = store_->Write(*b); !s.ok()) return s;
  ++writes_;
  applied();
  // Committed: an error here is a reply lost after the change was made
  // (`drop`: the client resends and is answered from the record).
  return fault::Hit("mds.after_commit");
}

void MdsCore::AddEntry(storage::WriteBatch* b, Inode* dir,
                       const std::string& name, uint64_t ino, uint32_t type) {
  uint64_t cookie = dir->next_cookie++;
  b->Put(DentryKey(dir->ino, name), EncodeDentry({ino, type, cookie}));
  b->Put(CookieKey(dir->ino, cookie), EncodeCookieEntry({ino, type, name}));
  dir->nentries++;
}

void MdsCore::DropLink(storage::WriteBatch* b, Inode* victim) {
  victim->ctime = Now();
  if (S_ISDIR(victim->mode)) {
    victim->nlink = 0;
  } else if (victim->nlink > 0) {
    victim->nlink--;
  }
  if (victim->nlink > 0) {
    PutInode(b, *victim);
    return;
  }
  auto it = open_count_.find(victim->ino);
  if (it != open_count_.end() && it->second > 0) {
    // Unlinked while open: keep it until the last release.
    PutInode(b, *victim);
    b->Put(OrphanKey(victim->ino), "");
    orphans_.insert(victim->ino);
    return;
  }
  DeleteInode(b, *victim);
}

void MdsCore::DeleteInode(storage::WriteBatch* b, const Inode& victim) {
  b->Delete(InodeKey(victim.ino));
  b->Delete(OrphanKey(victim.ino));
  if (victim.has_xattrs) {
    auto it = store_->NewIterator();
    std::string prefix = XattrPrefix(victim.ino);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      b->Delete(it->key());
    }
    if (!it->status().ok()) {
      spdlog::warn("listing xattrs of deleted inode {}: {}", victim.ino,
                   it->status().ToString());
    }
  }
  if (S_ISREG(victim.mode)) QueueDestroy(b, victim.layout);
  if (sb_.inode_count > 0) sb_.inode_count--;
  PutSuper(b);
}

absl::Status MdsCore::ValidateLayout(uint32_t stripe_size, int32_t stripe_count,
                                     int32_t stripe_offset) {
  if (stripe_size != 0 && stripe_size % 65536 != 0) {
    return Errno(EINVAL, absl::StrCat("stripe size ", stripe_size,
                                      " is not a multiple of 64 KiB"));
  }
  const auto& targets = osts_->Targets();
  if (stripe_count < -1 ||
      (stripe_count > 0 &&
       static_cast<size_t>(stripe_count) > std::max<size_t>(targets.size(), 1))) {
    return Errno(EINVAL, absl::StrCat("stripe count ", stripe_count,
                                      " exceeds the ", targets.size(),
                                      " OSTs"));
  }
  if (stripe_offset < -1) {
    return Errno(EINVAL, absl::StrCat("bad stripe offset ", stripe_offset));
  }
  if (stripe_offset > 0) {
    bool found = false;
    for (const auto& t : targets) found |= t.index == uint32_t(stripe_offset);
    if (!found) {
      return Errno(EINVAL, absl::StrCat("no OST with index ", stripe_offset));
    }
  }
  return absl::OkStatus();
}

absl::Status MdsCore::Sync() {
  STRIPEFS_RETURN_IF_ERROR(fault::Hit("mds.before_sync"));
  return store_->Sync();
}

bool MdsCore::IsAncestor(uint64_t anc, uint64_t dir) {
  uint64_t d = dir;
  for (int depth = 0; depth < 100000; ++depth) {
    if (d == anc) return true;
    if (d == kRootIno) return false;
    auto n = LoadInode(d);
    if (!n.ok()) return false;
    d = n->parent;
  }
  return false;
}

uint64_t MdsCore::InodeCount() {
  absl::ReaderMutexLock l(&mu_);
  return sb_.inode_count;
}

void MdsCore::KickBackground() {
  absl::MutexLock l(&bg_mu_);
  kicked_ = true;
}

}  // namespace stripefs::mds
