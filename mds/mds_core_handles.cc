// MdsCore: open handles — open, reopen after a failover (and the reopen
// window), release, and the handle count. A dead client's handles:
// mds_core_evict.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "mds/mds_core_checks.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {

absl::StatusOr<OpenResult> MdsCore::OpenLocked(const ReqId& req,
                                               const Cred& cred, Inode n,
                                               uint32_t flags,
                                               storage::WriteBatch* b) {
  OpenResult out;
  if (S_ISDIR(n.mode) && (IsWriteMode(flags) || (flags & O_TRUNC))) {
    return Errno(EISDIR, "cannot open a directory for writing");
  }
  if (S_ISLNK(n.mode)) return Errno(ELOOP, "cannot open a symlink");
  uint32_t mask = 0;
  if ((flags & O_ACCMODE) == O_RDONLY || (flags & O_ACCMODE) == O_RDWR) {
    mask |= R_OK;
  }
  if (IsWriteMode(flags) || (flags & O_TRUNC)) mask |= W_OK;
  if ((flags & kOpenExec) && S_ISREG(n.mode)) mask |= X_OK;
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(n, cred, mask));
  if ((flags & O_TRUNC) && S_ISREG(n.mode)) {
    out.truncated = n.size > 0;
    n.size = 0;
    n.mtime = n.ctime = Now();
    if (cred.uid != 0) KillPriv(&n, cred);
    PutInode(b, n);
  }
  // next_handle is persisted with the handle: a handle id is never handed
  // out twice, across restarts too (its H key may be gone by then), so a
  // stale request cannot hit another client's handle, and ids order the
  // handles in time (EvictResult::below_handle).
  out.handle = sb_.next_handle++;
  b->Put(HandleKey(out.handle), EncodeHandle({n.ino, flags, req.client_id}));
  PutSuper(b);
  out.inode = std::move(n);
  return out;
}

absl::StatusOr<OpenResult> MdsCore::Open(const ReqId& req, const Cred& cred,
                                         uint64_t ino, uint32_t flags) {
  // A truncating open changes the size clients cache.
  MdLocks held;
  if (flags & O_TRUNC) {
    STRIPEFS_ASSIGN_OR_RETURN(held, LockInodes({ino}));
  }
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyOpen(req, *rec);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  storage::WriteBatch b;
  STRIPEFS_ASSIGN_OR_RETURN(OpenResult r,
                            OpenLocked(req, cred, std::move(n), flags, &b));
  STRIPEFS_RETURN_IF_ERROR(Commit(req, &b, OpenReply(r), [&] {
    mu_.AssertHeld();  // Commit runs it under mu_
    handles_[r.handle] = {r.inode.ino, flags, req.client_id};
    open_count_[r.inode.ino]++;
  }));
  return r;
}

absl::StatusOr<OpenResult> MdsCore::Reopen(const ReqId& req, uint64_t handle,
                                           uint64_t ino) {
  absl::MutexLock l(&mu_);
  auto it = handles_.find(handle);
  if (it == handles_.end() || it->second.ino != ino ||
      (it->second.client_id != 0 && it->second.client_id != req.client_id)) {
    return Errno(ESTALE,
                 absl::StrCat("open handle ", handle, " of inode ", ino,
                              " is not known to this server instance (a "
                              "forced or unclean start, or the reopen window "
                              "is over): the file must be opened again"));
  }
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  if (it->second.reopen_pending) {
    it->second.reopen_pending = false;
    --pending_reopen_;
  }
  OpenResult out;
  out.inode = std::move(n);
  out.handle = handle;
  return out;
}

absl::Status MdsCore::Release(const ReqId& req, uint64_t handle) {
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  auto it = handles_.find(handle);
  if (it == handles_.end()) {
    return Errno(EBADF, absl::StrCat("unknown handle ", handle));
  }
  // A stale Release (e.g. of a mount evicted meanwhile) never closes
  // another client's handle. Id 0: owner unknown (tests, old records).
  if (it->second.client_id != 0 && req.client_id != 0 &&
      it->second.client_id != req.client_id) {
    return Errno(EBADF, absl::StrCat("handle ", handle,
                                     " belongs to another client"));
  }
  const uint64_t ino = it->second.ino;
  storage::WriteBatch b;
  b.Delete(HandleKey(handle));
  uint32_t& count = open_count_[ino];
  bool last = count <= 1;
  const bool reclaim = last && orphans_.contains(ino);
  if (reclaim) {
    auto n = LoadInode(ino);
    if (n.ok() && n->nlink == 0) DeleteInode(&b, *n);
  }
  return Commit(req, &b, {}, [&] {
    mu_.AssertHeld();  // Commit runs it under mu_
    if (it->second.reopen_pending) --pending_reopen_;
    handles_.erase(it);
    if (reclaim) orphans_.erase(ino);
    if (last) {
      open_count_.erase(ino);
    } else {
      count--;
    }
  });
}

absl::StatusOr<size_t> MdsCore::ExpireReopenWindow() {
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  if (pending_reopen_ == 0) return 0;
  // What stays open once the pending handles go.
  absl::flat_hash_map<uint64_t, uint32_t> left = open_count_;
  std::vector<uint64_t> expired;
  storage::WriteBatch b;
  for (const auto& [h, oh] : handles_) {
    if (!oh.reopen_pending) continue;
    expired.push_back(h);
    b.Delete(HandleKey(h));
    if (--left[oh.ino] == 0) left.erase(oh.ino);
  }
  std::vector<uint64_t> reclaimed;
  for (uint64_t ino : orphans_) {
    if (left.contains(ino)) continue;
    auto n = LoadInode(ino);
    if (n.ok() && n->nlink == 0) {
      DeleteInode(&b, *n);
    } else {
      b.Delete(OrphanKey(ino));
    }
    reclaimed.push_back(ino);
  }
  PutSuper(&b);
  STRIPEFS_RETURN_IF_ERROR(store_->Write(b));
  ++writes_;
  for (uint64_t h : expired) handles_.erase(h);
  open_count_ = std::move(left);
  for (uint64_t ino : reclaimed) orphans_.erase(ino);
  pending_reopen_ = 0;
  spdlog::info(
      "reopen window over: discarded {} open handles not reopened, "
      "reclaimed {} orphan inodes",
      expired.size(), reclaimed.size());
  return expired.size();
}

size_t MdsCore::PendingReopenCount() {
  absl::MutexLock l(&mu_);
  return pending_reopen_;
}

void MdsCore::ReopenWindowLoop() {
  for (;;) {
    absl::Time deadline;
    {
      absl::MutexLock l(&mu_);
      if (pending_reopen_ == 0) return;
      deadline = reopen_deadline_;
    }
    if (clock_->Now() >= deadline) break;
    absl::MutexLock l(&bg_mu_);
    if (WaitForStop(std::min(absl::Seconds(1), deadline - clock_->Now()))) {
      return;
    }
  }
  absl::StatusOr<size_t> n = ExpireReopenWindow();
  if (!n.ok()) {
    spdlog::error("discarding the open handles not reopened: {}",
                  n.status().ToString());
  }
}

size_t MdsCore::OpenHandleCount() {
  absl::ReaderMutexLock l(&mu_);
  return handles_.size();
}

}  // namespace stripefs::mds
