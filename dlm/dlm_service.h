// DlmService: the thin gRPC adapter of service Dlm (rpc/proto/dlm.proto)
// over a LockManager. Maps each RPC onto the manager, returns
// rpc::ToGrpc(status), counts calls per method, logs one line per failed
// operation. Session is a sync server-streaming call that forwards the
// client's callback events until the session ends. A ticker thread calls
// LockManager::Tick() once a second. StartDlmServer builds the server.
//
// Thread-safety: all methods are safe to call concurrently (gRPC does).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "dlm/lock_manager.h"
#include "grpcpp/grpcpp.h"
#include "rpc/proto/dlm.grpc.pb.h"
#include "server/service_common.h"

namespace stripefs::dlm {

struct DlmServiceOptions {
  std::string target = "dlm";
  uint64_t instance = 0;  // changes with every server process start
  // How long a Glimpse waits for holders' answers. Default 5 s.
  absl::Duration glimpse_timeout = absl::Seconds(5);
  // Period of LockManager::Tick (real time). Default 1 s; 0 disables
  // the ticker (tests with a fake clock call Tick themselves).
  absl::Duration tick_period = absl::Seconds(1);
};

class DlmService final : public rpc::Dlm::Service {
 public:
  // `manager` must outlive the service.
  DlmService(DlmServiceOptions options, LockManager* manager);
  ~DlmService() override;

  // Status reports "stopping"; the ticker stops.
  void SetStopping();

  grpc::Status Connect(grpc::ServerContext* ctx,
                       const rpc::ConnectRequest* req,
                       rpc::ConnectReply* reply) override;
  grpc::Status Status(grpc::ServerContext* ctx, const rpc::StatusRequest* req,
                      rpc::StatusReply* reply) override;
  grpc::Status Enqueue(grpc::ServerContext* ctx,
                       const rpc::EnqueueRequest* req,
                       rpc::EnqueueReply* reply) override;
  grpc::Status Convert(grpc::ServerContext* ctx,
                       const rpc::ConvertRequest* req,
                       rpc::ConvertReply* reply) override;
  grpc::Status Cancel(grpc::ServerContext* ctx, const rpc::CancelRequest* req,
                      rpc::DlmEmpty* reply) override;
  grpc::Status Session(grpc::ServerContext* ctx,
                       const rpc::SessionRequest* req,
                       grpc::ServerWriter<rpc::Callback>* writer) override;
  grpc::Status Glimpse(grpc::ServerContext* ctx,
                       const rpc::GlimpseRequest* req,
                       rpc::GlimpseResult* reply) override;
  grpc::Status GlimpseReply(grpc::ServerContext* ctx,
                            const rpc::GlimpseAnswer* req,
                            rpc::DlmEmpty* reply) override;
  grpc::Status Touch(grpc::ServerContext* ctx, const rpc::TouchRequest* req,
                     rpc::DlmEmpty* reply) override;
  grpc::Status Replay(grpc::ServerContext* ctx, const rpc::ReplayRequest* req,
                      rpc::DlmEmpty* reply) override;

 private:
  enum Method {
    kConnect,
    kStatus,
    kEnqueue,
    kConvert,
    kCancel,
    kSession,
    kGlimpse,
    kGlimpseReply,
    kTouch,
    kReplay,
    kNumMethods
  };
  static const char* const kMethodNames[kNumMethods];

  // Counts the call; the answer (server::ServiceCommon::Finish).
  grpc::Status Finish(Method m, const absl::Status& status, uint64_t client,
                      uint64_t xid);
  void Count(Method m) { common_.Count(m); }

  const DlmServiceOptions options_;
  LockManager* const manager_;
  server::ServiceCommon common_;
  absl::Notification stop_ticker_;
  std::thread ticker_;
};

// The DLM's gRPC server settings (a thread per Session stream).
void ConfigureDlmServer(grpc::ServerBuilder& builder);

// Builds and starts a server for `service` on `listen` (HOST:PORT; port 0
// picks a free one, reported in *bound_port when non-null), as the
// stripefs-dlm process does (tests, benchmarks).
[[nodiscard]] absl::StatusOr<std::unique_ptr<grpc::Server>> StartDlmServer(
    DlmService* service, const std::string& listen, int* bound_port = nullptr);

}  // namespace stripefs::dlm
