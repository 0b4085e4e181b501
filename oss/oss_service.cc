#include "oss/oss_service.h"

#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "common/version.h"
#include "grpcpp/resource_quota.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/status.h"
#include "rpc/wire_v2.h"
#include "spdlog/spdlog.h"

namespace stripefs::oss {
namespace {
}  // namespace

const char* const OssService::kMethodNames[kNumMethods] = {
    "Connect", "Status",  "Precreate", "Write",   "Read",  "Truncate",
    "Punch",   "Destroy", "Sync",      "ObjAttr", "Statfs",   "Write2"};

OssService::OssService(OssServiceOptions options, ObjectStore* store)
    : options_(std::move(options)), store_(store) {}

grpc::Status OssService::Finish(Method m, const absl::Status& status,
                                const rpc::ReqHeader* hdr, uint64_t oid) {
  // A forced failover began: UNAVAILABLE whatever the result, the client
  // resends the (idempotent) request to the next instance.
  if (auto f = failover_.Answer(kMethodNames[m], status,
                                hdr != nullptr ? hdr->client_id() : 0,
                                hdr != nullptr ? hdr->xid() : 0)) {
    return *f;
  }
  // Fault point between a modifying request's effect and its reply (`drop`:
  // a lost reply, the client resends the same request).
  if (status.ok() && hdr != nullptr) {
    if (absl::Status f = fault::Hit("oss.before_reply"); !f.ok()) {
      return Finish(m, f, hdr, oid);
    }
  }
  if (status.ok()) return grpc::Status::OK;
  if (hdr != nullptr) {
    spdlog::warn("{} oid={} client={} xid={} failed: {}", kMethodNames[m], oid,
                 hdr->client_id(), hdr->xid(), status.ToString());
  } else {
    spdlog::warn("{} oid={} failed: {}", kMethodNames[m], oid,
                 status.ToString());
  }
  return rpc::ToGrpc(status);
}

grpc::Status OssService::Connect(grpc::ServerContext*,
                                 const rpc::ConnectRequest* req,
                                 rpc::ConnectReply* reply) {
  Count(kConnect);
  if (failover_.failing()) return rpc::FailingOver();
  auto answer = rpc::AnswerConnect(*req, options_.target, options_.instance);
  if (!answer.ok()) {
    spdlog::warn("Connect from {} ({}) client={} refused: {}",
                 req->client_name(), req->client_kind(), req->client_id(),
                 answer.status().ToString());
    return rpc::ToGrpc(answer.status());
  }
  *reply = std::move(*answer);
  connections_.Note(req->client_name(), reply->proto());
  spdlog::info("connect from {} {} (client {}, release {}): proto {}",
               req->client_kind(), req->client_name(), req->client_id(),
               req->release(), reply->proto());
  return grpc::Status::OK;
}

grpc::Status OssService::Status(grpc::ServerContext*,
                                const rpc::StatusRequest*,
                                rpc::StatusReply* reply) {
  Count(kStatus);
  if (failover_.failing()) return rpc::FailingOver();
  reply->set_target(options_.target);
  reply->set_release(kRelease);
  reply->set_proto_min(rpc::kProtoMin);
  reply->set_proto_max(rpc::kProtoMax);
  reply->set_pid(getpid());
  reply->set_state(stopping_.load() ? "stopping" : "running");
  reply->set_instance(options_.instance);
  auto& counts = *reply->mutable_rpc_counts();
  for (int m = 0; m < kNumMethods; ++m) {
    if (m == kWrite2 && STRIPEFS_PROTO_MAX < 2) continue;  // release N
    counts[kMethodNames[m]] = counts_[m].load(std::memory_order_relaxed);
  }
  auto& info = *reply->mutable_info();
  info["role"] = "oss";
  info["objects"] = absl::StrCat(store_->object_count());
  info["last_oid"] = absl::StrCat(store_->last_oid());
  info["connections"] = connections_.Render();
  return grpc::Status::OK;
}

grpc::Status OssService::Precreate(grpc::ServerContext*,
                                   const rpc::PrecreateRequest* req,
                                   rpc::PrecreateReply* reply) {
  Count(kPrecreate);
  auto first = store_->Precreate(req->count());
  if (first.ok()) {
    reply->set_first_oid(*first);
    reply->set_count(req->count());
  }
  return Finish(kPrecreate, first.status(), &req->hdr(), 0);
}

grpc::Status OssService::Write(grpc::ServerContext*,
                               const rpc::WriteRequest* req,
                               rpc::WriteReply* reply) {
  Count(kWrite);
  auto size = store_->Write(req->oid(), req->offset(), req->data(), req->sync());
  if (size.ok()) reply->set_object_size(*size);
  return Finish(kWrite, size.status(), &req->hdr(), req->oid());
}

#if STRIPEFS_PROTO_MAX >= 2
grpc::Status OssService::Write2(grpc::ServerContext*,
                                const rpc::Write2Request* req,
                                rpc::Write2Reply* reply) {
  Count(kWrite2);
  if (absl::Status s = rpc::VerifyWriteCrc(*req); !s.ok()) {
    return Finish(kWrite2, s, &req->hdr(), req->oid());
  }
  auto size = store_->Write(req->oid(), req->offset(), req->data(), req->sync());
  if (size.ok()) reply->set_object_size(*size);
  return Finish(kWrite2, size.status(), &req->hdr(), req->oid());
}
#endif

void OssService::RegisterWith(grpc::ServerBuilder& builder) {
  builder.RegisterService(static_cast<rpc::Oss::Service*>(this));
#if STRIPEFS_PROTO_MAX >= 2
  builder.RegisterService(&v2_);
#endif
}

grpc::Status OssService::Read(grpc::ServerContext*, const rpc::ReadRequest* req,
                              rpc::ReadReply* reply) {
  Count(kRead);
  auto size = store_->Read(req->oid(), req->offset(), req->length(),
                           reply->mutable_data());
  if (size.ok()) reply->set_object_size(*size);
  return Finish(kRead, size.status(), nullptr, req->oid());
}

grpc::Status OssService::Truncate(grpc::ServerContext*,
                                  const rpc::TruncateRequest* req,
                                  rpc::Empty*) {
  Count(kTruncate);
  return Finish(kTruncate, store_->Truncate(req->oid(), req->size()),
                &req->hdr(), req->oid());
}

grpc::Status OssService::Punch(grpc::ServerContext*,
                               const rpc::PunchRequest* req, rpc::Empty*) {
  Count(kPunch);
  return Finish(kPunch,
                store_->Punch(req->oid(), req->offset(), req->length()),
                &req->hdr(), req->oid());
}

grpc::Status OssService::Destroy(grpc::ServerContext*,
                                 const rpc::DestroyRequest* req, rpc::Empty*) {
  Count(kDestroy);
  std::vector<uint64_t> oids(req->oids().begin(), req->oids().end());
  return Finish(kDestroy, store_->Destroy(oids), &req->hdr(),
                oids.empty() ? 0 : oids.front());
}

grpc::Status OssService::Sync(grpc::ServerContext*, const rpc::SyncRequest* req,
                              rpc::Empty*) {
  Count(kSync);
  std::vector<uint64_t> oids(req->oids().begin(), req->oids().end());
  return Finish(kSync, store_->Sync(oids), &req->hdr(),
                oids.empty() ? 0 : oids.front());
}

grpc::Status OssService::ObjAttr(grpc::ServerContext*,
                                 const rpc::ObjAttrRequest* req,
                                 rpc::ObjAttrReply* reply) {
  Count(kObjAttr);
  auto attr = store_->GetAttr(req->oid());
  if (attr.ok()) {
    reply->set_size(attr->size);
    reply->set_blocks(attr->blocks);
  }
  return Finish(kObjAttr, attr.status(), nullptr, req->oid());
}

grpc::Status OssService::Statfs(grpc::ServerContext*,
                                const rpc::OssStatfsRequest*,
                                rpc::OssStatfsReply* reply) {
  Count(kStatfs);
  auto st = store_->Statfs();
  if (st.ok()) {
    reply->set_total_bytes(st->total_bytes);
    reply->set_free_bytes(st->free_bytes);
    reply->set_avail_bytes(st->avail_bytes);
    reply->set_objects(st->objects);
  }
  return Finish(kStatfs, st.status(), nullptr, 0);
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartOssServer(
    OssService* service, const std::string& listen, int* bound_port) {
  grpc::ServerBuilder builder;
  rpc::ConfigureServer(builder);
  // gRPC enables SO_REUSEPORT by default; a second server on a busy port
  // must fail instead of silently sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Sync server: one thread per in-flight call. Enough pollers and threads
  // that parallel stripes of many clients proceed at once.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS,
                              2);
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 8);
  grpc::ResourceQuota quota("stripefs-oss");
  quota.SetMaxThreads(256);
  builder.SetResourceQuota(quota);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  service->RegisterWith(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Errno(EADDRINUSE, absl::StrCat("cannot listen on ", listen));
  }
  if (bound_port != nullptr) *bound_port = port;
  return server;
}

}  // namespace stripefs::oss
