// MdsCore::Rename in named steps: check the arguments; lock both parents
// and what both names resolve to (RetryIfMoved); under mu_ load the
// directories and entries, then the inodes, checking that the move is
// allowed; write it (an exchange, or a move that may replace the target)
// and the directories' times in one batch.
#include <sys/stat.h>

#include <cerrno>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "mds/mds_core_checks.h"

namespace stripefs::mds {

// One rename as it is loaded and checked under mu_.
struct MdsCore::RenameOp {
  RenameOp(uint64_t parent, const std::string& name, uint64_t new_parent,
           const std::string& new_name, uint32_t flags)
      : parent(parent),
        name(name),
        new_parent(new_parent),
        new_name(new_name),
        flags(flags) {}
  const uint64_t parent;
  const std::string& name;
  const uint64_t new_parent;
  const std::string& new_name;
  const uint32_t flags;
  bool same_dir() const { return parent == new_parent; }
  bool exchange() const { return flags & kRenameExchange; }

  Inode sp;           // source directory
  Inode dp_storage;   // target directory unless same_dir()
  Inode& dp() { return same_dir() ? sp : dp_storage; }
  Dentry sd;                  // the source entry
  std::optional<Dentry> dd;   // the target entry, if any
  Inode src;
  std::optional<Inode> dst;
};

namespace {

absl::Status CheckRenameArgs(const std::string& name,
                             const std::string& new_name, uint32_t flags) {
  if ((flags & ~(kRenameNoReplace | kRenameExchange)) != 0 ||
      flags == (kRenameNoReplace | kRenameExchange)) {
    return Errno(EINVAL, "bad rename flags");
  }
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(name));
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(new_name));
  if (IsDots(name)) return Errno(EBUSY, "cannot rename '.' or '..'");
  if (IsDots(new_name)) {
    return (flags & kRenameNoReplace)
               ? Errno(EEXIST, "target exists")
               : Errno(EBUSY, "cannot rename onto '.' or '..'");
  }
  STRIPEFS_RETURN_IF_ERROR(CheckName(name));
  return CheckName(new_name);
}

absl::Status IntoOwnSubtree() {
  return Errno(EINVAL, "cannot move a directory into its own subtree");
}

}  // namespace

absl::Status MdsCore::Rename(const ReqId& req, const Cred& cred,
                             uint64_t parent, const std::string& name,
                             uint64_t new_parent, const std::string& new_name,
                             uint32_t flags) {
  STRIPEFS_RETURN_IF_ERROR(CheckRenameArgs(name, new_name, flags));
  return RetryIfMoved(
      {parent, new_parent}, {{parent, name}, {new_parent, new_name}},
      /*exempt=*/0, [&](NameLocks& locks) {
        RenameOp op(parent, name, new_parent, new_name, flags);
        return RenameLocked(req, cred, op, locks);
      });
}

absl::Status MdsCore::RenameLocked(const ReqId& req, const Cred& cred,
                                   RenameOp& op, NameLocks& locks) {
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  bool same_inode = false;
  STRIPEFS_RETURN_IF_ERROR(LoadRenameEntries(cred, op, locks, &same_inode));
  if (same_inode) return absl::OkStatus();
  STRIPEFS_RETURN_IF_ERROR(LoadRenameInodes(cred, op));

  const Timespec now = Now();
  storage::WriteBatch b;
  if (op.exchange()) {
    WriteExchange(op, now, &b);
  } else {
    WriteReplace(op, &b);
  }
  op.src.ctime = now;
  PutInode(&b, op.src);
  op.sp.mtime = op.sp.ctime = now;
  PutInode(&b, op.sp);
  if (!op.same_dir()) {
    op.dp().mtime = op.dp().ctime = now;
    PutInode(&b, op.dp());
  }
  return Commit(req, &b);
}

absl::Status MdsCore::LoadRenameEntries(const Cred& cred, RenameOp& op,
                                        NameLocks& locks, bool* same_inode) {
  STRIPEFS_ASSIGN_OR_RETURN(op.sp, LoadDir(op.parent));
  if (!op.same_dir()) {
    STRIPEFS_ASSIGN_OR_RETURN(op.dp_storage, LoadDir(op.new_parent));
  }
  Inode& dp = op.dp();
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(op.sp, cred, X_OK));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dp, cred, X_OK));
  STRIPEFS_ASSIGN_OR_RETURN(auto sd, LoadDentry(op.parent, op.name));
  STRIPEFS_ASSIGN_OR_RETURN(op.dd, LoadDentry(op.new_parent, op.new_name));
  const bool held_src = locks.Holds(0, sd.has_value() ? sd->ino : 0);
  const bool held_dst = locks.Holds(1, op.dd.has_value() ? op.dd->ino : 0);
  if (!held_src || !held_dst) {
    return Errno(EAGAIN, "rename: a name moved while being locked");
  }
  if (!sd.has_value()) return Errno(ENOENT, absl::StrCat("no entry ", op.name));
  op.sd = *sd;
  if (op.exchange() && !op.dd.has_value()) {
    return Errno(ENOENT, absl::StrCat("no entry ", op.new_name));
  }
  if ((op.flags & kRenameNoReplace) && op.dd.has_value()) {
    return Errno(EEXIST, absl::StrCat(op.new_name, " exists"));
  }
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(op.sp, cred, W_OK | X_OK));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dp, cred, W_OK | X_OK));
  // Same inode (the same entry, or two hard links): nothing to do.
  if (op.dd.has_value() && op.dd->ino == op.sd.ino) {
    *same_inode = true;
    return absl::OkStatus();
  }
  if (dp.nlink == 0) return Errno(ENOENT, "target directory was removed");
  return absl::OkStatus();
}

