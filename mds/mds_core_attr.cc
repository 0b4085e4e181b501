// MdsCore: attributes (setattr, size updates), extended attributes,
// layouts and statfs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "mds/mds_core_checks.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {

enum class XattrNs { kUser, kTrusted, kSecurity };

absl::StatusOr<XattrNs> CheckXattrName(const std::string& name) {
  if (name.empty() || name.size() > kNameMax) {
    return Errno(ERANGE, "bad xattr name length");
  }
  struct {
    const char* prefix;
    XattrNs ns;
  } const kSpaces[] = {{"user.", XattrNs::kUser},
                       {"trusted.", XattrNs::kTrusted},
                       {"security.", XattrNs::kSecurity}};
  for (const auto& s : kSpaces) {
    if (absl::StartsWith(name, s.prefix)) {
      if (name.size() == strlen(s.prefix)) {
        return Errno(EINVAL, "xattr name has no suffix");
      }
      return s.ns;
    }
  }
  return Errno(EOPNOTSUPP, absl::StrCat("unsupported xattr namespace: ", name));
}

// Linux xattr_permission(): who may read or write an attribute.
absl::Status XattrPermission(const Inode& n, const Cred& cred, XattrNs ns,
                             bool write) {
  const bool root = cred.uid == 0;
  switch (ns) {
    case XattrNs::kSecurity:
      if (write && !root) return Errno(EPERM, "security.* needs root");
      return absl::OkStatus();
    case XattrNs::kTrusted:
      if (!root) {
        return write ? Errno(EPERM, "trusted.* needs root")
                     : Errno(ENODATA, "no such attribute");
      }
      return absl::OkStatus();
    case XattrNs::kUser:
      if (!S_ISREG(n.mode) && !S_ISDIR(n.mode)) {
        return write ? Errno(EPERM, "user.* only on files and directories")
                     : Errno(ENODATA, "no such attribute");
      }
      if (S_ISDIR(n.mode) && (n.mode & S_ISVTX) && write && !root &&
          cred.uid != n.uid) {
        return Errno(EPERM, "sticky directory: not the owner");
      }
      break;
  }
  if (!MayAccess(n, cred, write ? W_OK : R_OK)) {
    return Errno(EACCES, "permission denied");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Inode> MdsCore::SetAttr(const ReqId& req, const Cred& cred,
                                       uint64_t ino, const SetAttrArgs& a) {
  STRIPEFS_ASSIGN_OR_RETURN(MdLocks held, LockInodes({ino}));
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyInode(*rec);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  const bool root = cred.uid == 0;
  const bool owner = root || cred.uid == n.uid;
  const uint32_t v = a.valid;
  if (v & kSetSize) {
    if (S_ISDIR(n.mode)) return Errno(EISDIR, "truncate of a directory");
    if (!S_ISREG(n.mode)) return Errno(EINVAL, "truncate of a special file");
    if (a.size > kMaxFileSize) return Errno(EFBIG, "size too large");
    if (a.handle != 0) {
      auto it = handles_.find(a.handle);
      if (it == handles_.end() || it->second.ino != ino ||
          (it->second.client_id != 0 && req.client_id != 0 &&
           it->second.client_id != req.client_id)) {
        return Errno(EBADF, "unknown file handle");
      }
      if (!IsWriteMode(it->second.flags)) {
        return Errno(EINVAL, "file handle not open for writing");
      }
    } else {
      STRIPEFS_RETURN_IF_ERROR(NeedAccess(n, cred, W_OK));
    }
  }
  if ((v & kSetMode) && !owner) {
    // The kernel clears set-id bits before an unprivileged write by sending
    // a chmod in the writer's name; allow exactly that to a writer.
    const uint32_t cur = n.mode & 07777;
    const uint32_t want = a.mode & 07777;
    const bool only_clears_setid = (want & ~(S_ISUID | S_ISGID)) ==
                                       (cur & ~(S_ISUID | S_ISGID)) &&
                                   (want & ~cur) == 0 && want != cur;
    if (!only_clears_setid || !MayAccess(n, cred, W_OK)) {
      return Errno(EPERM, "chmod: not the owner");
    }
  }
  if ((v & kSetUid) && !root && !(cred.uid == n.uid && a.uid == n.uid)) {
    return Errno(EPERM, "chown: only root may change the owner");
  }
  if ((v & kSetGid) && !root &&
      !(cred.uid == n.uid && (a.gid == n.gid || InGroup(cred, a.gid)))) {
    return Errno(EPERM, "chgrp: not the owner or not a member of the group");
  }
  const bool atime_explicit = (v & kSetAtime) && !(v & kSetAtimeNow);
  const bool mtime_explicit = (v & kSetMtime) && !(v & kSetMtimeNow);
  if (atime_explicit || mtime_explicit) {
    if (!owner) return Errno(EPERM, "utimes: not the owner");
    if ((atime_explicit && a.atime.nsec >= 1000000000) ||
        (mtime_explicit && a.mtime.nsec >= 1000000000)) {
      return Errno(EINVAL, "nanoseconds out of range");
    }
  } else if ((v & (kSetAtimeNow | kSetMtimeNow)) && !owner &&
             !MayAccess(n, cred, W_OK)) {
    return Errno(EACCES, "utimes: no write permission");
  }

  Timespec now = Now();
  if (v & kSetSize) {
    if (a.size != n.size || a.handle != 0) {
      n.size = a.size;
      n.mtime = now;
    }
    if (!root) KillPriv(&n, cred);
  }
  if (v & (kSetUid | kSetGid)) {
    if (v & kSetUid) n.uid = a.uid;
    if (v & kSetGid) n.gid = a.gid;
    if (!S_ISDIR(n.mode)) {
      if (root) {
        KillPriv(&n, cred);
      } else {
        n.mode &= ~(S_ISUID | S_ISGID);
      }
    }
  }
  if (v & kSetMode) {
    n.mode = (n.mode & S_IFMT) | (a.mode & 07777);
    if (!root && !InGroup(cred, n.gid)) n.mode &= ~S_ISGID;
  }
  if (v & kSetAtimeNow) {
    n.atime = now;
  } else if (v & kSetAtime) {
    n.atime = a.atime;
  }
  if (v & kSetMtimeNow) {
    n.mtime = now;
  } else if (v & kSetMtime) {
    n.mtime = a.mtime;
  }
  n.ctime = now;
  storage::WriteBatch b;
  PutInode(&b, n);
  STRIPEFS_RETURN_IF_ERROR(Commit(req, &b, InodeReply(n)));
  return n;
}

absl::StatusOr<Inode> MdsCore::UpdateSize(const ReqId& req, const Cred& cred,
                                          uint64_t ino, uint64_t size,
                                          std::optional<Timespec> mtime,
                                          bool kill_priv) {
  if (size > kMaxFileSize) return Errno(EFBIG, "size too large");
  if (mtime.has_value() && mtime->nsec >= 1000000000) {
    return Errno(EINVAL, "nanoseconds out of range");
  }
  STRIPEFS_ASSIGN_OR_RETURN(MdLocks held, LockInodes({ino}));
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyInode(*rec);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  if (S_ISDIR(n.mode)) return Errno(EISDIR, "is a directory");
  if (!S_ISREG(n.mode)) return Errno(EINVAL, "not a regular file");
  if (size > n.size) n.size = size;
  Timespec now = Now();
  n.mtime = mtime.has_value() ? *mtime : now;
  n.ctime = now;
  if (kill_priv) KillPriv(&n, cred);
  storage::WriteBatch b;
  PutInode(&b, n);
  STRIPEFS_RETURN_IF_ERROR(Commit(req, &b, InodeReply(n)));
  return n;
}

absl::Status MdsCore::SetXattr(const ReqId& req, const Cred& cred,
                               uint64_t ino, const std::string& name,
                               const std::string& value, uint32_t flags) {
  STRIPEFS_ASSIGN_OR_RETURN(XattrNs ns, CheckXattrName(name));
  if (value.size() > kXattrValueMax) return Errno(E2BIG, "xattr value too large");
  if (flags & ~(kXattrCreate | kXattrReplace)) return Errno(EINVAL, "bad xattr flags");
  STRIPEFS_ASSIGN_OR_RETURN(MdLocks held, LockInodes({ino}));
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  STRIPEFS_RETURN_IF_ERROR(XattrPermission(n, cred, ns, true));
  STRIPEFS_ASSIGN_OR_RETURN(auto old, store_->Get(XattrKey(ino, name)));
  if ((flags & kXattrCreate) && old.has_value()) {
    return Errno(EEXIST, absl::StrCat("xattr ", name, " exists"));
  }
  if ((flags & kXattrReplace) && !old.has_value()) {
    return Errno(ENODATA, absl::StrCat("no xattr ", name));
  }
  storage::WriteBatch b;
  b.Put(XattrKey(ino, name), value);
  n.has_xattrs = true;
  n.ctime = Now();
  PutInode(&b, n);
  return Commit(req, &b);
}

absl::StatusOr<std::string> MdsCore::GetXattr(const Cred& cred, uint64_t ino,
                                              const std::string& name) {
  STRIPEFS_ASSIGN_OR_RETURN(XattrNs ns, CheckXattrName(name));
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  STRIPEFS_RETURN_IF_ERROR(XattrPermission(n, cred, ns, false));
  if (!n.has_xattrs) return Errno(ENODATA, absl::StrCat("no xattr ", name));
  STRIPEFS_ASSIGN_OR_RETURN(auto v, store_->Get(XattrKey(ino, name)));
  if (!v.has_value()) return Errno(ENODATA, absl::StrCat("no xattr ", name));
  return std::move(*v);
}

absl::StatusOr<std::vector<std::string>> MdsCore::ListXattr(const Cred& cred,
                                                            uint64_t ino) {
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  std::vector<std::string> names;
  if (!n.has_xattrs) return names;
  const std::string prefix = XattrPrefix(ino);
  auto it = store_->NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    std::string name(it->key().substr(prefix.size()));
    if (cred.uid != 0 && absl::StartsWith(name, "trusted.")) continue;
    names.push_back(std::move(name));
  }
  STRIPEFS_RETURN_IF_ERROR(it->status());
  return names;
}

absl::Status MdsCore::RemoveXattr(const ReqId& req, const Cred& cred,
                                  uint64_t ino, const std::string& name) {
  STRIPEFS_ASSIGN_OR_RETURN(XattrNs ns, CheckXattrName(name));
  STRIPEFS_ASSIGN_OR_RETURN(MdLocks held, LockInodes({ino}));
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  STRIPEFS_RETURN_IF_ERROR(XattrPermission(n, cred, ns, true));
  STRIPEFS_ASSIGN_OR_RETURN(auto old, store_->Get(XattrKey(ino, name)));
  if (!old.has_value()) return Errno(ENODATA, absl::StrCat("no xattr ", name));
  storage::WriteBatch b;
  b.Delete(XattrKey(ino, name));
  n.ctime = Now();
  PutInode(&b, n);
  return Commit(req, &b);
}

absl::StatusOr<Layout> MdsCore::SetLayout(const ReqId& req, const Cred& cred,
                                          uint64_t ino, uint32_t stripe_size,
                                          int32_t stripe_count,
                                          std::optional<int32_t> stripe_offset) {
  STRIPEFS_RETURN_IF_ERROR(
      ValidateLayout(stripe_size, stripe_count, stripe_offset.value_or(-1)));
  return WithPooledObjects([&]() -> absl::StatusOr<Layout> {
    STRIPEFS_ASSIGN_OR_RETURN(MdLocks held, LockInodes({ino}));
    absl::MutexLock l(&mu_);
    STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
    if (rec.has_value()) {
      STRIPEFS_ASSIGN_OR_RETURN(Inode n, ReplyInode(*rec));
      return n.layout;
    }
    STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
    if (!S_ISREG(n.mode) && !S_ISDIR(n.mode)) {
      return Errno(EINVAL, "layouts exist only on files and directories");
    }
    if (cred.uid != 0 && cred.uid != n.uid && !MayAccess(n, cred, W_OK)) {
      return Errno(EACCES, "setstripe: permission denied");
    }
    Layout spec = n.layout;
    spec.objects.clear();
    if (stripe_size != 0) spec.stripe_size = stripe_size;
    if (stripe_count != 0) spec.stripe_count = stripe_count;
    if (stripe_offset.has_value()) spec.stripe_offset = *stripe_offset;
    storage::WriteBatch b;
    if (S_ISDIR(n.mode)) {
      n.layout = spec;
    } else {
      if (n.size > 0) return Errno(EBUSY, "file already has data");
      if (stripe_count == 0 && !stripe_offset.has_value() &&
          !n.layout.objects.empty()) {
        // Only the stripe size changes: keep the objects.
        spec.stripe_count = n.layout.stripe_count;
        spec.objects = n.layout.objects;
        n.layout = spec;
      } else {
        STRIPEFS_ASSIGN_OR_RETURN(auto objects, AllocateObjects(spec, &b));
        QueueDestroy(&b, n.layout);
        spec.stripe_count = static_cast<int32_t>(objects.size());
        spec.objects = std::move(objects);
        n.layout = spec;
      }
    }
    n.ctime = Now();
    PutInode(&b, n);
    STRIPEFS_RETURN_IF_ERROR(Commit(req, &b, InodeReply(n)));
    return n.layout;
  });
}

absl::StatusOr<Layout> MdsCore::GetLayout(const Cred& cred, uint64_t ino) {
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  if (!S_ISREG(n.mode) && !S_ISDIR(n.mode)) {
    return Errno(ENODATA, "no layout on this file type");
  }
  return n.layout;
}

std::vector<OstUsage> MdsCore::OstUsages() {
  std::vector<OstUsage> out;
  for (const auto& t : osts_->Targets()) {
    OstUsage u;
    u.index = t.index;
    auto s = osts_->Statfs(t.index);
    if (s.ok()) {
      u.ok = true;
      u.statfs = *s;
    } else {
      spdlog::warn("statfs of ost{}: {}", t.index, s.status().ToString());
    }
    out.push_back(u);
  }
  return out;
}

absl::StatusOr<StatfsResult> MdsCore::Statfs() {
  StatfsResult r;
  for (const auto& u : OstUsages()) {
    if (!u.ok) continue;
    r.blocks += u.statfs.total_bytes / r.bsize;
    r.bfree += u.statfs.free_bytes / r.bsize;
    r.bavail += u.statfs.avail_bytes / r.bsize;
  }
  uint64_t used = InodeCount();
  r.ffree = used < kMaxInodes ? kMaxInodes - used : 0;
  r.files = used + r.ffree;
  return r;
}

}  // namespace stripefs::mds
