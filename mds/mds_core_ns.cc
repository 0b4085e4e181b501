// MdsCore namespace operations: lookup, attributes, create/open/release,
// mknod, mkdir, symlink, link, unlink/rmdir, rename, readdir.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {

bool IsDots(const std::string& name) { return name == "." || name == ".."; }

absl::Status CheckNameLength(const std::string& name) {
  if (name.size() > kNameMax) {
    return Errno(ENAMETOOLONG,
                 absl::StrCat("name of ", name.size(), " bytes is too long"));
  }
  return absl::OkStatus();
}

// A name a new entry may get ("." and ".." are handled by callers).
absl::Status CheckName(const std::string& name) {
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(name));
  if (name.empty()) return Errno(EINVAL, "empty name");
  if (name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Errno(EINVAL, "name contains '/' or NUL");
  }
  return absl::OkStatus();
}

absl::Status NeedAccess(const Inode& n, const Cred& cred, uint32_t mask) {
  if (MayAccess(n, cred, mask)) return absl::OkStatus();
  return Errno(EACCES, absl::StrCat("permission denied on inode ", n.ino));
}

// Sticky directory: only the owner of the entry or of the directory, or
// root, may remove or rename it.
absl::Status CheckSticky(const Inode& dir, const Inode& victim,
                         const Cred& cred) {
  if ((dir.mode & S_ISVTX) && cred.uid != 0 && cred.uid != victim.uid &&
      cred.uid != dir.uid) {
    return Errno(EPERM, "sticky directory: not the owner");
  }
  return absl::OkStatus();
}

// Clears set-user-id, and set-group-id when the file is group-executable or
// the caller is neither privileged nor in the file's group (Linux's
// setattr_should_drop_sgid), as a write, truncate or chown must.
void KillPriv(Inode* n, const Cred& cred) {
  n->mode &= ~S_ISUID;
  if ((n->mode & S_IXGRP) || (cred.uid != 0 && !InGroup(cred, n->gid))) {
    n->mode &= ~S_ISGID;
  }
}

// The kernel opens a file for execve with this bit (__FMODE_EXEC) in the
// open flags it passes on; such an open needs execute permission.
constexpr uint32_t kOpenExec = 040;

bool IsWriteMode(uint32_t flags) {
  return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR;
}

}  // namespace

absl::StatusOr<Inode> MdsCore::Lookup(const Cred& cred, uint64_t parent,
                                      const std::string& name) {
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(name));
  if (name.empty()) return Errno(ENOENT, "empty name");
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode dir, LoadDir(parent));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, X_OK));
  if (name == ".") return dir;
  if (name == "..") return LoadInode(dir.parent == 0 ? kRootIno : dir.parent);
  STRIPEFS_ASSIGN_OR_RETURN(auto d, LoadDentry(parent, name));
  if (!d.has_value()) return Errno(ENOENT, absl::StrCat("no entry ", name));
  return LoadInode(d->ino);
}

absl::StatusOr<Inode> MdsCore::GetAttr(uint64_t ino) {
  absl::ReaderMutexLock l(&mu_);
  return LoadInode(ino);
}

