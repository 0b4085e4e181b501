#include "cli/server_status.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "rpc/channel.h"
#include "rpc/proto/dlm.grpc.pb.h"
#include "rpc/proto/mds.grpc.pb.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "rpc/status.h"

namespace stripefs::cli {

absl::StatusOr<ServerStatus> QueryStatus(const std::string& role,
                                         const std::string& address,
                                         absl::Duration deadline,
                                         bool wait_for_ready) {
  std::shared_ptr<grpc::Channel> channel = rpc::MakeChannel(address);
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, deadline);
  ctx.set_wait_for_ready(wait_for_ready);
  rpc::StatusRequest req;
  rpc::StatusReply reply;
  grpc::Status gs;
  if (role == "mds") {
    gs = rpc::Mds::NewStub(channel)->Status(&ctx, req, &reply);
  } else if (role == "oss") {
    gs = rpc::Oss::NewStub(channel)->Status(&ctx, req, &reply);
  } else if (role == "dlm") {
    gs = rpc::Dlm::NewStub(channel)->Status(&ctx, req, &reply);
  } else {
    return Errno(EINVAL, absl::StrCat("unknown role '", role, "'"));
  }
  absl::Status s = rpc::FromGrpc(gs);
  if (!s.ok()) return s;
  ServerStatus out;
  out.target = reply.target();
  out.release = reply.release();
  out.pid = reply.pid();
  out.state = reply.state();
  for (const auto& [name, count] : reply.rpc_counts()) {
    out.rpc_counts[name] = count;
  }
  for (const auto& [key, value] : reply.info()) out.info[key] = value;
  return out;
}

}  // namespace stripefs::cli