absl::Status MdsCore::LoadRenameInodes(const Cred& cred, RenameOp& op) {
  STRIPEFS_ASSIGN_OR_RETURN(op.src, LoadInode(op.sd.ino));
  if (op.dd.has_value()) {
    STRIPEFS_ASSIGN_OR_RETURN(op.dst, LoadInode(op.dd->ino));
  }
  STRIPEFS_RETURN_IF_ERROR(CheckSticky(op.sp, op.src, cred));
  if (op.dst.has_value()) {
    STRIPEFS_RETURN_IF_ERROR(CheckSticky(op.dp(), *op.dst, cred));
  }
  const bool src_dir = S_ISDIR(op.src.mode);
  const bool dst_dir = op.dst.has_value() && S_ISDIR(op.dst->mode);
  if (src_dir && !op.same_dir()) {
    if (IsAncestor(op.src.ino, op.new_parent)) return IntoOwnSubtree();
    STRIPEFS_RETURN_IF_ERROR(NeedAccess(op.src, cred, W_OK));
  }
  if (op.exchange()) {
    if (dst_dir && !op.same_dir()) {
      if (IsAncestor(op.dst->ino, op.parent)) return IntoOwnSubtree();
      STRIPEFS_RETURN_IF_ERROR(NeedAccess(*op.dst, cred, W_OK));
    }
  } else if (op.dst.has_value()) {
    if (src_dir && !dst_dir) {
      return Errno(ENOTDIR, absl::StrCat(op.new_name, " is not a directory"));
    }
    if (!src_dir && dst_dir) {
      return Errno(EISDIR, absl::StrCat(op.new_name, " is a directory"));
    }
    if (dst_dir && op.dst->nentries > 0) {
      return Errno(ENOTEMPTY, absl::StrCat(op.new_name, " is not empty"));
    }
  }
  return absl::OkStatus();
}

void MdsCore::WriteExchange(RenameOp& op, const Timespec& now,
                            storage::WriteBatch* b) {
  Inode& src = op.src;
  Inode& dst = *op.dst;
  Inode& dp = op.dp();
  const uint32_t src_type = src.mode & S_IFMT;
  const uint32_t dst_type = dst.mode & S_IFMT;
  b->Put(DentryKey(op.parent, op.name),
         EncodeDentry({dst.ino, dst_type, op.sd.cookie}));
  b->Put(CookieKey(op.parent, op.sd.cookie),
         EncodeCookieEntry({dst.ino, dst_type, op.name}));
  b->Put(DentryKey(op.new_parent, op.new_name),
         EncodeDentry({src.ino, src_type, op.dd->cookie}));
  b->Put(CookieKey(op.new_parent, op.dd->cookie),
         EncodeCookieEntry({src.ino, src_type, op.new_name}));
  if (!op.same_dir()) {
    if (S_ISDIR(src.mode)) {
      src.parent = op.new_parent;
      op.sp.nlink--;
      dp.nlink++;
    }
    if (S_ISDIR(dst.mode)) {
      dst.parent = op.parent;
      dp.nlink--;
      op.sp.nlink++;
    }
  }
  dst.ctime = now;
  PutInode(b, dst);
}

void MdsCore::WriteReplace(RenameOp& op, storage::WriteBatch* b) {
  Inode& dp = op.dp();
  const bool src_dir = S_ISDIR(op.src.mode);
  b->Delete(DentryKey(op.parent, op.name));
  b->Delete(CookieKey(op.parent, op.sd.cookie));
  op.sp.nentries--;
  if (op.dst.has_value()) {
    b->Delete(CookieKey(op.new_parent, op.dd->cookie));
    dp.nentries--;
    if (S_ISDIR(op.dst->mode)) dp.nlink--;
    DropLink(b, &*op.dst);
  }
  AddEntry(b, &dp, op.new_name, op.src.ino, op.src.mode & S_IFMT);
  if (src_dir && !op.same_dir()) {
    op.sp.nlink--;
    dp.nlink++;
    op.src.parent = op.new_parent;
  }
}

}  // namespace stripefs::mds
