// InprocMds: each MdsApi method as one MdsCore call (see inproc_mds.h).
#include "fuse-client/inproc_mds.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <utility>

namespace stripefs::client {
namespace {

mds::Cred CredOf(const OpCtx& ctx) { return {ctx.uid, ctx.gid, ctx.groups}; }

Timespec ToClient(const mds::Timespec& t) { return {t.sec, t.nsec}; }
mds::Timespec ToCore(const Timespec& t) { return {t.sec, t.nsec}; }

Layout ToClient(const mds::Layout& l) {
  Layout out;
  out.stripe_size = l.stripe_size;
  out.stripe_count = l.stripe_count;
  out.stripe_offset = l.stripe_offset;
  for (const mds::StripeObject& o : l.objects) {
    out.objects.push_back({o.ost, o.oid});
  }
  return out;
}

// As the MDS service describes an inode on the wire.
Entry ToClient(const mds::Inode& n) {
  Entry e;
  e.attr.ino = n.ino;
  e.attr.mode = n.mode;
  e.attr.nlink = n.nlink;
  e.attr.uid = n.uid;
  e.attr.gid = n.gid;
  e.attr.size = S_ISDIR(n.mode) ? 4096 : n.size;
  e.attr.rdev = n.rdev;
  e.attr.blocks = S_ISREG(n.mode) ? (n.size + 511) / 512 : 0;
  e.attr.atime = ToClient(n.atime);
  e.attr.mtime = ToClient(n.mtime);
  e.attr.ctime = ToClient(n.ctime);
  if (S_ISREG(n.mode)) e.layout = ToClient(n.layout);
  return e;
}

absl::StatusOr<Entry> EntryOf(absl::StatusOr<mds::Inode> n) {
  if (!n.ok()) return n.status();
  return ToClient(*n);
}

absl::StatusOr<OpenResult> OpenOf(absl::StatusOr<mds::OpenResult> r) {
  if (!r.ok()) return r.status();
  return OpenResult{ToClient(r->inode), r->handle, r->truncated};
}

absl::StatusOr<Layout> LayoutOf(absl::StatusOr<mds::Layout> l) {
  if (!l.ok()) return l.status();
  return ToClient(*l);
}

}  // namespace

void InprocMds::Count(const char* method) {
  absl::MutexLock lock(&mu_);
  ++counts_[method];
}

std::map<std::string, uint64_t> InprocMds::RpcCounts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

absl::StatusOr<Entry> InprocMds::Lookup(const OpCtx& ctx, uint64_t parent,
                                        const std::string& name) {
  Count("Lookup");
  return EntryOf(core_->Lookup(CredOf(ctx), parent, name));
}

absl::StatusOr<Entry> InprocMds::GetAttr(const OpCtx&, uint64_t ino) {
  Count("GetAttr");
  return EntryOf(core_->GetAttr(ino));
}

absl::StatusOr<Entry> InprocMds::SetAttr(const OpCtx& ctx, uint64_t ino,
                                         const AttrChange& change,
                                         uint64_t handle) {
  Count("SetAttr");
  mds::SetAttrArgs a;
  a.valid = change.valid;
  a.mode = change.mode;
  a.uid = change.uid;
  a.gid = change.gid;
  a.size = change.size;
  a.atime = ToCore(change.atime);
  a.mtime = ToCore(change.mtime);
  a.handle = handle;
  return EntryOf(core_->SetAttr(NextReq(), CredOf(ctx), ino, a));
}

absl::StatusOr<Entry> InprocMds::Mknod(const OpCtx& ctx, uint64_t parent,
                                       const std::string& name, uint32_t mode,
                                       uint64_t rdev) {
  Count("Mknod");
  return EntryOf(
      core_->Mknod(NextOwnReq(), CredOf(ctx), parent, name, mode, rdev));
}

absl::StatusOr<Entry> InprocMds::Mkdir(const OpCtx& ctx, uint64_t parent,
                                       const std::string& name,
                                       uint32_t mode) {
  Count("Mkdir");
  return EntryOf(core_->Mkdir(NextOwnReq(), CredOf(ctx), parent, name, mode));
}

absl::StatusOr<Entry> InprocMds::Symlink(const OpCtx& ctx, uint64_t parent,
                                         const std::string& name,
                                         const std::string& target) {
  Count("Symlink");
  return EntryOf(
      core_->Symlink(NextOwnReq(), CredOf(ctx), parent, name, target));
}

absl::StatusOr<Entry> InprocMds::Link(const OpCtx& ctx, uint64_t ino,
                                      uint64_t new_parent,
                                      const std::string& new_name) {
  Count("Link");
  return EntryOf(
      core_->Link(NextOwnReq(), CredOf(ctx), ino, new_parent, new_name));
}

absl::Status InprocMds::Remove(const OpCtx& ctx, uint64_t parent,
                               const std::string& name, bool dir,
                               uint64_t exempt_child,
                               std::optional<Entry>* parent_after) {
  Count("Remove");
  absl::Status s = core_->Remove(NextOwnReq(), CredOf(ctx), parent, name,
                                 dir, exempt_child);
  // As MdsService: an own change's reply carries the parent's attributes.
  if (s.ok() && own_md_cache_ && parent_after != nullptr) {
    absl::StatusOr<Entry> p = EntryOf(core_->GetAttr(parent));
    if (p.ok()) *parent_after = *p;
  }
  return s;
}

absl::Status InprocMds::Rename(const OpCtx& ctx, uint64_t parent,
                               const std::string& name, uint64_t new_parent,
                               const std::string& new_name, uint32_t flags) {
  Count("Rename");
  return core_->Rename(NextReq(), CredOf(ctx), parent, name, new_parent,
                       new_name, flags);
}

absl::StatusOr<std::string> InprocMds::Readlink(const OpCtx& ctx,
                                                uint64_t ino) {
  Count("Readlink");
  return core_->Readlink(CredOf(ctx), ino);
}

absl::StatusOr<Listing> InprocMds::Readdir(const OpCtx& ctx, uint64_t ino,
                                           uint64_t cookie,
                                           uint32_t max_entries, bool plus) {
  Count("Readdir");
  absl::StatusOr<mds::ReaddirResult> r =
      core_->Readdir(CredOf(ctx), ino, cookie, max_entries, plus);
  if (!r.ok()) return r.status();
  Listing out;
  out.eof = r->eof;
  for (mds::DirEntryOut& e : r->entries) {
    DirEntry d{std::move(e.name), e.ino, e.type, e.cookie, std::nullopt};
    if (e.inode.has_value()) d.entry = ToClient(*e.inode);
    out.entries.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<StatfsInfo> InprocMds::Statfs(const OpCtx&) {
  Count("Statfs");
  absl::StatusOr<mds::StatfsResult> r = core_->Statfs();
  if (!r.ok()) return r.status();
  return StatfsInfo{r->bsize, r->blocks, r->bfree,  r->bavail,
                    r->files, r->ffree,  r->namelen};
}

absl::Status InprocMds::Access(const OpCtx& ctx, uint64_t ino, uint32_t mask) {
  Count("Access");
  return core_->Access(CredOf(ctx), ino, mask);
}

absl::StatusOr<OpenResult> InprocMds::Create(const OpCtx& ctx, uint64_t parent,
                                             const std::string& name,
                                             uint32_t mode, uint32_t flags) {
  Count("Create");
  absl::StatusOr<OpenResult> r = OpenOf(core_->Create(
      NextOwnReq(), CredOf(ctx), parent, name, mode, flags | O_CREAT));
  // As MdsService: an own change's reply carries the parent's attributes.
  if (r.ok() && own_md_cache_) {
    absl::StatusOr<Entry> p = EntryOf(core_->GetAttr(parent));
    if (p.ok()) r->parent = *p;
  }
  return r;
}

absl::StatusOr<OpenResult> InprocMds::Open(const OpCtx& ctx, uint64_t ino,
                                           uint32_t flags,
                                           uint64_t reopen_handle) {
  Count("Open");
  if (reopen_handle != 0) {
    return OpenOf(core_->Reopen(NextReq(), reopen_handle, ino));
  }
  return OpenOf(core_->Open(NextReq(), CredOf(ctx), ino, flags));
}

absl::Status InprocMds::Release(const OpCtx&, uint64_t handle) {
  Count("Release");
  return core_->Release(NextReq(), handle);
}

absl::StatusOr<Entry> InprocMds::UpdateSize(const OpCtx& ctx, uint64_t ino,
                                            uint64_t size, Timespec mtime,
                                            bool kill_priv) {
  Count("UpdateSize");
  return EntryOf(core_->UpdateSize(NextReq(), CredOf(ctx), ino, size,
                                   ToCore(mtime), kill_priv));
}

absl::Status InprocMds::Sync(const OpCtx&) {
  Count("Sync");
  return core_->Sync();
}

absl::Status InprocMds::SetXattr(const OpCtx& ctx, uint64_t ino,
                                 const std::string& name,
                                 const std::string& value, uint32_t flags) {
  Count("SetXattr");
  return core_->SetXattr(NextReq(), CredOf(ctx), ino, name, value, flags);
}

absl::StatusOr<std::string> InprocMds::GetXattr(const OpCtx& ctx, uint64_t ino,
                                                const std::string& name) {
  Count("GetXattr");
  return core_->GetXattr(CredOf(ctx), ino, name);
}

absl::StatusOr<std::vector<std::string>> InprocMds::ListXattr(
    const OpCtx& ctx, uint64_t ino) {
  Count("ListXattr");
  return core_->ListXattr(CredOf(ctx), ino);
}

absl::Status InprocMds::RemoveXattr(const OpCtx& ctx, uint64_t ino,
                                    const std::string& name) {
  Count("RemoveXattr");
  return core_->RemoveXattr(NextReq(), CredOf(ctx), ino, name);
}

absl::StatusOr<Layout> InprocMds::SetLayout(const OpCtx& ctx, uint64_t ino,
                                            const LayoutChange& change) {
  Count("SetLayout");
  return LayoutOf(core_->SetLayout(NextReq(), CredOf(ctx), ino,
                                   change.stripe_size, change.stripe_count,
                                   change.stripe_offset));
}

absl::StatusOr<Layout> InprocMds::GetLayout(const OpCtx& ctx, uint64_t ino) {
  Count("GetLayout");
  return LayoutOf(core_->GetLayout(CredOf(ctx), ino));
}

}  // namespace stripefs::client
