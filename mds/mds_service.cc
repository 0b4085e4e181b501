#include "mds/mds_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/errors.h"
#include "common/fault_points.h"
#include "common/version.h"
#include "rpc/handshake.h"
#include "rpc/status.h"
#include "rpc/wire_v2.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {

constexpr const char* kMethodNames[] = {
    "Connect",  "Status",   "GetConfig", "Lookup",      "GetAttr",
    "SetAttr",  "Create",   "Open",      "Release",     "Mknod",
    "Mkdir",    "Symlink",  "Link",      "Remove",      "Rename",
    "Readlink", "Readdir",  "Statfs",    "SetXattr",    "GetXattr",
    "ListXattr", "RemoveXattr", "Access", "UpdateSize", "SetLayout",
    "GetLayout", "Open2", "Sync", "SetTarget", "FsckState",
    "ListObjectRefs"};
static_assert(sizeof(kMethodNames) / sizeof(kMethodNames[0]) ==
              MdsService::kNumMethods);

Cred FromProto(const rpc::Cred& c) {
  Cred out;
  out.uid = c.uid();
  out.gid = c.gid();
  out.groups.assign(c.groups().begin(), c.groups().end());
  return out;
}

ReqId FromProto(const rpc::ReqHeader& h) {
  return {h.client_id(), h.xid(), h.own_md_cache()};
}

Timespec FromProto(const rpc::Timespec& t) {
  return Timespec{t.sec(), t.nsec()};
}

void ToProto(const Timespec& t, rpc::Timespec* out) {
  out->set_sec(t.sec);
  out->set_nsec(t.nsec);
}

}  // namespace

void ToProto(const Inode& n, rpc::Attr* a) {
  a->set_ino(n.ino);
  a->set_mode(n.mode);
  a->set_nlink(n.nlink);
  a->set_uid(n.uid);
  a->set_gid(n.gid);
  a->set_size(S_ISDIR(n.mode) ? 4096 : n.size);
  a->set_rdev(n.rdev);
  a->set_blocks(S_ISREG(n.mode) ? (n.size + 511) / 512 : 0);
  ToProto(n.atime, a->mutable_atime());
  ToProto(n.mtime, a->mutable_mtime());
  ToProto(n.ctime, a->mutable_ctime());
}

void ToProto(const Layout& l, rpc::Layout* out) {
  out->set_stripe_size(l.stripe_size);
  out->set_stripe_count(l.stripe_count);
  out->set_stripe_offset(l.stripe_offset);
  for (const auto& o : l.objects) {
    auto* so = out->add_objects();
    so->set_ost(o.ost);
    so->set_oid(o.oid);
  }
}

void ToProto(const Inode& n, rpc::Entry* e) {
  ToProto(n, e->mutable_attr());
  if (S_ISREG(n.mode)) ToProto(n.layout, e->mutable_layout());
}

MdsService::MdsService(MdsCore* core, std::string target, uint64_t instance)
    : core_(core),
      common_({.role = "mds",
                .target = std::move(target),
                .instance = instance,
                .methods = {std::begin(kMethodNames), std::end(kMethodNames)},
                // MdsV2 (Open2 and the methods after it) only from
                // protocol 2.
                .served = STRIPEFS_PROTO_MAX >= 2 ? size_t{kNumMethods}
                                                  : size_t{kOpen2}}) {}

grpc::Status MdsService::Finish(Method m, const absl::Status& result,
                                uint64_t client_id, uint64_t xid) {
  common_.Count(m);
  // Any request carrying the client's ReqHeader renews its lease.
  if (leases_ != nullptr) leases_->Heard(client_id);
  // The core has answered; `drop` at the fault point loses the reply of any
  // method (a modifying one has committed, and its resend is answered from
  // its reply record).
  return common_.Finish(m, result,
                        {.client = client_id,
                         .xid = xid,
                         .before_reply_fault = "mds.before_reply"});
}

