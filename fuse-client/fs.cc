// Fs: construction, shared helpers and namespace operations.
#include "fuse-client/fs.h"

#include <cerrno>
#include <ctime>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "dlm/dlm_client.h"
#include "fuse-client/md_cache.h"

namespace stripefs::client {

using rpc::Mds;

void FillCred(const OpCtx& ctx, rpc::Cred* cred) {
  cred->set_uid(ctx.uid);
  cred->set_gid(ctx.gid);
  cred->set_pid(ctx.pid);
  for (uint32_t g : ctx.groups) cred->add_groups(g);
}

absl::Status CheckName(const std::string& name) {
  if (name.size() > kNameMax) {
    return Errno(ENAMETOOLONG, absl::StrCat("name of ", name.size(),
                                            " bytes is longer than 255"));
  }
  return absl::OkStatus();
}

std::shared_ptr<const FileLayout> ToFileLayout(const rpc::Layout& layout) {
  auto l = std::make_shared<FileLayout>();
  l->stripe_size = layout.stripe_size();
  l->objects.reserve(layout.objects_size());
  for (const rpc::StripeObject& o : layout.objects()) {
    l->objects.push_back({o.ost(), o.oid()});
  }
  return l;
}

rpc::Timespec NowTimespec() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rpc::Timespec t;
  t.set_sec(ts.tv_sec);
  t.set_nsec(static_cast<uint32_t>(ts.tv_nsec));
  return t;
}

Fs::Fs(MdsClient* mds, OstSet* osts, FsOptions options)
    : mds_(mds),
      osts_(osts),
      options_(options),
      pool_(options.io_threads),
      io_(osts, &pool_) {}

Fs::~Fs() = default;

void Fs::set_dlm(dlm::DlmClient* dlm) {
  dlm_ = dlm;
  md_ = dlm != nullptr ? std::make_unique<MdCache>(dlm) : nullptr;
  if (md_ != nullptr) md_->set_adaptive(options_.md_adaptive);
}

void Fs::set_on_md_drop(std::function<void(uint64_t)> fn) {
  if (md_ != nullptr) md_->set_on_drop(std::move(fn));
}

double Fs::AttrTimeout(uint64_t ino) const {
  if (md_ == nullptr) return options_.attr_timeout;
  return md_->HasAttr(ino) ? options_.locked_attr_timeout : 0;
}

std::string Fs::StatsText() const {
  std::string out;
  auto add = [&out](const std::string& target,
                    const std::map<std::string, uint64_t>& counts) {
    for (const auto& [method, n] : counts) {
      absl::StrAppend(&out, target, " ", method, " ", n, "\n");
    }
  };
  add("mds", mds_->RpcCounts());
  for (const auto& [index, ost] : osts_->all()) {
    add(absl::StrCat("ost", index), ost->RpcCounts());
  }
  if (dlm_ != nullptr) add("dlm", dlm_->RpcCounts());
  if (md_ != nullptr) {
    absl::StrAppend(&out, "client md_bypass ", md_->BypassCount(), "\n");
  }
  absl::StrAppend(&out, "client fuse_getattr ", fuse_getattrs_.load(), "\n");
  return out;
}

absl::StatusOr<rpc::Entry> Fs::CachedGetAttr(const OpCtx& ctx, uint64_t ino) {
  std::optional<dlm::LockInfo> held;
  if (md_ != nullptr) {
    if (std::optional<rpc::Entry> e = md_->GetAttr(ino)) return *e;
  }
  if (md_ != nullptr && !md_->Bypassed(ino)) {
    absl::StatusOr<dlm::LockInfo> l = md_->LockInode(ino, ctx.interrupted);
    if (!l.ok()) return l.status();
    held = *l;
    // Another request may have filled the cache while this one waited.
    if (std::optional<rpc::Entry> e = md_->GetAttr(ino)) {
      md_->Release(*held);
      return *e;
    }
  }
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::GetAttr, "GetAttr", ctx.interrupted,
      [&](rpc::GetAttrRequest& r) { r.set_ino(ino); }, &e);
  if (held.has_value()) {
    // Cached before the lock is released: a blocking callback, which runs
    // only after the release, drops it again.
    if (s.ok()) md_->PutAttr(ino, e);
    md_->Release(*held);
  }
  if (!s.ok()) return s;
  return e;
}

