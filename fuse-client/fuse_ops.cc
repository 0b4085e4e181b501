#include "fuse-client/fuse_ops.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "common/errors.h"
#include "fuse-client/data_locks.h"
#include "fuse-client/fs.h"
#include "fuse-client/posix_locks.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {
namespace {

Fs* GetFs(fuse_req_t req) { return static_cast<Fs*>(fuse_req_userdata(req)); }

// The caller's credentials. Supplementary groups matter only to non-root
// permission checks and cost a /proc read, so root skips them.
OpCtx MakeCtx(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  OpCtx ctx;
  ctx.uid = c->uid;
  ctx.gid = c->gid;
  ctx.pid = c->pid;
  if (c->uid != 0) {
    gid_t groups[64];
    int n = fuse_req_getgroups(req, 64, groups);
    if (n > 64) {
      std::vector<gid_t> big(n);
      n = fuse_req_getgroups(req, n, big.data());
      if (n > 0 && static_cast<size_t>(n) <= big.size()) {
        ctx.groups.assign(big.begin(), big.begin() + n);
      }
    } else if (n > 0) {
      ctx.groups.assign(groups, groups + n);
    }
  }
  ctx.interrupted = [req] { return fuse_req_interrupted(req) != 0; };
  return ctx;
}

bool Expected(int err) {
  switch (err) {
    case ENOENT:
    case EEXIST:
    case ENODATA:
    case ENOTEMPTY:
    case EACCES:
    case EPERM:
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
    case ERANGE:
    case EINVAL:
    case EBUSY:
    case EXDEV:
    case ELOOP:
    case EINTR:
    case EOPNOTSUPP:
    case ENOSYS:
      return true;
    default:
      return false;
  }
}

// Converts and sends an error reply; logs failures the user did not cause.
void ReplyErr(fuse_req_t req, const absl::Status& status, const char* op,
              uint64_t ino) {
  int err = ToErrno(status);
  if (err == 0) err = EIO;
  if (Expected(err)) {
    spdlog::debug("{} ino {}: {}", op, ino, status.ToString());
  } else {
    spdlog::warn("{} ino {}: {}", op, ino, status.ToString());
  }
  fuse_reply_err(req, err);
}

void ToStat(const Attr& a, struct stat* st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = a.ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_rdev = a.rdev;
  st->st_blocks = static_cast<blkcnt_t>(a.blocks);
  st->st_blksize = 1 << 20;
  st->st_atim.tv_sec = a.atime.sec;
  st->st_atim.tv_nsec = a.atime.nsec;
  st->st_mtim.tv_sec = a.mtime.sec;
  st->st_mtim.tv_nsec = a.mtime.nsec;
  st->st_ctim.tv_sec = a.ctime.sec;
  st->st_ctim.tv_nsec = a.ctime.nsec;
}

void ToEntryParam(Fs* fs, const Entry& e, fuse_entry_param* p) {
  memset(p, 0, sizeof(*p));
  p->ino = e.attr.ino;
  p->generation = 1;
  ToStat(e.attr, &p->attr);
  p->attr_timeout = fs->AttrTimeout(p->ino);
  p->entry_timeout = fs->options().entry_timeout;
}

void ReplyEntry(fuse_req_t req, const absl::StatusOr<Entry>& e,
                const char* op, uint64_t ino) {
  if (!e.ok()) return ReplyErr(req, e.status(), op, ino);
  fuse_entry_param p;
  ToEntryParam(GetFs(req), *e, &p);
  fuse_reply_entry(req, &p);
}

void ReplyStatus(fuse_req_t req, const absl::Status& s, const char* op,
                 uint64_t ino) {
  if (!s.ok()) return ReplyErr(req, s, op, ino);
  fuse_reply_err(req, 0);
}

OpenFile* File(fuse_file_info* fi) {
  return reinterpret_cast<OpenFile*>(static_cast<uintptr_t>(fi->fh));
}

void Init(void* userdata, fuse_conn_info* conn) {
  Fs* fs = static_cast<Fs*>(userdata);
  conn->max_write = 1 << 20;
  conn->max_read = 0;  // no limit beyond max_pages
  conn->max_readahead = 1 << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  auto want = [conn](uint32_t cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_ATOMIC_O_TRUNC);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_HANDLE_KILLPRIV);
  // Page cache coherence is close-to-open (Fs decides keep_cache at open).
  // Automatic invalidation on an mtime change would drop the pages of our
  // own writes, whose mtime the kernel does not track without writeback.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (fs->posix_locks() != nullptr) {
    // Record and flock locks are cluster-wide through the DLM.
    want(FUSE_CAP_POSIX_LOCKS);
    want(FUSE_CAP_FLOCK_LOCKS);
  } else {
    // Without a lock service the kernel keeps them (per mount), as before.
    conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  }
  if (fs->options().writeback_cache) {
    want(FUSE_CAP_WRITEBACK_CACHE);
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  spdlog::info(
      "fuse init: proto {}.{} max_write {} max_readahead {} capable {:#x} "
      "want {:#x}",
      conn->proto_major, conn->proto_minor, conn->max_write,
      conn->max_readahead, conn->capable, conn->want);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Fs* fs = GetFs(req);
  absl::StatusOr<Entry> e = fs->Lookup(MakeCtx(req), parent, name);
  if (!e.ok() && ToErrno(e.status()) == ENOENT) {
    // Negative entry, cached for entry_timeout.
    fuse_entry_param p;
    memset(&p, 0, sizeof(p));
    p.entry_timeout = fs->options().entry_timeout;
    fuse_reply_entry(req, &p);
    return;
  }
  ReplyEntry(req, e, "lookup", parent);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Fs* fs = GetFs(req);
  fs->CountFuseGetattr();
  absl::StatusOr<Entry> e = fs->GetAttr(MakeCtx(req), ino);
  if (!e.ok()) return ReplyErr(req, e.status(), "getattr", ino);
  struct stat st;
  ToStat(e->attr, &st);
  fuse_reply_attr(req, &st, fs->AttrTimeout(ino));
}

