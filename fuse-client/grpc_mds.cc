// GrpcMds: each MdsApi method as one MDS request (see grpc_mds.h).
#include "fuse-client/grpc_mds.h"

#include <fcntl.h>

#include <cerrno>
#include <utility>

#include "common/errors.h"
#include "fuse-client/versioned_calls.h"

namespace stripefs::client {

using rpc::Mds;

static_assert(kSetMode == rpc::SETATTR_MODE && kSetUid == rpc::SETATTR_UID &&
              kSetGid == rpc::SETATTR_GID && kSetSize == rpc::SETATTR_SIZE &&
              kSetAtime == rpc::SETATTR_ATIME &&
              kSetMtime == rpc::SETATTR_MTIME &&
              kSetAtimeNow == rpc::SETATTR_ATIME_NOW &&
              kSetMtimeNow == rpc::SETATTR_MTIME_NOW &&
              kSetCtime == rpc::SETATTR_CTIME);

namespace {

void FillCred(const OpCtx& ctx, rpc::Cred* cred) {
  cred->set_uid(ctx.uid);
  cred->set_gid(ctx.gid);
  cred->set_pid(ctx.pid);
  for (uint32_t g : ctx.groups) cred->add_groups(g);
}

// An answer carrying an Entry, converted.
absl::StatusOr<Entry> EntryOf(const absl::Status& s, const rpc::Entry& e) {
  if (!s.ok()) return s;
  return FromProto(e);
}

OpenResult FromProto(const rpc::OpenReply& r) {
  return {client::FromProto(r.entry()), r.handle(), r.truncated()};
}

}  // namespace

Timespec FromProto(const rpc::Timespec& t) { return {t.sec(), t.nsec()}; }

void ToProto(const Timespec& t, rpc::Timespec* out) {
  out->set_sec(t.sec);
  out->set_nsec(t.nsec);
}

Attr FromProto(const rpc::Attr& a) {
  Attr out;
  out.ino = a.ino();
  out.mode = a.mode();
  out.nlink = a.nlink();
  out.uid = a.uid();
  out.gid = a.gid();
  out.size = a.size();
  out.rdev = a.rdev();
  out.blocks = a.blocks();
  out.atime = FromProto(a.atime());
  out.mtime = FromProto(a.mtime());
  out.ctime = FromProto(a.ctime());
  return out;
}

Layout FromProto(const rpc::Layout& l) {
  Layout out;
  out.stripe_size = l.stripe_size();
  out.stripe_count = l.stripe_count();
  out.stripe_offset = l.stripe_offset();
  out.objects.reserve(l.objects_size());
  for (const rpc::StripeObject& o : l.objects()) {
    out.objects.push_back({o.ost(), o.oid()});
  }
  return out;
}

void ToProto(const Layout& l, rpc::Layout* out) {
  out->set_stripe_size(l.stripe_size);
  out->set_stripe_count(l.stripe_count);
  out->set_stripe_offset(l.stripe_offset);
  for (const StripeRef& o : l.objects) {
    rpc::StripeObject* so = out->add_objects();
    so->set_ost(o.ost);
    so->set_oid(o.oid);
  }
}

Entry FromProto(const rpc::Entry& e) {
  return {FromProto(e.attr()), FromProto(e.layout())};
}

absl::StatusOr<Entry> GrpcMds::Lookup(const OpCtx& ctx, uint64_t parent,
                                      const std::string& name) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Lookup, "Lookup", ctx.interrupted,
      [&](rpc::LookupRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
      },
      &e);
  return EntryOf(s, e);
}

absl::StatusOr<Entry> GrpcMds::GetAttr(const OpCtx& ctx, uint64_t ino) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::GetAttr, "GetAttr", ctx.interrupted,
      [&](rpc::GetAttrRequest& r) { r.set_ino(ino); }, &e);
  return EntryOf(s, e);
}

absl::StatusOr<Entry> GrpcMds::SetAttr(const OpCtx& ctx, uint64_t ino,
                                       const AttrChange& change,
                                       uint64_t handle) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::SetAttr, "SetAttr", ctx.interrupted,
      [&](rpc::SetAttrRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_valid(change.valid);
        r.set_mode(change.mode);
        r.set_uid(change.uid);
        r.set_gid(change.gid);
        r.set_size(change.size);
        ToProto(change.atime, r.mutable_atime());
        ToProto(change.mtime, r.mutable_mtime());
        if (handle != 0) r.set_handle(handle);
      },
      &e);
  return EntryOf(s, e);
}