absl::StatusOr<Inode> MdsCore::SetAttr(const ReqId& req, const Cred& cred,
                                       uint64_t ino, const SetAttrArgs& a) {
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

absl::StatusOr<Inode> MdsCore::MakeNode(const ReqId& req, const Cred& cred,
                                        uint64_t parent,
                                        const std::string& name,
                                        uint32_t mode, uint64_t rdev,
                                        const std::string& symlink,
                                        std::optional<uint32_t> open_flags,
                                        OpenResult* open_out) {
  SuperUndo undo(this);
  STRIPEFS_RETURN_IF_ERROR(CheckName(name));
  STRIPEFS_ASSIGN_OR_RETURN(Inode dir, LoadDir(parent));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, X_OK));
  if (IsDots(name)) {
    if (open_flags.has_value()) return Errno(EISDIR, "is a directory");
    return Errno(EEXIST, absl::StrCat(name, " exists"));
  }
  if (dir.nlink == 0) return Errno(ENOENT, "directory was removed");
  STRIPEFS_ASSIGN_OR_RETURN(auto existing, LoadDentry(parent, name));
  storage::WriteBatch b;
  if (existing.has_value()) {
    if (!open_flags.has_value() || (*open_flags & O_EXCL)) {
      return Errno(EEXIST, absl::StrCat(name, " exists"));
    }
    STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(existing->ino));
    if (S_ISDIR(n.mode)) return Errno(EISDIR, absl::StrCat(name, " is a directory"));
    STRIPEFS_ASSIGN_OR_RETURN(
        *open_out, OpenLocked(req, cred, std::move(n), *open_flags, &b));
    STRIPEFS_RETURN_IF_ERROR(Commit(req, &b, OpenReply(*open_out), [&] {
      mu_.AssertHeld();  // Commit runs it under mu_
      handles_[open_out->handle] = {open_out->inode.ino, *open_flags,
                                    req.client_id};
      open_count_[open_out->inode.ino]++;
    }));
    return open_out->inode;
  }
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, W_OK | X_OK));

  const uint32_t type = mode & S_IFMT;
  Timespec now = Now();
  Inode n;
  n.ino = sb_.next_ino;
  n.mode = mode;
  n.uid = cred.uid;
  n.gid = cred.gid;
  if (dir.mode & S_ISGID) {
    n.gid = dir.gid;
    if (type == S_IFDIR) n.mode |= S_ISGID;
  }
  if (type != S_IFDIR && (n.mode & S_ISGID) && (n.mode & S_IXGRP) &&
      cred.uid != 0 && !InGroup(cred, n.gid)) {
    n.mode &= ~S_ISGID;
  }
  n.atime = n.mtime = n.ctime = now;
  if (type == S_IFDIR) {
    n.nlink = 2;
    n.parent = parent;
    n.layout = dir.layout;
    n.layout.objects.clear();
  } else {
    n.nlink = 1;
  }
  if (type == S_IFREG) {
    STRIPEFS_ASSIGN_OR_RETURN(auto objects, AllocateObjects(dir.layout, &b));
    n.layout.stripe_size = dir.layout.stripe_size;
    n.layout.stripe_count = static_cast<int32_t>(objects.size());
    n.layout.stripe_offset = dir.layout.stripe_offset;
    n.layout.objects = std::move(objects);
  }
  if (type == S_IFLNK) {
    n.symlink = symlink;
    n.size = symlink.size();
  }
  if (type == S_IFCHR || type == S_IFBLK) n.rdev = rdev;
  sb_.next_ino++;
  sb_.inode_count++;
  AddEntry(&b, &dir, name, n.ino, type);
  if (type == S_IFDIR) dir.nlink++;
  dir.mtime = dir.ctime = now;
  PutInode(&b, dir);
  PutInode(&b, n);
  if (open_flags.has_value()) {
    // The creator may open what it created whatever the mode says.
    open_out->inode = n;
    open_out->handle = sb_.next_handle++;
    b.Put(HandleKey(open_out->handle),
          EncodeHandle({n.ino, *open_flags, req.client_id}));
  }
  PutSuper(&b);
  STRIPEFS_RETURN_IF_ERROR(Commit(
      req, &b, open_flags.has_value() ? OpenReply(*open_out) : InodeReply(n),
      [&] {
        mu_.AssertHeld();  // Commit runs it under mu_
        if (open_flags.has_value()) {
          handles_[open_out->handle] = {n.ino, *open_flags, req.client_id};
          open_count_[n.ino]++;
        }
      }));
  return n;
}

absl::StatusOr<OpenResult> MdsCore::Create(const ReqId& req, const Cred& cred,
                                           uint64_t parent,
                                           const std::string& name,
                                           uint32_t mode, uint32_t flags) {
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyOpen(req, *rec);
  OpenResult out;
  STRIPEFS_ASSIGN_OR_RETURN(
      Inode n, MakeNode(req, cred, parent, name, S_IFREG | (mode & 07777), 0,
                        "", flags, &out));
  (void)n;
  return out;
}

absl::StatusOr<Inode> MdsCore::Mknod(const ReqId& req, const Cred& cred,
                                     uint64_t parent, const std::string& name,
                                     uint32_t mode, uint64_t rdev) {
  uint32_t type = mode & S_IFMT;
  switch (type) {
    case 0:
      type = S_IFREG;
      break;
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
      break;
    case S_IFCHR:
    case S_IFBLK:
      if (cred.uid != 0) return Errno(EPERM, "mknod of a device needs root");
      break;
    case S_IFDIR:
      return Errno(EPERM, "mknod cannot make directories");
    default:
      return Errno(EINVAL, "bad file type for mknod");
  }
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyInode(*rec);
  return MakeNode(req, cred, parent, name, type | (mode & 07777), rdev, "",
                  std::nullopt, nullptr);
}

