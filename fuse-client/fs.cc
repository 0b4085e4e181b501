// Fs: construction, shared helpers and namespace operations.
#include "fuse-client/fs.h"

#include <cerrno>
#include <ctime>
#include <map>
#include <optional>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "dlm/dlm_client.h"
#include "fuse-client/grpc_mds.h"
#include "fuse-client/md_cache.h"
#include "fuse-client/ost_set.h"

namespace stripefs::client {

absl::Status CheckName(const std::string& name) {
  if (name.size() > kNameMax) {
    return Errno(ENAMETOOLONG, absl::StrCat("name of ", name.size(),
                                            " bytes is longer than 255"));
  }
  return absl::OkStatus();
}

std::shared_ptr<const FileLayout> ToFileLayout(const Layout& layout) {
  auto l = std::make_shared<FileLayout>();
  l->stripe_size = layout.stripe_size;
  l->objects.reserve(layout.objects.size());
  for (const StripeRef& o : layout.objects) l->objects.push_back({o.ost, o.oid});
  return l;
}

Timespec NowTimespec() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

Fs::Fs(MdsClient* mds, OstSet* osts, FsOptions options)
    : owned_mds_(std::make_unique<GrpcMds>(mds)),
      mds_(owned_mds_.get()),
      osts_(osts),
      options_(options),
      pool_(options.io_threads),
      io_(osts, &pool_) {}

Fs::Fs(MdsApi* mds, ObjectIo* objects, OstSet* osts, FsOptions options)
    : mds_(mds),
      osts_(osts),
      options_(options),
      pool_(options.io_threads),
      io_(objects, &pool_) {}

Fs::~Fs() = default;

void Fs::set_data_locks(DataLocks* d) {
  data_locks_ = d;
  if (osts_ != nullptr) osts_->set_data_locks(d);
}

void Fs::set_dlm(dlm::DlmClient* dlm) {
  dlm_ = dlm;
  md_ = dlm != nullptr ? std::make_unique<MdCache>(dlm) : nullptr;
  if (md_ != nullptr) md_->set_adaptive(options_.md_adaptive);
  // This mount applies its own namespace changes to its cache.
  mds_->set_own_md_cache(md_ != nullptr);
  // And adopts the lock on what it creates (MdCache::AdoptIntent).
  mds_->set_intent_locks(md_ != nullptr ? dlm->client_id() : 0,
                         md_ != nullptr ? kMdBits : 0);
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
  if (osts_ != nullptr) {
    for (const auto& [index, ost] : osts_->all()) {
      add(absl::StrCat("ost", index), ost->RpcCounts());
    }
  }
  if (dlm_ != nullptr) add("dlm", dlm_->RpcCounts());
  if (md_ != nullptr) {
    absl::StrAppend(&out, "client md_bypass ", md_->BypassCount(), "\n");
  }
  absl::StrAppend(&out, "client fuse_getattr ", fuse_getattrs_.load(), "\n");
  return out;
}

absl::StatusOr<Entry> Fs::CachedGetAttr(const OpCtx& ctx, uint64_t ino) {
  auto r = ReadThrough(
      md_.get(), ino, ctx.interrupted,
      [&] { return md_->GetAttr(ino); },
      [&] { return mds_->GetAttr(ctx, ino); },
      [&](const absl::StatusOr<Entry>& e, uint64_t gen) {
        if (e.ok()) md_->PutAttr(ino, *e, gen);
      });
  if (r.hit.has_value()) return *std::move(r.hit);
  return std::move(r.reply);
}

void Fs::Overlay(Entry* entry) {
  std::shared_ptr<InodeState> st = FindOpen(entry->attr.ino);
  if (st == nullptr) return;
  absl::MutexLock lock(&st->mu);
  st->SawMds(entry->attr, false);
  Attr& a = entry->attr;
  uint64_t size = st->KnownSize();
  if (size != a.size) {
    a.size = size;
    a.blocks = (size + 511) / 512;
  }
  if (st->dirty) a.mtime = st->mtime;
}

absl::StatusOr<Entry> Fs::Lookup(const OpCtx& ctx, uint64_t parent,
                                 const std::string& name) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  // With a cache, the kernel (default_permissions) has checked search
  // permission on the parent with attributes this cache gave it. The
  // dentry is cached (positive or negative) under the parent's lock; the
  // child's attributes under its own, taken once the parent's is released.
  if (md_ != nullptr && !md_->GetDentry(parent, name).has_value()) {
    ProbeListing(ctx, parent);
  }
  auto r = ReadThrough(
      md_.get(), parent, ctx.interrupted,
      [&] { return md_->GetDentry(parent, name); },
      [&] { return mds_->Lookup(ctx, parent, name); },
      [&](const absl::StatusOr<Entry>& e, uint64_t gen) {
        if (e.ok()) {
          md_->PutDentry(parent, name, e->attr.ino, gen);
        } else if (ToErrno(e.status()) == ENOENT) {
          md_->PutDentry(parent, name, 0, gen);
        }
      });
  if (r.hit.has_value()) {
    if (*r.hit == 0) return Errno(ENOENT, "no such entry (cached)");
    absl::StatusOr<Entry> e = CachedGetAttr(ctx, *r.hit);
    if (!e.ok()) return e.status();
    Overlay(&*e);
    return e;
  }
  if (!r.reply.ok()) return r.reply.status();
  // A contended directory: its children start uncached too.
  if (r.bypassed) md_->InheritBypass(parent, r.reply->attr.ino);
  Overlay(&*r.reply);
  return std::move(r.reply);
}

