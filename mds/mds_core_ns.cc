// MdsCore namespace operations: lookup, create, mknod, mkdir, symlink,
// link, unlink/rmdir, readlink, readdir, access. Rename:
// mds_core_rename.cc; open handles: mds_core_handles.cc; attributes:
// mds_core_attr.cc.
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
  // One read of one key, no mu_: every change is one atomic batch, so the
  // inode read is as of some instant between the call and its return
  // (before or after a concurrent commit, never within it), and a getattr
  // does not wait behind a change that holds mu_.
  return LoadInode(ino);
}

absl::StatusOr<Inode> MdsCore::MakeNode(const ReqId& req, const Cred& cred,
                                        uint64_t parent,
                                        const std::string& name,
                                        uint32_t mode, uint64_t rdev,
                                        const std::string& symlink,
                                        std::optional<uint32_t> open_flags,
                                        OpenResult* open_out,
                                        NameLocks* name_locks) {
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
  if (name_locks != nullptr &&
      !name_locks->Holds(0, existing.has_value() ? existing->ino : 0)) {
    return Errno(EAGAIN, absl::StrCat(name, " moved while being locked"));
  }
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
    open_out->created = true;
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
                                           uint32_t mode, uint32_t flags,
                                           const IntentLock& intent) {
  absl::StatusOr<OpenResult> r = WithPooledObjects([&] {
    return RetryIfMoved(
        {parent}, {{parent, name}}, ExemptClient(req),
        [&](NameLocks& locks) -> absl::StatusOr<OpenResult> {
          absl::MutexLock l(&mu_);
          STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec,
                                    FindReply(req));
          if (rec.has_value()) return ReplyOpen(req, *rec);
          OpenResult out;
          STRIPEFS_ASSIGN_OR_RETURN(
              Inode n, MakeNode(req, cred, parent, name,
                                S_IFREG | (mode & 07777), 0, "", flags, &out,
                                &locks));
          (void)n;
          return out;
        });
  });
  if (r.ok() && r->created) GrantIntent(req, intent, &*r);
  return r;
}

void MdsCore::GrantIntent(const ReqId& req, const IntentLock& intent,
                          OpenResult* r) {
  if (intent.dlm_client == 0 || req.xid == 0 || !md_locks_->enabled()) {
    return;
  }
  // The DLM request id: the Create's xid (unique per mount, the same in a
  // resend) with the top bit, which the mount's own DLM xids never have.
  absl::StatusOr<uint64_t> h = md_locks_->GrantFor(
      intent.dlm_client, req.xid | (uint64_t{1} << 63), r->inode.ino,
      intent.bits);
  if (!h.ok()) {
    spdlog::debug("intent lock on ino:{} for client {}: {}", r->inode.ino,
                  intent.dlm_client, h.status().ToString());
    return;
  }
  // Read after the grant: a change made since the commit (another mount
  // found the name) is in it; any later one calls the lock back.
  absl::StatusOr<Inode> n = GetAttr(r->inode.ino);
  if (!n.ok()) return;  // gone already: the mount cancels the unknown lock
  r->inode = *std::move(n);
  r->intent_lock = *h;
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
  return WithPooledObjects([&]() -> absl::StatusOr<Inode> {
    STRIPEFS_ASSIGN_OR_RETURN(MdLocks held,
                              LockInodes({parent}, Exempt(req, {parent})));
    absl::MutexLock l(&mu_);
    STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
    if (rec.has_value()) return ReplyInode(*rec);
    return MakeNode(req, cred, parent, name, type | (mode & 07777), rdev, "",
                    std::nullopt, nullptr);
  });
}

absl::StatusOr<Inode> MdsCore::Mkdir(const ReqId& req, const Cred& cred,
                                     uint64_t parent, const std::string& name,
                                     uint32_t mode) {
  STRIPEFS_ASSIGN_OR_RETURN(MdLocks held,
                            LockInodes({parent}, Exempt(req, {parent})));
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
  STRIPEFS_ASSIGN_OR_RETURN(MdLocks held,
                            LockInodes({parent}, Exempt(req, {parent})));
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
  STRIPEFS_ASSIGN_OR_RETURN(
      MdLocks held, LockInodes({ino, new_parent},
                                       Exempt(req, {new_parent})));
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
                             bool dir_op, uint64_t exempt_child) {
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
  return RetryIfMoved(
      {parent}, {{parent, name}}, ExemptClient(req),
      [&](NameLocks& locks) {
        return RemoveLocked(req, cred, parent, name, dir_op, locks);
      },
      ExemptClient(req) != 0 ? exempt_child : 0);
}

absl::Status MdsCore::RemoveLocked(const ReqId& req, const Cred& cred,
                                   uint64_t parent, const std::string& name,
                                   bool dir_op, NameLocks& locks) {
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);
  STRIPEFS_ASSIGN_OR_RETURN(std::optional<ReplyRec> rec, FindReply(req));
  if (rec.has_value()) return absl::OkStatus();
  STRIPEFS_ASSIGN_OR_RETURN(Inode dir, LoadDir(parent));
  STRIPEFS_RETURN_IF_ERROR(NeedAccess(dir, cred, X_OK));
  STRIPEFS_ASSIGN_OR_RETURN(auto d, LoadDentry(parent, name));
  if (!locks.Holds(0, d.has_value() ? d->ino : 0)) {
    return Errno(EAGAIN, absl::StrCat(name, " moved while being locked"));
  }
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

}  // namespace stripefs::mds