absl::StatusOr<Inode> MdsCore::Mkdir(const ReqId& req, const Cred& cred,
                                     uint64_t parent, const std::string& name,
                                     uint32_t mode) {
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyInode(*rec);
  return MakeNode(req, cred, parent, name, S_IFDIR | (mode & 07777), 0, "",
                  std::nullopt, nullptr);
}

absl::StatusOr<Inode> MdsCore::Symlink(const ReqId& req, const Cred& cred,
                                       uint64_t parent,
                                       const std::string& name,
                                       const std::string& target) {
  if (target.empty()) return Errno(ENOENT, "empty symlink target");
  if (target.size() > kSymlinkMax) {
    return Errno(ENAMETOOLONG, "symlink target too long");
  }
  if (target.find('\0') != std::string::npos) {
    return Errno(EINVAL, "symlink target contains NUL");
  }
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyInode(*rec);
  return MakeNode(req, cred, parent, name, S_IFLNK | 0777, 0, target,
                  std::nullopt, nullptr);
}

absl::StatusOr<Inode> MdsCore::Link(const ReqId& req, const Cred& cred,
                                    uint64_t ino, uint64_t new_parent,
                                    const std::string& new_name) {
  STRIPEFS_RETURN_IF_ERROR(CheckName(new_name));
  absl::MutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return ReplyInode(*rec);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  STRIPEFS_ASSIGN_OR_RETURN(Inode dir, LoadDir(new_parent));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, X_OK));
  if (IsDots(new_name)) return Errno(EEXIST, absl::StrCat(new_name, " exists"));
  STRIPEFS_ASSIGN_OR_RETURN(auto existing, LoadDentry(new_parent, new_name));
  if (existing.has_value()) {
    return Errno(EEXIST, absl::StrCat(new_name, " exists"));
  }
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, W_OK | X_OK));
  if (S_ISDIR(n.mode)) return Errno(EPERM, "hard link to a directory");
  if (n.nlink == 0) return Errno(ENOENT, "file was removed");
  if (n.nlink >= 65000) return Errno(EMLINK, "too many links");
  if (dir.nlink == 0) return Errno(ENOENT, "directory was removed");
  Timespec now = Now();
  storage::WriteBatch b;
  n.nlink++;
  n.ctime = now;
  AddEntry(&b, &dir, new_name, n.ino, n.mode & S_IFMT);
  dir.mtime = dir.ctime = now;
  PutInode(&b, dir);
  PutInode(&b, n);
  STRIPEFS_RETURN_IF_ERROR(Commit(req, &b, InodeReply(n)));
  return n;
}

absl::Status MdsCore::Remove(const ReqId& req, const Cred& cred,
                             uint64_t parent, const std::string& name,
                             bool dir_op) {
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(name));
  if (name == ".") {
    return dir_op ? Errno(EINVAL, "cannot remove '.'")
                  : Errno(EISDIR, "'.' is a directory");
  }
  if (name == "..") {
    return dir_op ? Errno(ENOTEMPTY, "cannot remove '..'")
                  : Errno(EISDIR, "'..' is a directory");
  }
  STRIPEFS_RETURN_IF_ERROR(CheckName(name));
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  STRIPEFS_ASSIGN_OR_RETURN(Inode dir, LoadDir(parent));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, X_OK));
  STRIPEFS_ASSIGN_OR_RETURN(auto d, LoadDentry(parent, name));
  if (!d.has_value()) return Errno(ENOENT, absl::StrCat("no entry ", name));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, W_OK | X_OK));
  STRIPEFS_ASSIGN_OR_RETURN(Inode victim, LoadInode(d->ino));
  const bool is_dir = S_ISDIR(victim.mode);
  if (dir_op && !is_dir) return Errno(ENOTDIR, absl::StrCat(name, " is not a directory"));
  if (!dir_op && is_dir) return Errno(EISDIR, absl::StrCat(name, " is a directory"));
  STRIPEFS_RETURN_IF_ERROR(CheckSticky(dir, victim, cred));
  if (is_dir && victim.nentries > 0) {
    return Errno(ENOTEMPTY, absl::StrCat(name, " is not empty"));
  }
  storage::WriteBatch b;
  b.Delete(DentryKey(parent, name));
  b.Delete(CookieKey(parent, d->cookie));
  dir.nentries--;
  if (is_dir) dir.nlink--;
  dir.mtime = dir.ctime = Now();
  PutInode(&b, dir);
  DropLink(&b, &victim);
  return Commit(req, &b);
}

