#include "cli/admin_rpc.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/version.h"
#include "rpc/channel.h"
#include "rpc/proto/mds.grpc.pb.h"
#include "rpc/status.h"
#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/proto/mds_v2.grpc.pb.h"
#endif

namespace stripefs::cli {

std::string TargetInfo::StateText() const {
  if (active) return "active";
  return fail_io ? "inactive, I/O fails" : "inactive";
}

absl::StatusOr<std::vector<TargetInfo>> QueryTargets(
    const std::string& mds_address, absl::Duration deadline) {
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, deadline);
  rpc::GetConfigRequest req;
  rpc::GetConfigReply reply;
  absl::Status s = rpc::FromGrpc(rpc::Mds::NewStub(rpc::MakeChannel(
                                     mds_address))
                                     ->GetConfig(&ctx, req, &reply));
  if (!s.ok()) return s;
  std::vector<TargetInfo> out;
  for (const rpc::OstInfo& o : reply.osts()) {
    out.push_back({o.index(), o.address(), o.active(), o.fail_io()});
  }
  return out;
}

absl::Status ChangeTarget(const std::string& mds_address, TargetOp op,
                          uint32_t index, const std::string& address,
                          bool flag, absl::Duration deadline) {
#if STRIPEFS_PROTO_MAX >= 2
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, deadline);
  rpc::SetTargetRequest req;
  req.set_op(op == TargetOp::kAdd          ? rpc::SetTargetRequest::ADD
             : op == TargetOp::kDeactivate ? rpc::SetTargetRequest::DEACTIVATE
             : op == TargetOp::kActivate   ? rpc::SetTargetRequest::ACTIVATE
                                           : rpc::SetTargetRequest::REMOVE);
  req.set_index(index);
  req.set_address(address);
  req.set_fail_io(op == TargetOp::kDeactivate && flag);
  req.set_force(op == TargetOp::kRemove && flag);
  rpc::SetTargetReply reply;
  absl::Status s = rpc::FromGrpc(
      rpc::MdsV2::NewStub(rpc::MakeChannel(mds_address))
          ->SetTarget(&ctx, req, &reply));
  if (absl::IsUnimplemented(s)) {
    return Errno(ENOTSUP, "the MDS's release cannot change targets online "
                          "(upgrade it first)");
  }
  return s;
#else
  return Errno(ENOTSUP, "this release cannot change targets online");
#endif
}

}  // namespace stripefs::cli