grpc::Status MdsService::Connect(grpc::ServerContext*,
                                 const rpc::ConnectRequest* req,
                                 rpc::ConnectReply* reply) {
  auto r = common_.Connect(*req);
  if (r.ok()) {
    *reply = std::move(*r);
    if (leases_ != nullptr) {
      leases_->Connected(req->client_id(), req->client_kind(),
                         req->client_name(), reply->features());
    }
  }
  return Finish(kConnect, r.status(), req->client_id());
}

grpc::Status MdsService::Status(grpc::ServerContext*,
                                const rpc::StatusRequest* req,
                                rpc::StatusReply* reply) {
  common_.Count(kStatus);
  // A mount's keepalive (N+1) names its client: its lease is renewed, and
  // it learns of its eviction until it acknowledges it.
  ClientLeases::StatusAnswer lease;
  if (leases_ != nullptr) {
    // Eviction ids are this instance's: an acknowledgement meant for a
    // previous one acknowledges nothing.
    const uint64_t ack = req->evicted_ack_instance() == common_.instance()
                             ? req->evicted_ack()
                             : 0;
    lease = leases_->HeardStatus(req->client_id(), ack);
  }
  if (common_.failing()) return server::FailingOver();
  reply->set_evicted(lease.evicted);
  reply->set_evicted_below_handle(lease.evicted_below_handle);
  if (lease.tracked) {
    reply->set_client_lease_ms(absl::ToInt64Milliseconds(leases_->lease()));
  }
  common_.FillStatus(reply);
  auto& info = *reply->mutable_info();
  info["inodes"] = std::to_string(core_->InodeCount());
  info["open_handles"] = std::to_string(core_->OpenHandleCount());
  info["osts"] = std::to_string(core_->Osts().size());
  return grpc::Status::OK;
}

grpc::Status MdsService::GetConfig(grpc::ServerContext*,
                                   const rpc::GetConfigRequest*,
                                   rpc::GetConfigReply* reply) {
  reply->set_root_ino(kRootIno);
  reply->set_dlm_address(core_->options().dlm_address);
  for (const auto& t : core_->Osts()) {
    auto* o = reply->add_osts();
    o->set_index(t.index);
    o->set_address(t.address);
    o->set_active(t.active);
    o->set_fail_io(t.fail_io);
  }
  return Finish(kGetConfig, absl::OkStatus());
}

grpc::Status MdsService::Lookup(grpc::ServerContext*,
                                const rpc::LookupRequest* req,
                                rpc::Entry* reply) {
  auto r = core_->Lookup(FromProto(req->cred()), req->parent(), req->name());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kLookup, r.status());
}

grpc::Status MdsService::GetAttr(grpc::ServerContext*,
                                 const rpc::GetAttrRequest* req,
                                 rpc::Entry* reply) {
  auto r = core_->GetAttr(req->ino());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kGetAttr, r.status());
}

