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
    "Punch",   "Destroy", "Sync",      "ObjAttr", "Statfs",   "Write2",
    "ListObjects"};

OssService::OssService(OssServiceOptions options, ObjectStore* store)
    : options_(std::move(options)),
      store_(store),
      common_({.role = "oss",
                .target = options_.target,
                .instance = options_.instance,
                .methods = {std::begin(kMethodNames), std::end(kMethodNames)},
                // OssV2 (Write2 and the methods after it) only from
                // protocol 2 (release N+1).
                .served = STRIPEFS_PROTO_MAX >= 2 ? size_t{kNumMethods}
                                                  : size_t{kWrite2}}) {}

grpc::Status OssService::Finish(Method m, const absl::Status& status,
                                const rpc::ReqHeader* hdr, uint64_t oid) {
  server::CallId call;
  if (hdr != nullptr) {
    call.client = hdr->client_id();
    call.xid = hdr->xid();
    // Between a modifying request's effect and its reply (`drop`: a lost
    // reply, the client resends the same request).
    call.before_reply_fault = "oss.before_reply";
  }
  if (oid != 0) call.detail = absl::StrCat("oid=", oid);
  return common_.Finish(m, status, call);
}

grpc::Status OssService::Connect(grpc::ServerContext*,
                                 const rpc::ConnectRequest* req,
                                 rpc::ConnectReply* reply) {
  Count(kConnect);
  if (common_.failing()) return server::FailingOver();
  auto answer = common_.Connect(*req);
  if (!answer.ok()) return rpc::ToGrpc(answer.status());
  *reply = std::move(*answer);
  return grpc::Status::OK;
}

grpc::Status OssService::Status(grpc::ServerContext*,
                                const rpc::StatusRequest*,
                                rpc::StatusReply* reply) {
  Count(kStatus);
  if (common_.failing()) return server::FailingOver();
  common_.FillStatus(reply);
  auto& info = *reply->mutable_info();
  info["objects"] = absl::StrCat(store_->object_count());
  info["last_oid"] = absl::StrCat(store_->last_oid());
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

void ConfigureOssServer(grpc::ServerBuilder& builder) {
  server::SetSyncThreads(builder, {.name = "stripefs-oss",
                                   .num_cqs = 2,
                                   .max_threads = 256});
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartOssServer(
    OssService* service, const std::string& listen, int* bound_port) {
  return server::BuildServer(
      listen,
      [service](grpc::ServerBuilder& b) {
        ConfigureOssServer(b);
        service->RegisterWith(b);
      },
      bound_port);
}

}  // namespace stripefs::oss
