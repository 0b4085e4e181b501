// MdsService's stripefs fsck methods (protocol 2, read-only): MdsCore's
// FsckState and ListObjectRefs (mds_core_fsck.cc) as messages.
#include "common/version.h"
#include "mds/mds_service.h"

#if STRIPEFS_PROTO_MAX >= 2
namespace stripefs::mds {
namespace {

rpc::FsckObjectRef::Kind ToProto(FsckRef::Kind k) {
  switch (k) {
    case FsckRef::Kind::kFile:
      return rpc::FsckObjectRef::FILE;
    case FsckRef::Kind::kUnlinkedOpen:
      return rpc::FsckObjectRef::UNLINKED_OPEN;
    case FsckRef::Kind::kDestroyQueued:
      return rpc::FsckObjectRef::DESTROY_QUEUED;
  }
  return rpc::FsckObjectRef::FILE;
}

}  // namespace

grpc::Status MdsService::FsckState(grpc::ServerContext*,
                                   const rpc::FsckStateRequest*,
                                   rpc::FsckStateReply* reply) {
  for (const FsckOst& o : core_->FsckState()) {
    rpc::FsckOstState* out = reply->add_osts();
    out->set_ost(o.ost);
    out->set_horizon(o.horizon);
    for (const auto& [first, end] : o.reserved) {
      rpc::FsckOidRange* r = out->add_reserved();
      r->set_first(first);
      r->set_end(end);
    }
  }
  return Finish(kFsckState, absl::OkStatus());
}

grpc::Status MdsService::ListObjectRefs(grpc::ServerContext*,
                                        const rpc::ListObjectRefsRequest* req,
                                        rpc::ListObjectRefsReply* reply) {
  absl::StatusOr<FsckRefPage> page =
      core_->ListObjectRefs(req->after(), req->max_refs());
  if (page.ok()) {
    for (const FsckRef& r : page->refs) {
      rpc::FsckObjectRef* out = reply->add_refs();
      out->set_kind(ToProto(r.kind));
      out->set_ost(r.ost);
      out->set_oid(r.oid);
      out->set_ino(r.ino);
      out->set_file_size(r.file_size);
      out->set_stripe_size(r.stripe_size);
      out->set_stripe(r.stripe);
      out->set_stripe_count(r.stripe_count);
      out->set_open_for_write(r.open_for_write);
    }
    reply->set_next(std::move(page->next));
  }
  return Finish(kListObjectRefs, page.status());
}

}  // namespace stripefs::mds
#endif
