#include "server/service_common.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "common/version.h"
#include "grpcpp/resource_quota.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/status.h"
#include "spdlog/spdlog.h"

namespace stripefs::server {

ServiceCommon::ServiceCommon(ServiceOptions options)
    : options_(std::move(options)),
      counts_(new std::atomic<uint64_t>[options_.methods.size()]()) {}

absl::StatusOr<rpc::ConnectReply> ServiceCommon::Connect(
    const rpc::ConnectRequest& req,
    const std::function<absl::Status(const rpc::ConnectReply&)>& accept) {
  absl::StatusOr<rpc::ConnectReply> answer =
      rpc::AnswerConnect(req, options_.target, options_.instance);
  if (answer.ok() && accept) {
    if (absl::Status s = accept(*answer); !s.ok()) answer = s;
  }
  if (!answer.ok()) {
    spdlog::warn("Connect from {} ({}) client={} refused: {}",
                 req.client_name(), req.client_kind(), req.client_id(),
                 answer.status().ToString());
    return answer;
  }
  connections_.Note(req.client_name(), answer->proto());
  spdlog::info("connect from {} {} (client {}, release {}): proto {}",
               req.client_kind(), req.client_name(), req.client_id(),
               req.release(), answer->proto());
  return answer;
}

void ServiceCommon::FillStatus(rpc::StatusReply* reply) const {
  reply->set_target(options_.target);
  reply->set_release(kRelease);
  reply->set_proto_min(rpc::kProtoMin);
  reply->set_proto_max(rpc::kProtoMax);
  reply->set_pid(getpid());
  reply->set_state(stopping() ? "stopping" : "running");
  reply->set_instance(options_.instance);
  const size_t served =
      options_.served == 0 ? options_.methods.size() : options_.served;
  auto& counts = *reply->mutable_rpc_counts();
  for (size_t m = 0; m < served; ++m) {
    counts[options_.methods[m]] = counts_[m].load(std::memory_order_relaxed);
  }
  auto& info = *reply->mutable_info();
  info["role"] = options_.role;
  info["connections"] = connections_.Render();
}

grpc::Status ServiceCommon::Finish(int method, absl::Status status,
                                   const CallId& call) {
  const char* name = options_.methods[method];
  if (auto f = failover_.Answer(name, status, call.client, call.xid)) {
    return *f;
  }
  // The backend has answered; `drop` here loses the reply (a modifying
  // request has taken effect, and its resend is answered again).
  if (status.ok() && call.before_reply_fault != nullptr) {
    status = fault::Hit(call.before_reply_fault);
  }
  if (status.ok()) return grpc::Status::OK;
  const int err = ToErrno(status);
  const bool expected =
      !absl::IsUnavailable(status) && err != EIO && err != EROFS && err != 0;
  // An errno the caller expects (ENOENT of a lookup before each create):
  // nothing formatted unless debug logging is on.
  if (expected && !spdlog::should_log(spdlog::level::debug)) {
    return rpc::ToGrpc(status);
  }
  const std::string who = absl::StrCat(
      call.detail.empty() ? "" : absl::StrCat(call.detail, " "), "client ",
      call.client, " xid ", call.xid);
  if (absl::IsUnavailable(status)) {
    // Not an error of the request: the client resends it (same xid).
    spdlog::warn("{} ({}): reply not sent: {}", name, who, status.ToString());
  } else if (!expected) {
    spdlog::error("{} ({}) failed: {}", name, who, status.ToString());
  } else {
    spdlog::debug("{} ({}) failed: {}", name, who, status.ToString());
  }
  return rpc::ToGrpc(status);
}

void SetSyncThreads(grpc::ServerBuilder& builder, const SyncThreads& t) {
  using Option = grpc::ServerBuilder::SyncServerOption;
  if (t.num_cqs > 0) builder.SetSyncServerOption(Option::NUM_CQS, t.num_cqs);
  builder.SetSyncServerOption(Option::MIN_POLLERS, t.min_pollers);
  builder.SetSyncServerOption(Option::MAX_POLLERS, t.max_pollers);
  grpc::ResourceQuota quota(t.name);
  quota.SetMaxThreads(t.max_threads);
  builder.SetResourceQuota(quota);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(
    const std::string& listen,
    const std::function<void(grpc::ServerBuilder&)>& add, int* bound_port) {
  grpc::ServerBuilder builder;
  rpc::ConfigureServer(builder);
  // gRPC enables SO_REUSEPORT by default; a second server on a busy port
  // must fail instead of silently sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  add(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Errno(EADDRINUSE, absl::StrCat("cannot listen on ", listen));
  }
  if (bound_port != nullptr) *bound_port = port;
  return server;
}

}  // namespace stripefs::server