absl::StatusOr<Entry> GrpcMds::Mknod(const OpCtx& ctx, uint64_t parent,
                                     const std::string& name, uint32_t mode,
                                     uint64_t rdev) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Mknod, "Mknod", ctx.interrupted,
      [&](rpc::MknodRequest& r) {
        FillOwnHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_mode(mode);
        r.set_rdev(rdev);
      },
      &e);
  return EntryOf(s, e);
}

absl::StatusOr<Entry> GrpcMds::Mkdir(const OpCtx& ctx, uint64_t parent,
                                     const std::string& name, uint32_t mode) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Mkdir, "Mkdir", ctx.interrupted,
      [&](rpc::MkdirRequest& r) {
        FillOwnHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_mode(mode);
      },
      &e);
  return EntryOf(s, e);
}

absl::StatusOr<Entry> GrpcMds::Symlink(const OpCtx& ctx, uint64_t parent,
                                       const std::string& name,
                                       const std::string& target) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Symlink, "Symlink", ctx.interrupted,
      [&](rpc::SymlinkRequest& r) {
        FillOwnHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_target(target);
      },
      &e);
  return EntryOf(s, e);
}

absl::StatusOr<Entry> GrpcMds::Link(const OpCtx& ctx, uint64_t ino,
                                    uint64_t new_parent,
                                    const std::string& new_name) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::Link, "Link", ctx.interrupted,
      [&](rpc::LinkRequest& r) {
        FillOwnHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_new_parent(new_parent);
        r.set_new_name(new_name);
      },
      &e);
  return EntryOf(s, e);
}

absl::Status GrpcMds::Remove(const OpCtx& ctx, uint64_t parent,
                             const std::string& name, bool dir,
                             uint64_t exempt_child,
                             std::optional<Entry>* parent_after) {
  rpc::RemoveReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::Remove, "Remove", ctx.interrupted,
      [&](rpc::RemoveRequest& r) {
        FillOwnHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_dir(dir);
        if (own_md_cache_) r.set_exempt_child(exempt_child);
      },
      &reply);
  if (s.ok() && parent_after != nullptr && reply.has_parent()) {
    *parent_after = client::FromProto(reply.parent());
  }
  return s;
}

