// MdsCore: reply records — every modifying request that commits leaves
// its reply in the same batch, and a resend is answered from it (exactly
// once across resends and restarts); their pruning after
// reply_retention.
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {

ReplyRec MdsCore::InodeReply(const Inode& n) {
  ReplyRec r;
  r.ino = n.ino;
  r.has_inode = true;
  r.inode = n;
  return r;
}

ReplyRec MdsCore::OpenReply(const OpenResult& r) {
  ReplyRec rec = InodeReply(r.inode);
  rec.handle = r.handle;
  rec.truncated = r.truncated;
  return rec;
}

absl::StatusOr<std::optional<ReplyRec>> MdsCore::FindReply(const ReqId& req) {
  if (req.client_id == 0) return std::optional<ReplyRec>();
  STRIPEFS_ASSIGN_OR_RETURN(auto v,
                            store_->Get(ReplyKey(req.client_id, req.xid)));
  if (!v.has_value()) return std::optional<ReplyRec>();
  STRIPEFS_ASSIGN_OR_RETURN(ReplyRec rec, DecodeReply(*v));
  spdlog::info(
      "client {} xid {}: resent request answered from its reply record "
      "(committed at {})",
      req.client_id, req.xid, rec.commit_sec);
  return std::optional<ReplyRec>(std::move(rec));
}

absl::StatusOr<Inode> MdsCore::ReplyInode(const ReplyRec& rec) {
  absl::StatusOr<Inode> n = LoadInode(rec.ino);
  if (n.ok() || ToErrno(n.status()) != ENOENT || !rec.has_inode) return n;
  // Removed since it was committed: answer what the request did.
  return rec.inode;
}

absl::StatusOr<OpenResult> MdsCore::ReplyOpen(const ReqId& req,
                                              const ReplyRec& rec) {
  auto it = handles_.find(rec.handle);
  if (it == handles_.end() || it->second.ino != rec.ino) {
    return Errno(ESTALE,
                 absl::StrCat("open handle ", rec.handle, " of inode ",
                              rec.ino, " that this request (client ",
                              req.client_id, " xid ", req.xid,
                              ") opened is gone (forced start, eviction or "
                              "reopen window over): open the file again"));
  }
  if (it->second.client_id != 0 && req.client_id != 0 &&
      it->second.client_id != req.client_id) {
    return Errno(ESTALE, absl::StrCat("open handle ", rec.handle,
                                      " that this request (client ",
                                      req.client_id, " xid ", req.xid,
                                      ") opened belongs to client ",
                                      it->second.client_id));
  }
  if (it->second.reopen_pending) {
    // Kept from the previous instance, whose reply was lost: the resend
    // is the client taking it up.
    it->second.reopen_pending = false;
    --pending_reopen_;
  }
  OpenResult out;
  STRIPEFS_ASSIGN_OR_RETURN(out.inode, ReplyInode(rec));
  out.handle = rec.handle;
  // The client truncates the OSS objects when told so: only if nothing
  // changed the file since the open truncated it, or it would zero what
  // another mount wrote since (as far as the MDS knows: size and times).
  out.truncated = rec.truncated && rec.has_inode &&
                  out.inode.size == rec.inode.size &&
                  out.inode.mtime == rec.inode.mtime &&
                  out.inode.ctime == rec.inode.ctime;
  return out;
}

absl::StatusOr<size_t> MdsCore::PruneReplyRecords() {
  // Before this instance ran for the retention, a record of a previous one
  // may be younger than the retention whatever its stamp says (the wall
  // clock may have stepped while it was down); this instance's records
  // are all younger anyway.
  if (steady_->Now() - start_steady_ < options_.reply_retention) return 0;
  const int64_t cutoff =
      absl::ToUnixSeconds(RecordNow() - options_.reply_retention);
  // Every index key below `end` is expired; nothing else is read.
  const std::string end = ReplyTimeKey(cutoff, 0, 0);
  size_t pruned = 0;
  for (;;) {
    storage::WriteBatch b;
    size_t n = 0;
    {
      auto it = store_->NewIterator();
      for (it->Seek(kReplyTimePrefix);
           it->Valid() && it->key() < end && n < 4096; it->Next()) {
        const std::string_view k = it->key();
        if (k.size() == kReplyTimeKeySize) {
          b.Delete(ReplyKey(storage::DecodeBE64(k.substr(9)),
                            storage::DecodeBE64(k.substr(17))));
        }
        b.Delete(k);
        ++n;
      }
      STRIPEFS_RETURN_IF_ERROR(it->status());
    }
    if (n == 0) break;
    STRIPEFS_RETURN_IF_ERROR(store_->Write(b));
    pruned += n;
    if (n < 4096) break;
  }
  if (pruned > 0) {
    spdlog::debug("pruned {} reply records older than {}", pruned,
                  absl::FormatDuration(options_.reply_retention));
  }
  return pruned;
}

void MdsCore::PruneLoop() {
  for (;;) {
    {
      absl::MutexLock l(&bg_mu_);
      if (WaitForStop(options_.reply_sweep_interval)) return;
    }
    absl::StatusOr<size_t> n = PruneReplyRecords();
    if (!n.ok()) {
      spdlog::warn("pruning reply records: {}", n.status().ToString());
    }
  }
}

}  // namespace stripefs::mds