void Fs::ProbeListing(const OpCtx& ctx, uint64_t dir) {
  if (!md_->WorthProbing(dir)) return;
  auto r = ReadThrough(
      md_.get(), dir, ctx.interrupted,
      [&]() -> std::optional<bool> {
        if (!md_->WorthProbing(dir)) return true;  // filled meanwhile
        return std::nullopt;
      },
      [&] {
        return mds_->Readdir(ctx, dir, 0, options_.readdir_batch,
                             /*plus=*/false);
      },
      [&](const absl::StatusOr<Listing>& l, uint64_t gen) {
        if (l.ok() && (l->eof || l->entries.empty())) {
          md_->PutListing(dir, l->entries, gen);
        } else {
          md_->MarkBig(dir, gen);
        }
      });
  // A failure (not a directory, no read permission, interrupted) marks dir
  // as not worth probing (above) and is the lookup's to meet and report.
  (void)r;
}

absl::StatusOr<Entry> Fs::GetAttr(const OpCtx& ctx, uint64_t ino) {
  absl::StatusOr<Entry> e = CachedGetAttr(ctx, ino);
  if (!e.ok()) return e.status();
  Overlay(&*e);
  return e;
}

absl::StatusOr<Entry> Fs::SetAttr(const OpCtx& ctx, uint64_t ino,
                                  const SetAttrArgs& args) {
  // An open file lost (failover, eviction) cuts no data any more.
  if (args.file != nullptr) {
    if (absl::Status s = CheckNotBroken(*args.file); !s.ok()) return s;
  }
  std::shared_ptr<InodeState> st =
      args.file != nullptr ? args.file->inode : FindOpen(ino);
  if (args.valid & kSetSize) {
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
      absl::StatusOr<Entry> e = mds_->GetAttr(ctx, ino);
      if (!e.ok()) return e.status();
      layout = ToFileLayout(e->layout);
      cur = std::max(cur, e->attr.size);
      mode = e->attr.mode;
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
  absl::StatusOr<Entry> e = mds_->SetAttr(
      ctx, ino, args, args.file != nullptr ? args.file->handle : 0);
  if (!e.ok() && ToErrno(e.status()) == EPERM && args.valid == kSetMode &&
      ctx.uid != 0) {
    // libfuse 3.14 never negotiates FUSE_HANDLE_KILLPRIV, so the kernel
    // clears S_ISUID/S_ISGID before a write with a chmod in the writer's
    // name, which a non-owner may not do. Ask for it the way a write does.
    absl::StatusOr<Entry> killed = KillPriv(ctx, ino, args.mode);
    if (killed.ok()) return killed;
  }
  // ftruncate(2) on a handle the MDS dropped when it evicted this mount.
  if (args.file != nullptr && !e.ok()) {
    return HandleGone(*args.file, e.status());
  }
  if (!e.ok()) return e.status();
  if (st != nullptr) {
    absl::MutexLock lock(&st->mu);
    st->mode = e->attr.mode;
    st->gid = e->attr.gid;
    if (args.valid & kSetSize) {
      st->SawMds(e->attr, true);
      st->write_end = 0;
      st->dirty = false;
      ++st->write_gen;
    }
  }
  Overlay(&*e);
  return e;
}

absl::StatusOr<Entry> Fs::KillPriv(const OpCtx& ctx, uint64_t ino,
                                   uint32_t new_mode) {
  absl::StatusOr<Entry> cur = mds_->GetAttr(ctx, ino);
  if (!cur.ok()) return cur.status();
  const uint32_t priv = S_ISUID | S_ISGID;
  uint32_t old_mode = cur->attr.mode & 07777;
  new_mode &= 07777;
  bool only_drops_priv = (old_mode & ~priv) == (new_mode & ~priv) &&
                         (new_mode & ~old_mode) == 0 && new_mode != old_mode;
  if (!S_ISREG(cur->attr.mode) || !only_drops_priv) {
    return Errno(EPERM, "not a privilege drop");
  }
  // size 0: grow-only, keeps the size.
  absl::StatusOr<Entry> e =
      mds_->UpdateSize(ctx, ino, 0, NowTimespec(), /*kill_priv=*/true);
  if (!e.ok()) return e.status();
  if (std::shared_ptr<InodeState> st = FindOpen(ino)) {
    absl::MutexLock lock(&st->mu);
    st->mode = e->attr.mode;
    st->gid = e->attr.gid;
  }
  Overlay(&*e);
  return e;
}

namespace {

// An own namespace change in `dir` (md_cache.h "Own changes"): the MDS
// leaves this mount's lock on dir in place (own_md_cache) and the change is
// put into the cache here. `call` returns the new name's inode (0: the name
// is gone) or the error; `dir_after`: where call leaves dir's attributes
// after the change if the reply had them; `changed`: an inode whose cache
// the change makes stale (0: none), dropped after the reply.
template <typename Call>
auto OwnChange(MdCache* md, uint64_t dir, const std::string& name,
               const std::optional<Entry>* dir_after, Call&& call,
               uint64_t changed = 0) -> decltype(call()) {
  if (md == nullptr) return call();
  const MdCache::Change c = md->BeginChange(dir);
  auto r = call();
  uint64_t child = 0;
  if constexpr (std::is_same_v<decltype(r), absl::Status>) {
    child = 0;
  } else if constexpr (std::is_same_v<decltype(r),
                                      absl::StatusOr<OpenResult>>) {
    if (r.ok()) child = r->entry.attr.ino;
  } else {
    if (r.ok()) child = r->attr.ino;
  }
  const Entry* after = nullptr;
  if (dir_after != nullptr && dir_after->has_value()) after = &**dir_after;
  md->EndChange(c, r.ok(), name, child, changed, after);
  return r;
}

}  // namespace

absl::StatusOr<Entry> Fs::Mknod(const OpCtx& ctx, uint64_t parent,
                                const std::string& name, uint32_t mode,
                                uint64_t rdev) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  absl::StatusOr<Entry> e = OwnChange(md_.get(), parent, name, nullptr, [&] {
    return mds_->Mknod(ctx, parent, name, mode, rdev);
  });
  if (e.ok()) NoteNewChild(parent, e->attr.ino);
  return e;
}