absl::Status GrpcMds::Rename(const OpCtx& ctx, uint64_t parent,
                             const std::string& name, uint64_t new_parent,
                             const std::string& new_name, uint32_t flags) {
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

absl::StatusOr<std::string> GrpcMds::Readlink(const OpCtx& ctx, uint64_t ino) {
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

absl::StatusOr<Listing> GrpcMds::Readdir(const OpCtx& ctx, uint64_t ino,
                                         uint64_t cookie,
                                         uint32_t max_entries, bool plus) {
  rpc::ReaddirReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::Readdir, "Readdir", ctx.interrupted,
      [&](rpc::ReaddirRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_cookie(cookie);
        r.set_max_entries(max_entries);
        r.set_plus(plus);
      },
      &reply);
  if (!s.ok()) return s;
  Listing out;
  out.eof = reply.eof();
  out.entries.reserve(reply.entries_size());
  for (rpc::DirEntry& de : *reply.mutable_entries()) {
    DirEntry d;
    d.name = std::move(*de.mutable_name());
    d.ino = de.ino();
    d.type = de.type();
    d.cookie = de.cookie();
    if (de.has_entry()) d.entry = client::FromProto(de.entry());
    out.entries.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<StatfsInfo> GrpcMds::Statfs(const OpCtx& ctx) {
  rpc::StatfsReply r;
  absl::Status s = mds_->Call(
      &Mds::Stub::Statfs, "Statfs", ctx.interrupted,
      [&](rpc::StatfsRequest&) {}, &r);
  if (!s.ok()) return s;
  return StatfsInfo{r.bsize(), r.blocks(), r.bfree(), r.bavail(),
                    r.files(), r.ffree(), r.namelen()};
}

absl::Status GrpcMds::Access(const OpCtx& ctx, uint64_t ino, uint32_t mask) {
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

absl::StatusOr<OpenResult> GrpcMds::Create(const OpCtx& ctx, uint64_t parent,
                                           const std::string& name,
                                           uint32_t mode, uint32_t flags) {
  rpc::CreateReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::Create, "Create", ctx.interrupted,
      [&](rpc::CreateRequest& r) {
        FillOwnHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_parent(parent);
        r.set_name(name);
        r.set_mode(mode);
        r.set_flags(flags | O_CREAT);
        r.set_intent_dlm_client(intent_dlm_client_);
        r.set_intent_bits(intent_bits_);
      },
      &reply);
  if (!s.ok()) return s;
  OpenResult out{client::FromProto(reply.entry()), reply.handle(),
                 reply.truncated()};
  if (reply.has_parent()) out.parent = client::FromProto(reply.parent());
  out.intent_lock = reply.intent_lock();
  return out;
}

absl::StatusOr<OpenResult> GrpcMds::Open(const OpCtx& ctx, uint64_t ino,
                                         uint32_t flags,
                                         uint64_t reopen_handle) {
  rpc::OpenReply reply;
  // Open or Open2, as negotiated with the MDS (versioned_calls.h).
  absl::Status s = OpenInProtocol(
      *mds_,
      {.ino = ino,
       .flags = flags,
       .reopen_handle = reopen_handle,
       .fill_cred = [&](rpc::Cred* c) { FillCred(ctx, c); }},
      ctx.interrupted, &reply);
  if (!s.ok()) return s;
  return FromProto(reply);
}

absl::Status GrpcMds::Release(const OpCtx& ctx, uint64_t handle) {
  rpc::ReleaseReply reply;
  return mds_->Call(
      &Mds::Stub::Release, "Release", ctx.interrupted,
      [&](rpc::ReleaseRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        r.set_handle(handle);
      },
      &reply);
}

absl::StatusOr<Entry> GrpcMds::UpdateSize(const OpCtx& ctx, uint64_t ino,
                                          uint64_t size, Timespec mtime,
                                          bool kill_priv) {
  rpc::Entry e;
  absl::Status s = mds_->Call(
      &Mds::Stub::UpdateSize, "UpdateSize", ctx.interrupted,
      [&](rpc::UpdateSizeRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_size(size);
        ToProto(mtime, r.mutable_mtime());
        r.set_kill_priv(kill_priv);
      },
      &e);
  return EntryOf(s, e);
}

absl::Status GrpcMds::Sync(const OpCtx& ctx) {
  return SyncMdsInProtocol(*mds_, ctx.interrupted);
}

absl::Status GrpcMds::SetXattr(const OpCtx& ctx, uint64_t ino,
                               const std::string& name,
                               const std::string& value, uint32_t flags) {
  rpc::XattrReply reply;
  return mds_->Call(
      &Mds::Stub::SetXattr, "SetXattr", ctx.interrupted,
      [&](rpc::SetXattrRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_name(name);
        r.set_value(value);
        r.set_flags(flags);
      },
      &reply);
}

absl::StatusOr<std::string> GrpcMds::GetXattr(const OpCtx& ctx, uint64_t ino,
                                              const std::string& name) {
  rpc::GetXattrReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::GetXattr, "GetXattr", ctx.interrupted,
      [&](rpc::GetXattrRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_name(name);
      },
      &reply);
  if (!s.ok()) return s;
  return std::move(*reply.mutable_value());
}

absl::StatusOr<std::vector<std::string>> GrpcMds::ListXattr(const OpCtx& ctx,
                                                            uint64_t ino) {
  rpc::ListXattrReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::ListXattr, "ListXattr", ctx.interrupted,
      [&](rpc::ListXattrRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
      },
      &reply);
  if (!s.ok()) return s;
  std::vector<std::string> names;
  names.reserve(reply.names_size());
  for (std::string& n : *reply.mutable_names()) names.push_back(std::move(n));
  return names;
}

absl::Status GrpcMds::RemoveXattr(const OpCtx& ctx, uint64_t ino,
                                  const std::string& name) {
  rpc::XattrReply reply;
  return mds_->Call(
      &Mds::Stub::RemoveXattr, "RemoveXattr", ctx.interrupted,
      [&](rpc::RemoveXattrRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_name(name);
      },
      &reply);
}

absl::StatusOr<Layout> GrpcMds::SetLayout(const OpCtx& ctx, uint64_t ino,
                                          const LayoutChange& change) {
  rpc::LayoutReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::SetLayout, "SetLayout", ctx.interrupted,
      [&](rpc::SetLayoutRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_stripe_size(change.stripe_size);
        r.set_stripe_count(change.stripe_count);
        if (change.stripe_offset.has_value()) {
          r.set_stripe_offset(*change.stripe_offset);
        }
      },
      &reply);
  if (!s.ok()) return s;
  return FromProto(reply.layout());
}

absl::StatusOr<Layout> GrpcMds::GetLayout(const OpCtx& ctx, uint64_t ino) {
  rpc::LayoutReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::GetLayout, "GetLayout", ctx.interrupted,
      [&](rpc::GetLayoutRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
      },
      &reply);
  if (!s.ok()) return s;
  return FromProto(reply.layout());
}

}  // namespace stripefs::client