absl::Status MdsCore::Rename(const ReqId& req, const Cred& cred,
                             uint64_t parent, const std::string& name,
                             uint64_t new_parent, const std::string& new_name,
                             uint32_t flags) {
  if ((flags & ~(kRenameNoReplace | kRenameExchange)) != 0 ||
      flags == (kRenameNoReplace | kRenameExchange)) {
    return Errno(EINVAL, "bad rename flags");
  }
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(name));
  STRIPEFS_RETURN_IF_ERROR(CheckNameLength(new_name));
  if (IsDots(name)) return Errno(EBUSY, "cannot rename '.' or '..'");
  if (IsDots(new_name)) {
    return (flags & kRenameNoReplace) ? Errno(EEXIST, "target exists")
                                      : Errno(EBUSY, "cannot rename onto '.' or '..'");
  }
  STRIPEFS_RETURN_IF_ERROR(CheckName(name));
  STRIPEFS_RETURN_IF_ERROR(CheckName(new_name));
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  const bool same_dir = parent == new_parent;
  STRIPEFS_ASSIGN_OR_RETURN(Inode sp, LoadDir(parent));
  Inode dp_storage;
  if (!same_dir) {
    STRIPEFS_ASSIGN_OR_RETURN(dp_storage, LoadDir(new_parent));
  }
  Inode& dp = same_dir ? sp : dp_storage;
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(sp, cred, X_OK));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dp, cred, X_OK));
  STRIPEFS_ASSIGN_OR_RETURN(auto sd, LoadDentry(parent, name));
  if (!sd.has_value()) return Errno(ENOENT, absl::StrCat("no entry ", name));
  STRIPEFS_ASSIGN_OR_RETURN(auto dd, LoadDentry(new_parent, new_name));
  const bool exchange = flags & kRenameExchange;
  if (exchange && !dd.has_value()) {
    return Errno(ENOENT, absl::StrCat("no entry ", new_name));
  }
  if ((flags & kRenameNoReplace) && dd.has_value()) {
    return Errno(EEXIST, absl::StrCat(new_name, " exists"));
  }
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(sp, cred, W_OK | X_OK));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dp, cred, W_OK | X_OK));
  // Same inode (the same entry, or two hard links): nothing to do.
  if (dd.has_value() && dd->ino == sd->ino) return absl::OkStatus();
  if (dp.nlink == 0) return Errno(ENOENT, "target directory was removed");

  STRIPEFS_ASSIGN_OR_RETURN(Inode src, LoadInode(sd->ino));
  std::optional<Inode> dst;
  if (dd.has_value()) {
    STRIPEFS_ASSIGN_OR_RETURN(dst, LoadInode(dd->ino));
  }
  STRIPEFS_RETURN_IF_ERROR(CheckSticky(sp, src, cred));
  if (dst.has_value()) STRIPEFS_RETURN_IF_ERROR(CheckSticky(dp, *dst, cred));
  const bool src_dir = S_ISDIR(src.mode);
  const bool dst_dir = dst.has_value() && S_ISDIR(dst->mode);
  if (src_dir && !same_dir) {
    if (IsAncestor(src.ino, new_parent)) {
      return Errno(EINVAL, "cannot move a directory into its own subtree");
    }
    STRIPEFS_RETURN_IF_ERROR(NeedAccess(src, cred, W_OK));
  }
  if (exchange) {
    if (dst_dir && !same_dir) {
      if (IsAncestor(dst->ino, parent)) {
        return Errno(EINVAL, "cannot move a directory into its own subtree");
      }
      STRIPEFS_RETURN_IF_ERROR(NeedAccess(*dst, cred, W_OK));
    }
  } else if (dst.has_value()) {
    if (src_dir && !dst_dir) return Errno(ENOTDIR, absl::StrCat(new_name, " is not a directory"));
    if (!src_dir && dst_dir) return Errno(EISDIR, absl::StrCat(new_name, " is a directory"));
    if (dst_dir && dst->nentries > 0) {
      return Errno(ENOTEMPTY, absl::StrCat(new_name, " is not empty"));
    }
  }

  Timespec now = Now();
  storage::WriteBatch b;
  const uint32_t src_type = src.mode & S_IFMT;
  if (exchange) {
    const uint32_t dst_type = dst->mode & S_IFMT;
    b.Put(DentryKey(parent, name), EncodeDentry({dst->ino, dst_type, sd->cookie}));
    b.Put(CookieKey(parent, sd->cookie), EncodeCookieEntry({dst->ino, dst_type, name}));
    b.Put(DentryKey(new_parent, new_name), EncodeDentry({src.ino, src_type, dd->cookie}));
    b.Put(CookieKey(new_parent, dd->cookie),
          EncodeCookieEntry({src.ino, src_type, new_name}));
    if (!same_dir) {
      if (src_dir) {
        src.parent = new_parent;
        sp.nlink--;
        dp.nlink++;
      }
      if (dst_dir) {
        dst->parent = parent;
        dp.nlink--;
        sp.nlink++;
      }
    }
    dst->ctime = now;
    PutInode(&b, *dst);
  } else {
    b.Delete(DentryKey(parent, name));
    b.Delete(CookieKey(parent, sd->cookie));
    sp.nentries--;
    if (dst.has_value()) {
      b.Delete(CookieKey(new_parent, dd->cookie));
      dp.nentries--;
      if (dst_dir) dp.nlink--;
      DropLink(&b, &*dst);
    }
    AddEntry(&b, &dp, new_name, src.ino, src_type);
    if (src_dir && !same_dir) {
      sp.nlink--;
      dp.nlink++;
      src.parent = new_parent;
    }
  }
  src.ctime = now;
  PutInode(&b, src);
  sp.mtime = sp.ctime = now;
  PutInode(&b, sp);
  if (!same_dir) {
    dp.mtime = dp.ctime = now;
    PutInode(&b, dp);
  }
  return Commit(req, &b);
}