grpc::Status MdsService::SetAttr(grpc::ServerContext*,
                                 const rpc::SetAttrRequest* req,
                                 rpc::Entry* reply) {
  SetAttrArgs a;
  a.valid = req->valid();
  a.mode = req->mode();
  a.uid = req->uid();
  a.gid = req->gid();
  a.size = req->size();
  a.atime = FromProto(req->atime());
  a.mtime = FromProto(req->mtime());
  a.ctime = FromProto(req->ctime());
  a.handle = req->handle();
  auto r = core_->SetAttr(FromProto(req->hdr()), FromProto(req->cred()),
                          req->ino(), a);
  if (r.ok()) ToProto(*r, reply);
  return Finish(kSetAttr, r.status(), req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Create(grpc::ServerContext*,
                                const rpc::CreateRequest* req,
                                rpc::CreateReply* reply) {
  auto r = core_->Create(FromProto(req->hdr()), FromProto(req->cred()),
                         req->parent(), req->name(), req->mode(),
                         req->flags(),
                         {req->intent_dlm_client(), req->intent_bits()});
  if (r.ok()) {
    ToProto(r->inode, reply->mutable_entry());
    reply->set_handle(r->handle);
    reply->set_intent_lock(r->intent_lock);
    if (req->hdr().own_md_cache()) {
      auto p = core_->GetAttr(req->parent());
      if (p.ok()) ToProto(*p, reply->mutable_parent());
    }
  }
  return Finish(kCreate, r.status(), req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Open(grpc::ServerContext*,
                              const rpc::OpenRequest* req,
                              rpc::OpenReply* reply) {
  if (req->reopen_handle() != 0) {
    // Controlled failover: the client re-establishes a handle of the
    // previous instance (no lock needed: nothing changes).
    auto r = core_->Reopen(FromProto(req->hdr()), req->reopen_handle(),
                           req->ino());
    if (r.ok()) {
      ToProto(r->inode, reply->mutable_entry());
      reply->set_handle(r->handle);
    }
    return Finish(kOpen, r.status(), req->hdr().client_id(),
                  req->hdr().xid());
  }
  auto r = core_->Open(FromProto(req->hdr()), FromProto(req->cred()),
                       req->ino(), req->flags());
  if (r.ok()) {
    ToProto(r->inode, reply->mutable_entry());
    reply->set_handle(r->handle);
    reply->set_truncated(r->truncated);
  }
  return Finish(kOpen, r.status(), req->hdr().client_id(), req->hdr().xid());
}

void MdsService::RegisterWith(grpc::ServerBuilder& builder) {
  // Handlers block (locks, the store), so keep pollers spare: with gRPC's
  // defaults (1 to 2) a second call in flight made it start a thread per
  // call (about 140 a second under mdtest).
  server::SetSyncThreads(builder, {.name = "stripefs-mds",
                                   .min_pollers = 4,
                                   .max_pollers = 16,
                                   .max_threads = 512});
  builder.RegisterService(static_cast<rpc::Mds::Service*>(this));
#if STRIPEFS_PROTO_MAX >= 2
  builder.RegisterService(&v2_);
#endif
}

#if STRIPEFS_PROTO_MAX >= 2
grpc::Status MdsService::Open2(grpc::ServerContext* ctx,
                               const rpc::Open2Request* req,
                               rpc::Open2Reply* reply) {
  absl::StatusOr<rpc::OpenRequest> v1 = rpc::FromOpen2(*req);
  if (!v1.ok()) {
    return Finish(kOpen2, v1.status(), req->hdr().client_id(),
                  req->hdr().xid());
  }
  common_.Count(kOpen2);
  rpc::OpenReply r1;
  grpc::Status gs = Open(ctx, &*v1, &r1);
  if (gs.ok()) *reply = rpc::ToOpen2Reply(std::move(r1), *req);
  return gs;
}

grpc::Status MdsService::SetTarget(grpc::ServerContext*,
                                   const rpc::SetTargetRequest* req,
                                   rpc::SetTargetReply*) {
  // A new target's first precreate may wait for its OSS this long.
  constexpr absl::Duration kAddWait = absl::Seconds(20);
  absl::Status s;
  if (registry_ == nullptr) {
    s = Errno(ENOTSUP, "this MDS cannot change its targets");
  } else if (req->op() == rpc::SetTargetRequest::ADD) {
    s = registry_->Add(req->index(), req->address(), kAddWait);
  } else if (req->op() == rpc::SetTargetRequest::DEACTIVATE) {
    s = registry_->SetState(req->index(), false, req->fail_io());
  } else if (req->op() == rpc::SetTargetRequest::ACTIVATE) {
    s = registry_->SetState(req->index(), true, false);
  } else if (req->op() == rpc::SetTargetRequest::REMOVE) {
    s = registry_->Remove(req->index(), req->force());
  } else {
    s = Errno(EINVAL, "unknown target operation");
  }
  return Finish(kSetTarget, s, req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::SyncMds(grpc::ServerContext*,
                                 const rpc::SyncMdsRequest* req,
                                 rpc::SyncMdsReply*) {
  return Finish(kSync, core_->Sync(), req->hdr().client_id(),
                req->hdr().xid());
}
#endif

grpc::Status MdsService::Release(grpc::ServerContext*,
                                 const rpc::ReleaseRequest* req,
                                 rpc::ReleaseReply*) {
  absl::Status s = core_->Release(FromProto(req->hdr()), req->handle());
  return Finish(kRelease, s, req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Mknod(grpc::ServerContext*,
                               const rpc::MknodRequest* req,
                               rpc::Entry* reply) {
  auto r = core_->Mknod(FromProto(req->hdr()), FromProto(req->cred()),
                        req->parent(), req->name(), req->mode(), req->rdev());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kMknod, r.status(), req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Mkdir(grpc::ServerContext*,
                               const rpc::MkdirRequest* req,
                               rpc::Entry* reply) {
  auto r = core_->Mkdir(FromProto(req->hdr()), FromProto(req->cred()),
                        req->parent(), req->name(), req->mode());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kMkdir, r.status(), req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Symlink(grpc::ServerContext*,
                                 const rpc::SymlinkRequest* req,
                                 rpc::Entry* reply) {
  auto r = core_->Symlink(FromProto(req->hdr()), FromProto(req->cred()),
                          req->parent(), req->name(), req->target());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kSymlink, r.status(), req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Link(grpc::ServerContext*, const rpc::LinkRequest* req,
                              rpc::Entry* reply) {
  auto r = core_->Link(FromProto(req->hdr()), FromProto(req->cred()),
                       req->ino(), req->new_parent(), req->new_name());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kLink, r.status(), req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Remove(grpc::ServerContext*,
                                const rpc::RemoveRequest* req,
                                rpc::RemoveReply* reply) {
  absl::Status s = core_->Remove(FromProto(req->hdr()), FromProto(req->cred()),
                                 req->parent(), req->name(), req->dir(),
                                 req->exempt_child());
  if (s.ok() && req->hdr().own_md_cache()) {
    auto p = core_->GetAttr(req->parent());
    if (p.ok()) ToProto(*p, reply->mutable_parent());
  }
  return Finish(kRemove, s, req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Rename(grpc::ServerContext*,
                                const rpc::RenameRequest* req,
                                rpc::RenameReply*) {
  absl::Status s = core_->Rename(
      FromProto(req->hdr()), FromProto(req->cred()), req->parent(),
      req->name(), req->new_parent(), req->new_name(), req->flags());
  return Finish(kRename, s, req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Readlink(grpc::ServerContext*,
                                  const rpc::ReadlinkRequest* req,
                                  rpc::ReadlinkReply* reply) {
  auto r = core_->Readlink(FromProto(req->cred()), req->ino());
  if (r.ok()) reply->set_target(*r);
  return Finish(kReadlink, r.status());
}

grpc::Status MdsService::Readdir(grpc::ServerContext*,
                                 const rpc::ReaddirRequest* req,
                                 rpc::ReaddirReply* reply) {
  auto r = core_->Readdir(FromProto(req->cred()), req->ino(), req->cookie(),
                          req->max_entries(), req->plus());
  if (r.ok()) {
    for (auto& e : r->entries) {
      auto* d = reply->add_entries();
      d->set_name(e.name);
      d->set_ino(e.ino);
      d->set_type(e.type);
      d->set_cookie(e.cookie);
      if (e.inode.has_value()) ToProto(*e.inode, d->mutable_entry());
    }
    reply->set_eof(r->eof);
  }
  return Finish(kReaddir, r.status());
}

grpc::Status MdsService::Statfs(grpc::ServerContext*,
                                const rpc::StatfsRequest*,
                                rpc::StatfsReply* reply) {
  auto r = core_->Statfs();
  if (r.ok()) {
    reply->set_bsize(r->bsize);
    reply->set_blocks(r->blocks);
    reply->set_bfree(r->bfree);
    reply->set_bavail(r->bavail);
    reply->set_files(r->files);
    reply->set_ffree(r->ffree);
    reply->set_namelen(r->namelen);
  }
  return Finish(kStatfs, r.status());
}

grpc::Status MdsService::SetXattr(grpc::ServerContext*,
                                  const rpc::SetXattrRequest* req,
                                  rpc::XattrReply*) {
  absl::Status s =
      core_->SetXattr(FromProto(req->hdr()), FromProto(req->cred()),
                      req->ino(), req->name(), req->value(), req->flags());
  return Finish(kSetXattr, s, req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::GetXattr(grpc::ServerContext*,
                                  const rpc::GetXattrRequest* req,
                                  rpc::GetXattrReply* reply) {
  auto r = core_->GetXattr(FromProto(req->cred()), req->ino(), req->name());
  if (r.ok()) reply->set_value(std::move(*r));
  return Finish(kGetXattr, r.status());
}

grpc::Status MdsService::ListXattr(grpc::ServerContext*,
                                   const rpc::ListXattrRequest* req,
                                   rpc::ListXattrReply* reply) {
  auto r = core_->ListXattr(FromProto(req->cred()), req->ino());
  if (r.ok()) {
    for (auto& n : *r) reply->add_names(std::move(n));
  }
  return Finish(kListXattr, r.status());
}

grpc::Status MdsService::RemoveXattr(grpc::ServerContext*,
                                     const rpc::RemoveXattrRequest* req,
                                     rpc::XattrReply*) {
  absl::Status s = core_->RemoveXattr(
      FromProto(req->hdr()), FromProto(req->cred()), req->ino(), req->name());
  return Finish(kRemoveXattr, s, req->hdr().client_id(), req->hdr().xid());
}

grpc::Status MdsService::Access(grpc::ServerContext*,
                                const rpc::AccessRequest* req,
                                rpc::AccessReply*) {
  absl::Status s =
      core_->Access(FromProto(req->cred()), req->ino(), req->mask());
  return Finish(kAccess, s);
}

grpc::Status MdsService::UpdateSize(grpc::ServerContext*,
                                    const rpc::UpdateSizeRequest* req,
                                    rpc::Entry* reply) {
  std::optional<Timespec> mtime;
  if (req->has_mtime()) mtime = FromProto(req->mtime());
  auto r = core_->UpdateSize(FromProto(req->hdr()), FromProto(req->cred()),
                             req->ino(), req->size(), mtime, req->kill_priv());
  if (r.ok()) ToProto(*r, reply);
  return Finish(kUpdateSize, r.status(), req->hdr().client_id(),
                req->hdr().xid());
}

grpc::Status MdsService::SetLayout(grpc::ServerContext*,
                                   const rpc::SetLayoutRequest* req,
                                   rpc::LayoutReply* reply) {
  auto r = core_->SetLayout(FromProto(req->hdr()), FromProto(req->cred()),
                            req->ino(), req->stripe_size(),
                            req->stripe_count(),
                            req->has_stripe_offset()
                                ? std::optional<int32_t>(req->stripe_offset())
                                : std::nullopt);
  if (r.ok()) ToProto(*r, reply->mutable_layout());
  return Finish(kSetLayout, r.status(), req->hdr().client_id(),
                req->hdr().xid());
}

grpc::Status MdsService::GetLayout(grpc::ServerContext*,
                                   const rpc::GetLayoutRequest* req,
                                   rpc::LayoutReply* reply) {
  auto r = core_->GetLayout(FromProto(req->cred()), req->ino());
  if (r.ok()) ToProto(*r, reply->mutable_layout());
  return Finish(kGetLayout, r.status());
}

}  // namespace stripefs::mds