absl::StatusOr<Entry> Fs::Mkdir(const OpCtx& ctx, uint64_t parent,
                                const std::string& name, uint32_t mode) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  absl::StatusOr<Entry> e = OwnChange(md_.get(), parent, name, nullptr, [&] {
    return mds_->Mkdir(ctx, parent, name, mode);
  });
  if (e.ok()) NoteNewChild(parent, e->attr.ino);
  return e;
}

absl::StatusOr<Entry> Fs::Symlink(const OpCtx& ctx, uint64_t parent,
                                  const std::string& name,
                                  const std::string& target) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  if (target.size() >= 4096) return Errno(ENAMETOOLONG, "symlink too long");
  absl::StatusOr<Entry> e = OwnChange(md_.get(), parent, name, nullptr, [&] {
    return mds_->Symlink(ctx, parent, name, target);
  });
  if (e.ok()) NoteNewChild(parent, e->attr.ino);
  return e;
}

absl::StatusOr<Entry> Fs::Link(const OpCtx& ctx, uint64_t ino,
                               uint64_t new_parent,
                               const std::string& new_name) {
  if (absl::Status s = CheckName(new_name); !s.ok()) return s;
  // The inode's lock is called back as always (its nlink changes); only
  // the directory's stays (own change).
  CancelEarly({ino});
  absl::StatusOr<Entry> e = OwnChange(md_.get(), new_parent, new_name, nullptr, [&] {
    return mds_->Link(ctx, ino, new_parent, new_name);
  });
  if (!e.ok()) return e.status();
  Overlay(&*e);
  return e;
}

