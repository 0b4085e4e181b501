#include "dlm/dlm_service.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/version.h"
#include "dlm/proto_convert.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/status.h"
#include "spdlog/spdlog.h"

namespace stripefs::dlm {
namespace {

// How often a Session call wakes to notice a cancelled stream.
constexpr absl::Duration kSessionPoll = absl::Milliseconds(200);

}  // namespace

const char* const DlmService::kMethodNames[kNumMethods] = {
    "Connect", "Status",       "Enqueue", "Convert", "Cancel",
    "Session", "Glimpse", "GlimpseReply", "Touch",   "Replay"};

DlmService::DlmService(DlmServiceOptions options, LockManager* manager)
    : options_(std::move(options)),
      manager_(manager),
      common_({.role = "dlm",
                .target = options_.target,
                .instance = options_.instance,
                .methods = {std::begin(kMethodNames),
                            std::end(kMethodNames)}}) {
  if (options_.tick_period > absl::ZeroDuration()) {
    ticker_ = std::thread([this] {
      while (!stop_ticker_.WaitForNotificationWithTimeout(
          options_.tick_period)) {
        manager_->Tick();
      }
    });
  }
}

DlmService::~DlmService() { SetStopping(); }

void DlmService::SetStopping() {
  common_.SetStopping();
  if (!stop_ticker_.HasBeenNotified()) stop_ticker_.Notify();
  if (ticker_.joinable()) ticker_.join();
}

grpc::Status DlmService::Finish(Method m, const absl::Status& status,
                                uint64_t client, uint64_t xid) {
  Count(m);
  // EAGAIN of a no-wait enqueue is an answer, not a failure: logged at
  // debug level like every errno but EIO.
  return common_.Finish(m, status, {.client = client, .xid = xid});
}

grpc::Status DlmService::Connect(grpc::ServerContext* ctx,
                                 const rpc::ConnectRequest* req,
                                 rpc::ConnectReply* reply) {
  // The session of the client id: a reset drops what it held.
  auto r = common_.Connect(*req, [&](const rpc::ConnectReply&) {
    return manager_->Connect(
        req->client_id(),
        absl::StrCat(req->client_kind(), " ", req->client_name()),
        req->reset());
  });
  if (r.ok()) *reply = std::move(*r);
  return Finish(kConnect, r.status(), req->client_id(), 0);
}

grpc::Status DlmService::Status(grpc::ServerContext* ctx,
                                const rpc::StatusRequest* req,
                                rpc::StatusReply* reply) {
  Count(kStatus);
  common_.FillStatus(reply);
  auto& info = *reply->mutable_info();
  info["sessions"] = absl::StrCat(manager_->SessionCount());
  info["locks"] = absl::StrCat(manager_->LockCount());
  info["recovering"] = manager_->InRecovery() ? "true" : "false";
  return grpc::Status::OK;
}

grpc::Status DlmService::Enqueue(grpc::ServerContext* ctx,
                                 const rpc::EnqueueRequest* req,
                                 rpc::EnqueueReply* reply) {
  const uint64_t client = req->hdr().client_id();
  const uint64_t xid = req->hdr().xid();
  auto res = FromProto(req->resource());
  if (!res.ok()) return Finish(kEnqueue, res.status(), client, xid);
  auto mode = ModeFromProto(req->mode());
  if (!mode.ok()) return Finish(kEnqueue, mode.status(), client, xid);
  LockSpec spec{*res, *mode, req->bits(), req->start(), req->end()};
  if (req->test_only()) {
    auto conflict = manager_->Test(client, spec);
    if (conflict.ok()) {
      LockInfo asked{0, client, spec, !conflict->has_value()};
      *reply->mutable_lock() = ToProto(asked);
      if (conflict->has_value()) {
        *reply->mutable_conflict() = ToProto(**conflict);
      }
    }
    return Finish(kEnqueue, conflict.status(), client, xid);
  }
  auto lock =
      manager_->Enqueue(client, xid, spec, req->no_wait(), req->exact(),
                        req->carve_from(), req->exempt_client());
  if (lock.ok()) *reply->mutable_lock() = ToProto(*lock);
  return Finish(kEnqueue, lock.status(), client, xid);
}

grpc::Status DlmService::Convert(grpc::ServerContext* ctx,
                                 const rpc::ConvertRequest* req,
                                 rpc::ConvertReply* reply) {
  const uint64_t client = req->hdr().client_id();
  const uint64_t xid = req->hdr().xid();
  auto mode = ModeFromProto(req->mode());
  if (!mode.ok()) return Finish(kConvert, mode.status(), client, xid);
  auto lock = manager_->Convert(client, req->handle(), *mode);
  if (lock.ok()) *reply->mutable_lock() = ToProto(*lock);
  return Finish(kConvert, lock.status(), client, xid);
}

grpc::Status DlmService::Cancel(grpc::ServerContext* ctx,
                                const rpc::CancelRequest* req,
                                rpc::DlmEmpty* reply) {
  return Finish(kCancel, manager_->Cancel(req->hdr().client_id(), req->handle()),
                req->hdr().client_id(), req->hdr().xid());
}

grpc::Status DlmService::Session(grpc::ServerContext* ctx,
                                 const rpc::SessionRequest* req,
                                 grpc::ServerWriter<rpc::Callback>* writer) {
  const uint64_t client = req->client_id();
  auto gen = manager_->OpenSession(client);
  if (!gen.ok()) return Finish(kSession, gen.status(), client, 0);
  Count(kSession);
  writer->SendInitialMetadata();
  bool alive = true;
  while (alive && !ctx->IsCancelled()) {
    std::vector<CallbackEvent> events;
    alive = manager_->NextEvents(client, *gen, kSessionPoll, &events);
    for (const CallbackEvent& ev : events) {
      rpc::Callback cb;
      cb.set_kind(static_cast<rpc::Callback::Kind>(ev.kind));
      *cb.mutable_lock() = ToProto(ev.lock);
      if (ev.kind == CallbackEvent::kBlocking) {
        *cb.mutable_blocking() = ToProto(ev.blocking);
      }
      cb.set_glimpse_id(ev.glimpse_id);
      if (!writer->Write(cb)) {
        alive = false;
        break;
      }
    }
  }
  manager_->CloseSession(client, *gen);
  return grpc::Status::OK;
}

grpc::Status DlmService::Glimpse(grpc::ServerContext* ctx,
                                 const rpc::GlimpseRequest* req,
                                 rpc::GlimpseResult* reply) {
  const uint64_t client = req->hdr().client_id();
  auto res = FromProto(req->resource());
  if (!res.ok()) return Finish(kGlimpse, res.status(), client, 0);
  auto id = manager_->StartGlimpse(client, *res, req->start(), req->end());
  if (!id.ok()) return Finish(kGlimpse, id.status(), client, req->hdr().xid());
  for (const GlimpseValue& v :
       manager_->WaitGlimpse(*id, options_.glimpse_timeout)) {
    rpc::GlimpseValue* out = reply->add_values();
    out->set_handle(v.handle);
    out->set_client_id(v.client_id);
    out->set_value(v.value);
  }
  return Finish(kGlimpse, absl::OkStatus(), client, req->hdr().xid());
}

grpc::Status DlmService::GlimpseReply(grpc::ServerContext* ctx,
                                      const rpc::GlimpseAnswer* req,
                                      rpc::DlmEmpty* reply) {
  return Finish(kGlimpseReply,
                manager_->AnswerGlimpse(req->hdr().client_id(),
                                        req->glimpse_id(), req->handle(),
                                        req->value()),
                req->hdr().client_id(), req->hdr().xid());
}

grpc::Status DlmService::Touch(grpc::ServerContext* ctx,
                               const rpc::TouchRequest* req,
                               rpc::DlmEmpty* reply) {
  std::vector<uint64_t> handles(req->handles().begin(), req->handles().end());
  return Finish(kTouch, manager_->Touch(req->hdr().client_id(), handles),
                req->hdr().client_id(), req->hdr().xid());
}

grpc::Status DlmService::Replay(grpc::ServerContext* ctx,
                                const rpc::ReplayRequest* req,
                                rpc::DlmEmpty* reply) {
  const uint64_t client = req->hdr().client_id();
  absl::Status s;
  if (req->has_lock()) {
    auto info = FromProto(req->lock());
    s = info.ok() ? manager_->Replay(client, *info) : info.status();
  }
  if (s.ok() && req->done()) s = manager_->ReplayDone(client);
  Count(kReplay);
  // ESTALE tells the client to drop the lock; not a server-side failure.
  if (!s.ok() && ToErrno(s) != ESTALE) {
    spdlog::warn("Replay client={}: {}", client, s.ToString());
  }
  return rpc::ToGrpc(s);
}

void ConfigureDlmServer(grpc::ServerBuilder& builder) {
  // Each Session stream holds a thread, so allow many.
  server::SetSyncThreads(builder, {.name = "stripefs-dlm",
                                   .max_threads = 1024});
}

absl::StatusOr<std::unique_ptr<grpc::Server>> StartDlmServer(
    DlmService* service, const std::string& listen, int* bound_port) {
  return server::BuildServer(
      listen,
      [service](grpc::ServerBuilder& b) {
        ConfigureDlmServer(b);
        b.RegisterService(service);
      },
      bound_port);
}

}  // namespace stripefs::dlm