void Fs::Overlay(rpc::Entry* entry) {
  std::shared_ptr<InodeState> st = FindOpen(entry->attr().ino());
  if (st == nullptr) return;
  absl::MutexLock lock(&st->mu);
  st->SawMds(entry->attr(), false);
  rpc::Attr* a = entry->mutable_attr();
  uint64_t size = st->KnownSize();
  if (size != a->size()) {
    a->set_size(size);
    a->set_blocks((size + 511) / 512);
  }
  if (st->dirty) *a->mutable_mtime() = st->mtime;
}

absl::StatusOr<rpc::Entry> Fs::Lookup(const OpCtx& ctx, uint64_t parent,
                                      const std::string& name) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  std::optional<dlm::LockInfo> held;
  bool bypass = false;
  if (md_ != nullptr) {
    // The kernel (default_permissions) has checked search permission on
    // the parent with attributes this cache gave it.
    std::optional<uint64_t> ino = md_->GetDentry(parent, name);
    if (!ino.has_value() && md_->Bypassed(parent)) {
      // A contended directory: ask the MDS, lock and cache nothing.
      bypass = true;
    } else if (!ino.has_value()) {
      absl::StatusOr<dlm::LockInfo> l = md_->LockInode(parent, ctx.interrupted);
      if (!l.ok()) return l.status();
      held = *l;
      ino = md_->GetDentry(parent, name);
      if (ino.has_value()) {
        md_->Release(*held);
        held.reset();
      }
    }
    if (ino.has_value()) {
      if (*ino == 0) return Errno(ENOENT, "no such entry (cached)");
      absl::StatusOr<rpc::Entry> e = CachedGetAttr(ctx, *ino);
      if (!e.ok()) return e.status();
      Overlay(&*e);
      return e;
    }
  }
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Lookup, "Lookup", ctx.interrupted,
      [&](rpc::LookupRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
      },
      &e);
  if (held.has_value()) {
    if (s.ok()) {
      md_->PutDentry(parent, name, e.attr().ino());
    } else if (ToErrno(s) == ENOENT) {
      md_->PutDentry(parent, name, 0);
    }
    md_->Release(*held);
  }
  if (!s.ok()) return s;
  if (bypass) md_->InheritBypass(parent, e.attr().ino());
  Overlay(&e);
  return e;
}

absl::StatusOr<rpc::Entry> Fs::GetAttr(const OpCtx& ctx, uint64_t ino) {
  absl::StatusOr<rpc::Entry> e = CachedGetAttr(ctx, ino);
  if (!e.ok()) return e.status();
  Overlay(&*e);
  return e;
}