Timespec ToTimespec(const struct timespec& ts) {
  return {ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info* fi) {
  Fs* fs = GetFs(req);
  SetAttrArgs a;
  if (to_set & FUSE_SET_ATTR_MODE) {
    a.valid |= kSetMode;
    a.mode = attr->st_mode & 07777;
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    a.valid |= kSetUid;
    a.uid = attr->st_uid;
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    a.valid |= kSetGid;
    a.gid = attr->st_gid;
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    a.valid |= kSetSize;
    a.size = static_cast<uint64_t>(attr->st_size);
  }
  // *_NOW: both bits, with the client's clock in the field, so the MDS may
  // use either its own clock or ours.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    a.valid |= kSetAtime | kSetAtimeNow;
    a.atime = NowTimespec();
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    a.valid |= kSetAtime;
    a.atime = ToTimespec(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    a.valid |= kSetMtime | kSetMtimeNow;
    a.mtime = NowTimespec();
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    a.valid |= kSetMtime;
    a.mtime = ToTimespec(attr->st_mtim);
  }
  if (to_set & FUSE_SET_ATTR_CTIME) a.valid |= kSetCtime;
  if (fi != nullptr && fi->fh != 0) a.file = File(fi);
  OpCtx ctx = MakeCtx(req);
  // A truncate changes the data other mounts may cache: the OSS (and
  // then this mount) take PW beyond the cut, which makes the others drop
  // their pages and refetch the size; no data lock may be held in use
  // across it (data_locks.h). The size this mount knows must be current
  // so that a cut below another mount's writes reaches the objects: a
  // GetAttr (cached under the metadata lock) refreshes it.
  if ((a.valid & kSetSize) && fs->data_locks() != nullptr) {
    absl::StatusOr<Entry> cur = fs->GetAttr(ctx, ino);
    if (!cur.ok()) return ReplyErr(req, cur.status(), "setattr", ino);
  }
  absl::StatusOr<Entry> e = fs->SetAttr(ctx, ino, a);
  if (!e.ok()) return ReplyErr(req, e.status(), "setattr", ino);
  struct stat st;
  ToStat(e->attr, &st);
  fuse_reply_attr(req, &st, fs->AttrTimeout(ino));
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  absl::StatusOr<std::string> t = GetFs(req)->Readlink(MakeCtx(req), ino);
  if (!t.ok()) return ReplyErr(req, t.status(), "readlink", ino);
  fuse_reply_readlink(req, t->c_str());
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
           dev_t rdev) {
  ReplyEntry(req, GetFs(req)->Mknod(MakeCtx(req), parent, name, mode, rdev),
             "mknod", parent);
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  ReplyEntry(req, GetFs(req)->Mkdir(MakeCtx(req), parent, name, mode | S_IFDIR),
             "mkdir", parent);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, GetFs(req)->Remove(MakeCtx(req), parent, name, false),
              "unlink", parent);
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, GetFs(req)->Remove(MakeCtx(req), parent, name, true),
              "rmdir", parent);
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent,
             const char* name) {
  ReplyEntry(req, GetFs(req)->Symlink(MakeCtx(req), parent, name, link),
             "symlink", parent);
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
            fuse_ino_t newparent, const char* newname, unsigned int flags) {
  ReplyStatus(
      req,
      GetFs(req)->Rename(MakeCtx(req), parent, name, newparent, newname, flags),
      "rename", parent);
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
          const char* newname) {
  ReplyEntry(req, GetFs(req)->Link(MakeCtx(req), ino, newparent, newname),
             "link", ino);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Fs* fs = GetFs(req);
  uint32_t flags = static_cast<uint32_t>(fi->flags);
  if (fs->options().writeback_cache && (flags & O_ACCMODE) == O_WRONLY) {
    // The kernel reads pages of write-only files for partial writes.
    flags = (flags & ~O_ACCMODE) | O_RDWR;
  }
  absl::StatusOr<OpenFile*> f = fs->Open(MakeCtx(req), ino, flags);
  if (!f.ok()) return ReplyErr(req, f.status(), "open", ino);
  fi->fh = reinterpret_cast<uintptr_t>(*f);
  fi->keep_cache = (*f)->keep_cache ? 1 : 0;
  fi->direct_io = (*f)->direct_io ? 1 : 0;
  if (fuse_reply_open(req, fi) == -ENOENT) {
    // The opener was interrupted and is gone: undo the open.
    (void)fs->Release(MakeCtx(req), *f).ok();
  }
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
            fuse_file_info* fi) {
  Fs* fs = GetFs(req);
  auto r = fs->Create(MakeCtx(req), parent, name, mode | S_IFREG,
                      static_cast<uint32_t>(fi->flags));
  if (!r.ok()) return ReplyErr(req, r.status(), "create", parent);
  fs->NoteNewChild(parent, r->first.attr.ino);
  fuse_entry_param p;
  ToEntryParam(fs, r->first, &p);
  fi->fh = reinterpret_cast<uintptr_t>(r->second);
  fi->keep_cache = 0;
  fi->direct_io = r->second->direct_io ? 1 : 0;
  if (fuse_reply_create(req, &p, fi) == -ENOENT) {
    (void)fs->Release(MakeCtx(req), r->second).ok();
  }
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
          fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  absl::StatusOr<ReadData> d = GetFs(req)->Read(
      MakeCtx(req), File(fi), static_cast<uint64_t>(off), size);
  if (!d.ok()) return ReplyErr(req, d.status(), "read", ino);
  if (d->iov.empty()) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  fuse_reply_iov(req, d->iov.data(), static_cast<int>(d->iov.size()));
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size,
           off_t off, fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  absl::StatusOr<size_t> n = GetFs(req)->Write(
      MakeCtx(req), File(fi), static_cast<uint64_t>(off), buf, size);
  if (!n.ok()) return ReplyErr(req, n.status(), "write", ino);
  fuse_reply_write(req, *n);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // close(2) of any fd drops the closing process's record locks.
  if (PosixLocks* pl = GetFs(req)->posix_locks(); pl != nullptr) {
    pl->DropOwner(ino, fi->lock_owner);
  }
  ReplyStatus(req, GetFs(req)->Flush(MakeCtx(req), File(fi)), "flush", ino);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // The last close of an open file drops its OFD and flock locks.
  if (PosixLocks* pl = GetFs(req)->posix_locks(); pl != nullptr) {
    pl->DropFile(File(fi));
  }
  absl::Status s = GetFs(req)->Release(MakeCtx(req), File(fi));
  if (!s.ok()) spdlog::warn("release ino {}: {}", ino, s.ToString());
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  ReplyStatus(req, GetFs(req)->Fsync(MakeCtx(req), File(fi)), "fsync", ino);
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  absl::StatusOr<DirHandle*> d = GetFs(req)->OpenDir(MakeCtx(req), ino);
  if (!d.ok()) return ReplyErr(req, d.status(), "opendir", ino);
  fi->fh = reinterpret_cast<uintptr_t>(*d);
  if (fuse_reply_open(req, fi) == -ENOENT) GetFs(req)->ReleaseDir(*d);
}

void DoReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
               fuse_file_info* fi, bool plus) {
  Fs* fs = GetFs(req);
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  std::string buf(size, '\0');
  size_t used = 0;
  auto emit = [&](const DirItem& item) {
    size_t n;
    if (plus) {
      fuse_entry_param p;
      if (item.entry != nullptr) {
        ToEntryParam(fs, *item.entry, &p);
      } else {
        memset(&p, 0, sizeof(p));
        p.attr.st_ino = item.ino;
        p.attr.st_mode = item.type;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used,
                                 item.name.c_str(), &p,
                                 static_cast<off_t>(item.next_off));
    } else {
      struct stat st;
      memset(&st, 0, sizeof(st));
      st.st_ino = item.ino;
      st.st_mode = item.type;
      n = fuse_add_direntry(req, buf.data() + used, size - used,
                            item.name.c_str(), &st,
                            static_cast<off_t>(item.next_off));
    }
    if (n > size - used) return false;
    used += n;
    return true;
  };
  auto* d = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  absl::Status s =
      fs->ReadDir(MakeCtx(req), ino, d, static_cast<uint64_t>(off), plus, emit);
  if (!s.ok() && used == 0) {
    return ReplyErr(req, s, plus ? "readdirplus" : "readdir", ino);
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
             fuse_file_info* fi) {
  DoReadDir(req, ino, size, off, fi, false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 fuse_file_info* fi) {
  DoReadDir(req, ino, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (PosixLocks* pl = GetFs(req)->posix_locks(); pl != nullptr) {
    pl->DropFile(File(fi));  // flock(2) on a directory
  }
  GetFs(req)->ReleaseDir(
      reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh)));
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync,
              fuse_file_info* fi) {
  ReplyStatus(req, GetFs(req)->FsyncDir(MakeCtx(req)), "fsyncdir", ino);
}

void Statfs(fuse_req_t req, fuse_ino_t ino) {
  absl::StatusOr<StatfsInfo> r = GetFs(req)->Statfs(MakeCtx(req));
  if (!r.ok()) return ReplyErr(req, r.status(), "statfs", ino);
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  st.f_bsize = r->bsize ? r->bsize : 4096;
  st.f_frsize = st.f_bsize;
  st.f_blocks = r->blocks;
  st.f_bfree = r->bfree;
  st.f_bavail = r->bavail;
  st.f_files = r->files;
  st.f_ffree = r->ffree;
  st.f_favail = r->ffree;
  st.f_namemax = r->namelen ? r->namelen : kNameMax;
  fuse_reply_statfs(req, &st);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name,
              const char* value, size_t size, int flags) {
  ReplyStatus(
      req,
      GetFs(req)->SetXattr(MakeCtx(req), ino, name, std::string(value, size),
                           static_cast<uint32_t>(flags)),
      "setxattr", ino);
}

// size 0: the caller asks how big a buffer it needs.
void ReplySized(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (value.size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  absl::StatusOr<std::string> v = GetFs(req)->GetXattr(MakeCtx(req), ino, name);
  if (!v.ok()) return ReplyErr(req, v.status(), "getxattr", ino);
  ReplySized(req, *v, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  absl::StatusOr<std::vector<std::string>> names =
      GetFs(req)->ListXattr(MakeCtx(req), ino);
  if (!names.ok()) return ReplyErr(req, names.status(), "listxattr", ino);
  std::string out;
  for (const std::string& n : *names) {
    out.append(n);
    out.push_back('\0');
  }
  ReplySized(req, out, size);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  ReplyStatus(req, GetFs(req)->RemoveXattr(MakeCtx(req), ino, name),
              "removexattr", ino);
}

void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  ReplyStatus(
      req, GetFs(req)->Access(MakeCtx(req), ino, static_cast<uint32_t>(mask)),
      "access", ino);
}

// struct flock (already absolute: the kernel resolved l_whence) to a range.
RangeLock ToRange(const struct flock* lock) {
  RangeLock r;
  r.type = lock->l_type == F_WRLCK   ? LockType::kWrite
           : lock->l_type == F_RDLCK ? LockType::kRead
                                     : LockType::kUnlock;
  r.start = static_cast<uint64_t>(lock->l_start);
  // The kernel sends an inclusive end; OFFSET_MAX means "to EOF".
  r.end = lock->l_len == 0 ? ~uint64_t{0}
                           : static_cast<uint64_t>(lock->l_start) +
                                 static_cast<uint64_t>(lock->l_len) - 1;
  r.pid = static_cast<uint32_t>(lock->l_pid);
  return r;
}

void GetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi,
           struct flock* lock) {
  PosixLocks* pl = GetFs(req)->posix_locks();
  if (pl == nullptr) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  absl::StatusOr<RangeLock> c =
      pl->Get(LockKind::kPosix, ino, fi->lock_owner, ToRange(lock));
  if (!c.ok()) return ReplyErr(req, c.status(), "getlk", ino);
  struct flock out = *lock;
  if (c->type == LockType::kUnlock) {
    out.l_type = F_UNLCK;
  } else {
    out.l_type = c->type == LockType::kWrite ? F_WRLCK : F_RDLCK;
    out.l_whence = SEEK_SET;
    out.l_start = static_cast<off_t>(c->start);
    out.l_len = c->end == ~uint64_t{0}
                    ? 0
                    : static_cast<off_t>(c->end - c->start + 1);
    out.l_pid = static_cast<pid_t>(c->pid);
  }
  fuse_reply_lock(req, &out);
}

void SetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi,
           struct flock* lock, int sleep) {
  PosixLocks* pl = GetFs(req)->posix_locks();
  if (pl == nullptr) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  absl::Status s =
      pl->Set(LockKind::kPosix, ino, fi->lock_owner, File(fi), ToRange(lock),
              sleep != 0, [req] { return fuse_req_interrupted(req) != 0; });
  if (!s.ok() && ToErrno(s) == EAGAIN) {
    fuse_reply_err(req, EAGAIN);  // held by another owner: not a failure
    return;
  }
  ReplyStatus(req, s, "setlk", ino);
}

void Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  PosixLocks* pl = GetFs(req)->posix_locks();
  if (pl == nullptr) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  RangeLock r;
  r.start = 0;
  r.end = ~uint64_t{0};
  switch (op & ~LOCK_NB) {
    case LOCK_SH:
      r.type = LockType::kRead;
      break;
    case LOCK_EX:
      r.type = LockType::kWrite;
      break;
    case LOCK_UN:
      r.type = LockType::kUnlock;
      break;
    default:
      fuse_reply_err(req, EINVAL);
      return;
  }
  absl::Status s = pl->Set(LockKind::kFlock, ino, fi->lock_owner, File(fi), r,
                           (op & LOCK_NB) == 0,
                           [req] { return fuse_req_interrupted(req) != 0; });
  if (!s.ok() && ToErrno(s) == EAGAIN) {
    fuse_reply_err(req, EWOULDBLOCK);
    return;
  }
  ReplyStatus(req, s, "flock", ino);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof(ops));
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = Readlink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = Statfs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.access = Access;
  ops.create = Create;
  ops.getlk = GetLk;
  ops.setlk = SetLk;
  ops.flock = Flock;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& FuseOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace stripefs::client
