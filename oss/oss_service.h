// OssService: the thin gRPC adapter of service Oss (rpc/proto/oss.proto)
// over an ObjectStore. Maps each RPC onto the store, returns
// rpc::ToGrpc(status), counts calls per method, logs one line per failed
// operation. StartOssServer builds a sync gRPC server around it with the
// shared limits and a thread pool sized for parallel I/O.
//
// Thread-safety: all methods are safe to call concurrently (gRPC does).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/version.h"
#include "grpcpp/grpcpp.h"
#include "oss/object_store.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "server/service_common.h"
#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/proto/oss_v2.grpc.pb.h"
#endif

namespace stripefs::oss {

struct OssServiceOptions {
  std::string target;     // "ost0", ...
  uint64_t instance = 0;  // changes with every server process start
};

class OssService final : public rpc::Oss::Service {
 public:
  // `store` must outlive the service.
  OssService(OssServiceOptions options, ObjectStore* store);

  // Status reports "stopping" from now on.
  void SetStopping() { common_.SetStopping(); }
  // Forced failover (SIGUSR1, seed 002): from now on every RPC, also one
  // executing now when it finishes, answers UNAVAILABLE "failing over".
  // Call before the store turns read-only.
  void BeginForcedFailover() { common_.BeginForcedFailover(); }

  grpc::Status Connect(grpc::ServerContext* ctx,
                       const rpc::ConnectRequest* req,
                       rpc::ConnectReply* reply) override;
  grpc::Status Status(grpc::ServerContext* ctx, const rpc::StatusRequest* req,
                      rpc::StatusReply* reply) override;
  grpc::Status Precreate(grpc::ServerContext* ctx,
                         const rpc::PrecreateRequest* req,
                         rpc::PrecreateReply* reply) override;
  grpc::Status Write(grpc::ServerContext* ctx, const rpc::WriteRequest* req,
                     rpc::WriteReply* reply) override;
  grpc::Status Read(grpc::ServerContext* ctx, const rpc::ReadRequest* req,
                    rpc::ReadReply* reply) override;
  grpc::Status Truncate(grpc::ServerContext* ctx,
                        const rpc::TruncateRequest* req,
                        rpc::Empty* reply) override;
  grpc::Status Punch(grpc::ServerContext* ctx, const rpc::PunchRequest* req,
                     rpc::Empty* reply) override;
  grpc::Status Destroy(grpc::ServerContext* ctx,
                       const rpc::DestroyRequest* req,
                       rpc::Empty* reply) override;
  grpc::Status Sync(grpc::ServerContext* ctx, const rpc::SyncRequest* req,
                    rpc::Empty* reply) override;
  grpc::Status ObjAttr(grpc::ServerContext* ctx,
                       const rpc::ObjAttrRequest* req,
                       rpc::ObjAttrReply* reply) override;
  grpc::Status Statfs(grpc::ServerContext* ctx,
                      const rpc::OssStatfsRequest* req,
                      rpc::OssStatfsReply* reply) override;
#if STRIPEFS_PROTO_MAX >= 2
  // OssV2.Write2 (protocol 2): verifies the data's crc32 (EIO and a log
  // line on mismatch, nothing written), then writes as Write.
  grpc::Status Write2(grpc::ServerContext* ctx, const rpc::Write2Request* req,
                      rpc::Write2Reply* reply);
  // OssV2.ListObjects (stripefs fsck, read-only; oss_service_fsck.cc).
  grpc::Status ListObjects(grpc::ServerContext* ctx,
                           const rpc::ListObjectsRequest* req,
                           rpc::ListObjectsReply* reply);
#endif

  // Registers the services of every protocol this build speaks: Oss, and
  // in release N+1 also OssV2 (Write2).
  void RegisterWith(grpc::ServerBuilder& builder);

 private:
  enum Method {
    kConnect,
    kStatus,
    kPrecreate,
    kWrite,
    kRead,
    kTruncate,
    kPunch,
    kDestroy,
    kSync,
    kObjAttr,
    kStatfs,
    kWrite2,
    kListObjects,
    kNumMethods
  };
  static const char* const kMethodNames[kNumMethods];

  // The answer (server::ServiceCommon::Finish); a modifying request (with
  // its header) passes fault point oss.before_reply.
  grpc::Status Finish(Method m, const absl::Status& status,
                      const rpc::ReqHeader* hdr, uint64_t oid);
  void Count(Method m) { common_.Count(m); }

  const OssServiceOptions options_;
  ObjectStore* const store_;
  server::ServiceCommon common_;
#if STRIPEFS_PROTO_MAX >= 2
  // Service OssV2 on the same server, forwarding to this one.
  class V2 final : public rpc::OssV2::Service {
   public:
    explicit V2(OssService* s) : s_(s) {}
    grpc::Status Write2(grpc::ServerContext* ctx,
                        const rpc::Write2Request* req,
                        rpc::Write2Reply* reply) override {
      return s_->Write2(ctx, req, reply);
    }
    grpc::Status ListObjects(grpc::ServerContext* ctx,
                             const rpc::ListObjectsRequest* req,
                             rpc::ListObjectsReply* reply) override {
      return s_->ListObjects(ctx, req, reply);
    }

   private:
    OssService* const s_;
  };
  V2 v2_{this};
#endif
};

// The OSS's gRPC server settings: enough pollers and threads that parallel
// stripes of many clients proceed at once.
void ConfigureOssServer(grpc::ServerBuilder& builder);

// Builds and starts a server for `service` on `listen` (HOST:PORT; port 0
// picks a free one, reported in *bound_port when non-null), as the
// stripefs-oss process does (tests, benchmarks).
[[nodiscard]] absl::StatusOr<std::unique_ptr<grpc::Server>> StartOssServer(
    OssService* service, const std::string& listen, int* bound_port = nullptr);

}  // namespace stripefs::oss