absl::StatusOr<std::string> MdsCore::Readlink(const Cred& cred, uint64_t ino) {
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  if (!S_ISLNK(n.mode)) return Errno(EINVAL, "not a symlink");
  return n.symlink;
}

absl::StatusOr<ReaddirResult> MdsCore::Readdir(const Cred& cred, uint64_t ino,
                                               uint64_t cookie,
                                               uint32_t max_entries,
                                               bool plus) {
  uint32_t max = max_entries == 0 ? 1024 : std::min<uint32_t>(max_entries, 8192);
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode dir, LoadDir(ino));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, R_OK));
  ReaddirResult out;
  if (cookie == UINT64_MAX || cookie >= dir.next_cookie) {
    out.eof = true;
    return out;
  }
  const std::string prefix = CookiePrefix(ino);
  auto it = store_->NewIterator();
  out.eof = true;
  for (it->Seek(CookieKey(ino, cookie + 1));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (out.entries.size() >= max) {
      out.eof = false;
      break;
    }
    if (it->key().size() != prefix.size() + 8) continue;
    STRIPEFS_ASSIGN_OR_RETURN(CookieEntry c, DecodeCookieEntry(it->value()));
    DirEntryOut e;
    e.cookie = storage::DecodeBE64(it->key().substr(prefix.size()));
    e.name = std::move(c.name);
    e.ino = c.ino;
    e.type = c.type;
    if (plus) {
      auto n = LoadInode(c.ino);
      if (!n.ok()) {
        spdlog::warn("readdir of {}: entry {} -> inode {}: {}", ino, e.name,
                     c.ino, n.status().ToString());
        continue;
      }
      e.inode = std::move(*n);
    }
    out.entries.push_back(std::move(e));
  }
  STRIPEFS_RETURN_IF_ERROR(it->status());
  return out;
}

absl::Status MdsCore::Access(const Cred& cred, uint64_t ino, uint32_t mask) {
  absl::ReaderMutexLock l(&mu_);
  STRIPEFS_ASSIGN_OR_RETURN(Inode n, LoadInode(ino));
  if ((mask & 7) == 0) return absl::OkStatus();
  return NeedAccess(n, cred, mask & 7);
}

absl::StatusOr<Inode> MdsCore::UpdateSize(const ReqId& req, const Cred& cred,
                                          uint64_t ino, uint64_t size,
                                          std::optional<Timespec> mtime,
                                          bool kill_priv) {
  if (size > kMaxFileSize) return Errno(EFBIG, "size too large");
  if (mtime.has_value() && mtime->nsec >= 1000000000) {
    return Errno(EINVAL, "nanoseconds out of range");
  }
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

}  // namespace stripefs::mds