absl::Status Fs::Remove(const OpCtx& ctx, uint64_t parent,
                        const std::string& name, bool dir) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  // The inode this mount has cached for name: the MDS leaves this mount's
  // lock on it in place too (exempt_child; no early Cancel) and its cache
  // is dropped here after the reply. An MDS that does not exempt it calls
  // the lock back.
  const uint64_t child = CachedChild(parent, name);
  std::optional<Entry> after;
  return OwnChange(
      md_.get(), parent, name, &after,
      [&] { return mds_->Remove(ctx, parent, name, dir, child, &after); },
      child);
}

absl::StatusOr<OpenResult> Fs::CreateInMds(const OpCtx& ctx, uint64_t parent,
                                           const std::string& name,
                                           uint32_t mode, uint32_t flags) {
  // An existing file's lock is called back as always (O_TRUNC).
  CancelEarly({CachedChild(parent, name)});
  std::optional<Entry> after;
  std::optional<MdCache::Intent> intent;
  if (md_ != nullptr) intent = md_->PrepareIntent();
  absl::StatusOr<OpenResult> r =
      OwnChange(md_.get(), parent, name, &after, [&] {
        absl::StatusOr<OpenResult> r =
            mds_->Create(ctx, parent, name, mode, flags);
        if (r.ok()) after = r->parent;
        return r;
      });
  // The new file's attributes, under the lock the MDS took for this mount:
  // no GetAttr or Enqueue at its first use.
  if (intent.has_value()) {
    md_->AdoptIntent(*intent, r.ok() ? &r->entry : nullptr,
                     r.ok() ? r->intent_lock : 0);
  }
  return r;
}

absl::Status Fs::Rename(const OpCtx& ctx, uint64_t parent,
                        const std::string& name, uint64_t new_parent,
                        const std::string& new_name, uint32_t flags) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  if (absl::Status s = CheckName(new_name); !s.ok()) return s;
  CancelEarly({CachedChild(parent, name), CachedChild(new_parent, new_name),
               parent, new_parent});
  return mds_->Rename(ctx, parent, name, new_parent, new_name, flags);
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
  return mds_->Readlink(ctx, ino);
}

absl::StatusOr<StatfsInfo> Fs::Statfs(const OpCtx& ctx) {
  return mds_->Statfs(ctx);
}

absl::Status Fs::Access(const OpCtx& ctx, uint64_t ino, uint32_t mask) {
  return mds_->Access(ctx, ino, mask);
}

}  // namespace stripefs::client