absl::StatusOr<rpc::Entry> Fs::SetAttr(const OpCtx& ctx, uint64_t ino,
                                       const SetAttrArgs& args) {
  // An open file lost (failover, eviction) cuts no data any more.
  if (args.file != nullptr) {
    if (absl::Status s = CheckNotBroken(*args.file); !s.ok()) return s;
  }
  std::shared_ptr<InodeState> st =
      args.file != nullptr ? args.file->inode : FindOpen(ino);
  if (args.valid & rpc::SETATTR_SIZE) {
    // Work out the layout and the size this mount believes in.
    std::shared_ptr<const FileLayout> layout;
    uint64_t cur = 0;
    uint32_t mode = 0;
    if (st != nullptr) {
      absl::MutexLock lock(&st->mu);
      layout = st->layout;
      cur = st->KnownSize();
      mode = st->mode;
    }
    if (layout == nullptr) {
      rpc::Entry e;
      absl::Status s = mds_->Call(
          &Mds::Stub::GetAttr, "GetAttr", ctx.interrupted,
          [&](rpc::GetAttrRequest& r) { r.set_ino(ino); }, &e);
      if (!s.ok()) return s;
      layout = ToFileLayout(e.layout());
      cur = std::max(cur, e.attr().size());
      mode = e.attr().mode();
    }
    if (S_ISDIR(mode)) return Errno(EISDIR, "truncate of a directory");
    if (!S_ISREG(mode)) return Errno(EINVAL, "truncate of a special file");
    if (args.size < cur && !layout->objects.empty()) {
      // Objects first, then the MDS. Without an fd, ask the MDS whether the
      // caller may write before any data is dropped.
      if (args.file == nullptr) {
        if (absl::Status s = Access(ctx, ino, W_OK); !s.ok()) return s;
      } else if (absl::Status s = CheckLease(ctx, *args.file); !s.ok()) {
        // The MDS may have evicted this mount (and dropped the handle)
        // while it was silent: asked before cutting data.
        return s;
      }
      if (absl::Status s = io_.Truncate(*layout, args.size, ctx.interrupted);
          !s.ok()) {
        return s;
      }
    }
  }
  CancelEarly({ino});
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::SetAttr, "SetAttr", ctx.interrupted,
      [&](rpc::SetAttrRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_valid(args.valid);
        r.set_mode(args.mode);
        r.set_uid(args.uid);
        r.set_gid(args.gid);
        r.set_size(args.size);
        *r.mutable_atime() = args.atime;
        *r.mutable_mtime() = args.mtime;
        if (args.file != nullptr) r.set_handle(args.file->handle);
      },
      &e);
  if (!s.ok() && ToErrno(s) == EPERM && args.valid == rpc::SETATTR_MODE &&
      ctx.uid != 0) {
    // libfuse 3.14 never negotiates FUSE_HANDLE_KILLPRIV, so the kernel
    // clears S_ISUID/S_ISGID before a write with a chmod in the writer's
    // name, which a non-owner may not do. Ask for it the way a write does.
    absl::StatusOr<rpc::Entry> killed = KillPriv(ctx, ino, args.mode);
    if (killed.ok()) return killed;
  }
  // ftruncate(2) on a handle the MDS dropped when it evicted this mount.
  if (args.file != nullptr) s = HandleGone(*args.file, s);
  if (!s.ok()) return s;
  if (st != nullptr) {
    absl::MutexLock lock(&st->mu);
    st->mode = e.attr().mode();
    st->gid = e.attr().gid();
    if (args.valid & rpc::SETATTR_SIZE) {
      st->SawMds(e.attr(), true);
      st->write_end = 0;
      st->dirty = false;
      ++st->write_gen;
    }
  }
  Overlay(&e);
  return e;
}

absl::StatusOr<rpc::Entry> Fs::KillPriv(const OpCtx& ctx, uint64_t ino,
                                        uint32_t new_mode) {
  rpc::Entry cur;
  absl::Status s = mds_->Call(
      &Mds::Stub::GetAttr, "GetAttr", ctx.interrupted,
      [&](rpc::GetAttrRequest& r) { r.set_ino(ino); }, &cur);
  if (!s.ok()) return s;
  const uint32_t priv = S_ISUID | S_ISGID;
  uint32_t old_mode = cur.attr().mode() & 07777;
  new_mode &= 07777;
  bool only_drops_priv = (old_mode & ~priv) == (new_mode & ~priv) &&
                         (new_mode & ~old_mode) == 0 && new_mode != old_mode;
  if (!S_ISREG(cur.attr().mode()) || !only_drops_priv) {
    return Errno(EPERM, "not a privilege drop");
  }
  rpc::Entry e;
  s = mds_->Call(
      &Mds::Stub::UpdateSize, "UpdateSize", ctx.interrupted,
      [&](rpc::UpdateSizeRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_size(0);  // grow-only: keeps the size
        *r.mutable_mtime() = NowTimespec();
        r.set_kill_priv(true);
      },
      &e);
  if (!s.ok()) return s;
  if (std::shared_ptr<InodeState> st = FindOpen(ino)) {
    absl::MutexLock lock(&st->mu);
    st->mode = e.attr().mode();
    st->gid = e.attr().gid();
  }
  Overlay(&e);
  return e;
}

absl::StatusOr<rpc::Entry> Fs::Mknod(const OpCtx& ctx, uint64_t parent,
                                     const std::string& name, uint32_t mode,
                                     uint64_t rdev) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  CancelEarly({parent});
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Mknod, "Mknod", ctx.interrupted,
      [&](rpc::MknodRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_mode(mode);
        r.set_rdev(rdev);
      },
      &e);
  if (!s.ok()) return s;
  NoteNewChild(parent, e.attr().ino());
  return e;
}

