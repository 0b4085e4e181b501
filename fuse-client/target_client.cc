#include "fuse-client/target_client.h"

#include <algorithm>

#include "rpc/status.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

MdsClient::MdsClient(std::string address, TargetOptions options)
    : TargetClient("mdt0", std::move(address), std::move(options)),
      stub_(rpc::Mds::NewStub(channel_)) {}

grpc::Status MdsClient::DoConnect(grpc::ClientContext* ctx,
                                  const rpc::ConnectRequest& req,
                                  rpc::ConnectReply* reply) {
  return stub()->Connect(ctx, req, reply);
}

absl::StatusOr<uint64_t> MdsClient::Ping() {
  rpc::StatusRequest req;
  req.set_client_id(options().client_id);
  {
    absl::MutexLock l(&lease_mu_);
    if (evicted_seen_ != 0) {
      req.set_evicted_ack(evicted_seen_);
      req.set_evicted_ack_instance(evicted_seen_on_);
    }
  }
  rpc::StatusReply reply;
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, options().deadline);
  const absl::Time sent = options().clock->Now();
  absl::Status s = rpc::FromGrpc(stub()->Status(&ctx, req, &reply));
  Count("Status");
  if (!s.ok()) return s;
  bool evicted = false;
  uint64_t below = 0;
  {
    absl::MutexLock l(&lease_mu_);
    // The lease runs from the MDS hearing us, at the latest when we sent.
    last_ping_ok_ = std::max(last_ping_ok_, sent);
    lease_ = absl::Milliseconds(reply.client_lease_ms());
    if (reply.evicted() != 0 && (reply.evicted() != evicted_seen_ ||
                                 reply.instance() != evicted_seen_on_)) {
      evicted_seen_ = reply.evicted();
      evicted_seen_on_ = reply.instance();
      evicted = true;
      below = reply.evicted_below_handle();
    }
  }
  // Outside lease_mu_: the handler takes the file system's locks.
  if (evicted && on_evicted_) on_evicted_(below);
  return reply.instance();
}

void MdsClient::SetEvictedHandler(std::function<void(uint64_t)> fn) {
  on_evicted_ = std::move(fn);
}

absl::Status MdsClient::ConfirmLease(const InterruptFn& intr) {
  RetryState retry(this);
  for (;;) {
    absl::StatusOr<uint64_t> answered = Ping();
    if (answered.ok() && *answered != instance()) {
      // A new instance (the MDS restarted while this mount was silent):
      // handshake with it; the Recover below re-establishes the handles.
      spdlog::info("{}: Status answered by a new server instance {:#x} (was "
                   "{:#x}); reconnecting",
                   name(), *answered, instance());
      absl::Status r = Reconnect();
      if (!r.ok() && !absl::IsUnavailable(r)) return r;
      if (!r.ok()) answered = r;
    }
    if (answered.ok()) return Recover(intr);
    if (!absl::IsUnavailable(answered.status())) return answered.status();
    // Unreachable: resent like any request (RetryState reconnects first).
    const grpc::Status last(grpc::StatusCode::UNAVAILABLE,
                            std::string(answered.status().message()));
    if (absl::Status s = retry.Wait(last, "Status", intr); !s.ok()) return s;
  }
}

bool MdsClient::LeaseInDoubt() const {
  absl::MutexLock l(&lease_mu_);
  return lease_ > absl::ZeroDuration() &&
         options().clock->Now() - last_ping_ok_ > lease_ / 2;
}

void MdsClient::NewStub(std::shared_ptr<grpc::Channel> channel) {
  std::shared_ptr<rpc::Mds::Stub> stub = rpc::Mds::NewStub(channel);
  absl::MutexLock l(&stub_mu_);
  channel_ = std::move(channel);
  stub_ = std::move(stub);
}

}  // namespace stripefs::client