absl::StatusOr<rpc::Entry> Fs::Mkdir(const OpCtx& ctx, uint64_t parent,
                                     const std::string& name, uint32_t mode) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  CancelEarly({parent});
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Mkdir, "Mkdir", ctx.interrupted,
      [&](rpc::MkdirRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_mode(mode);
      },
      &e);
  if (!s.ok()) return s;
  NoteNewChild(parent, e.attr().ino());
  return e;
}

absl::StatusOr<rpc::Entry> Fs::Symlink(const OpCtx& ctx, uint64_t parent,
                                       const std::string& name,
                                       const std::string& target) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  if (target.size() >= 4096) return Errno(ENAMETOOLONG, "symlink too long");
  CancelEarly({parent});
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Symlink, "Symlink", ctx.interrupted,
      [&](rpc::SymlinkRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_target(target);
      },
      &e);
  if (!s.ok()) return s;
  NoteNewChild(parent, e.attr().ino());
  return e;
}

absl::StatusOr<rpc::Entry> Fs::Link(const OpCtx& ctx, uint64_t ino,
                                    uint64_t new_parent,
                                    const std::string& new_name) {
  if (absl::Status s = CheckName(new_name); !s.ok()) return s;
  CancelEarly({ino, new_parent});
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Link, "Link", ctx.interrupted,
      [&](rpc::LinkRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_new_parent(new_parent);
        r.set_new_name(new_name);
      },
      &e);
  if (!s.ok()) return s;
  Overlay(&e);
  return e;
}

absl::Status Fs::Remove(const OpCtx& ctx, uint64_t parent,
                        const std::string& name, bool dir) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  CancelEarly({CachedChild(parent, name), parent});
  rpc::RemoveReply reply;
  return mds_->Call(
      &Mds::Stub::Remove, "Remove", ctx.interrupted,
      [&](rpc::RemoveRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_dir(dir);
      },
      &reply);
}

absl::Status Fs::Rename(const OpCtx& ctx, uint64_t parent,
                        const std::string& name, uint64_t new_parent,
                        const std::string& new_name, uint32_t flags) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  if (absl::Status s = CheckName(new_name); !s.ok()) return s;
  CancelEarly({CachedChild(parent, name), CachedChild(new_parent, new_name),
               parent, new_parent});
  rpc::RenameReply reply;
  return mds_->Call(
      &Mds::Stub::Rename, "Rename", ctx.interrupted,
      [&](rpc::RenameRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_new_parent(new_parent);
        r.set_new_name(new_name);
        r.set_flags(flags);
      },
      &reply);
}

void Fs::CancelEarly(std::initializer_list<uint64_t> inos) {
  if (md_ == nullptr) return;
  for (uint64_t ino : inos) {
    if (ino != 0) md_->CancelEarly(ino);
  }
}

uint64_t Fs::CachedChild(uint64_t parent, const std::string& name) {
  if (md_ == nullptr) return 0;
  return md_->GetDentry(parent, name).value_or(0);
}

void Fs::NoteNewChild(uint64_t parent, uint64_t child) {
  if (md_ != nullptr) md_->InheritBypass(parent, child);
}

absl::StatusOr<std::string> Fs::Readlink(const OpCtx& ctx, uint64_t ino) {
  rpc::ReadlinkReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::Readlink, "Readlink", ctx.interrupted,
      [&](rpc::ReadlinkRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
      },
      &reply);
  if (!s.ok()) return s;
  return std::move(*reply.mutable_target());
}

absl::StatusOr<rpc::StatfsReply> Fs::Statfs(const OpCtx& ctx) {
  rpc::StatfsReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::Statfs, "Statfs", ctx.interrupted,
      [&](rpc::StatfsRequest&) {}, &reply);
  if (!s.ok()) return s;
  return reply;
}

absl::Status Fs::Access(const OpCtx& ctx, uint64_t ino, uint32_t mask) {
  rpc::AccessReply reply;
  return mds_->Call(
      &Mds::Stub::Access, "Access", ctx.interrupted,
      [&](rpc::AccessRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_mask(mask);
      },
      &reply);
}

}  // namespace stripefs::client
