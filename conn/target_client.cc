#include "conn/target_client.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "rpc/handshake.h"
#include "spdlog/spdlog.h"

namespace stripefs::conn {

TargetClient::TargetClient(std::string name, std::string address,
                           TargetOptions options)
    : channel_(rpc::MakeChannel(address)),
      name_(std::move(name)),
      address_(std::move(address)),
      options_(std::move(options)) {}

absl::Status TargetClient::Connect() {
  rpc::ConnectRequest req = rpc::MakeConnectRequest(
      options_.client_id, options_.client_kind, options_.client_name);
  rpc::ConnectReply reply;
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, options_.connect_deadline);
  absl::Status s = rpc::FromGrpc(DoConnect(&ctx, req, &reply));
  Count("Connect");
  if (!s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("cannot connect to ", name_, " at ", address_,
                               ": ", s.message()));
  }
  // The server negotiated; check that its answer is within what we speak.
  absl::StatusOr<rpc::Negotiated> n = rpc::CheckConnectReply(reply);
  if (!n.ok()) {
    return absl::Status(
        n.status().code(),
        absl::StrCat(name_, " at ", address_, ": ", n.status().message()));
  }
  proto_ = n->proto;
  features_ = n->features;
  instance_ = reply.instance();
  {
    absl::MutexLock lock(&mu_);
    server_release_ = reply.release();
  }
  spdlog::info(
      "connected to {} at {} (release {}, proto {}, features {:#x}, instance "
      "{:#x})",
      name_, address_, reply.release(), n->proto, n->features,
      reply.instance());
  return absl::OkStatus();
}

absl::Status TargetClient::Reconnect() {
  Clock* clock = options_.clock;
  bool fresh = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock->Now();
    if (failing_since_ != absl::InfiniteFuture() &&
        now - failing_since_ >= kFreshChannelAfter) {
      fresh = true;
      failing_since_ = now;
    }
  }
  if (fresh) {
    spdlog::info("{}: new channel to {}", name_, address_);
    NewStub(rpc::MakeChannel(address_));
  }
  absl::Status s = Connect();
  absl::MutexLock lock(&mu_);
  if (s.ok()) {
    failing_since_ = absl::InfiniteFuture();
  } else if (failing_since_ == absl::InfiniteFuture()) {
    failing_since_ = clock->Now();
  }
  return s;
}

absl::Status TargetClient::RetryState::Wait(const grpc::Status& last,
                                            const char* method,
                                            const InterruptFn& intr) {
  Clock* clock = t_->options_.clock;
  absl::Time now = clock->Now();
  if (give_up_ == absl::InfinitePast()) {
    give_up_ = now + t_->options_.retry_window;
    spdlog::warn("{} {} at {}: {}; resending for up to {}", t_->name_, method,
                 t_->address_, last.error_message(),
                 absl::FormatDuration(t_->options_.retry_window));
  }
  if (now >= give_up_) return rpc::FromGrpc(last);
  // Sleep in short steps so a signal can abandon the wait.
  absl::Time wake = now + backoff_;
  while (clock->Now() < wake) {
    if (intr && intr()) return Errno(EINTR, "interrupted while resending");
    clock->SleepFor(std::min(absl::Milliseconds(20), wake - clock->Now()));
  }
  backoff_ = std::min(backoff_ * 2, kMaxResendBackoff);
  if (absl::Status s = t_->Reconnect(); !s.ok()) {
    spdlog::debug("reconnect to {}: {}", t_->name_, s.ToString());
  }
  return absl::OkStatus();
}

namespace {
// Set while this thread runs a recovery function (TargetClient::Recover).
thread_local bool t_in_recovery = false;
}  // namespace

bool TargetClient::InRecovery() { return t_in_recovery; }

void TargetClient::SetRecovery(std::function<absl::Status(bool)> fn) {
  recover_fn_ = std::move(fn);
  state_on_ = instance_.load();
  has_recovery_ = recover_fn_ != nullptr;
}

absl::Status TargetClient::Recover(const InterruptFn& intr, bool evicted) {
  return RecoverImpl(intr, evicted, /*resume=*/false);
}

absl::Status TargetClient::ResumeRecover(const InterruptFn& intr, bool lost) {
  return RecoverImpl(intr, lost, /*resume=*/true);
}

absl::Status TargetClient::RecoverImpl(const InterruptFn& intr, bool evicted,
                                       bool resume) {
  if (!has_recovery_.load() || t_in_recovery) return absl::OkStatus();
  recover_mu_.Lock();
  for (;;) {
    const uint64_t target = instance_.load();
    // The lost lock's pass is owed to the instance the state already moved
    // to without it (see ResumeRecover).
    const bool owed = resume && evicted && plain_since_resume_;
    if (target == state_on_.load() && !owed) break;
    if (recovering_) {
      // Another thread is re-establishing the state: wait for it, in short
      // steps so a signal can abandon the wait.
      recover_cv_.WaitWithTimeout(&recover_mu_, absl::Milliseconds(50));
      if (intr && intr()) {
        recover_mu_.Unlock();
        return Errno(EINTR, "interrupted while waiting for the recovery of " +
                                name_);
      }
      continue;
    }
    recovering_ = true;
    recover_mu_.Unlock();
    if (target == state_on_.load()) {
      spdlog::warn("{}: this client lost its active lock (evicted by the lock "
                   "service) after its state was re-established on instance "
                   "{:#x} without knowing it: applying the eviction there",
                   name_, target);
    } else {
      spdlog::info("{}: new server instance {:#x} (state on {:#x}): "
                   "re-establishing this client's state",
                   name_, target, state_on_.load());
    }
    absl::Status s;
    {
      GateBypass bypass;  // the gate may be closed (controlled failover)
      t_in_recovery = true;
      s = recover_fn_(evicted);
      t_in_recovery = false;
    }
    recover_mu_.Lock();
    recovering_ = false;
    recover_cv_.SignalAll();
    if (!s.ok()) {
      recover_mu_.Unlock();
      spdlog::warn("{}: recovery on instance {:#x} failed: {}", name_, target,
                   s.ToString());
      return s;
    }
    // If the instance changed again meanwhile, the loop goes once more.
    state_on_ = target;
    plain_since_resume_ = !evicted;
  }
  // A resume starts afresh: a later lost lock concerns only recoveries
  // after it.
  if (resume) plain_since_resume_ = false;
  recover_mu_.Unlock();
  return absl::OkStatus();
}

std::string TargetClient::server_release() const {
  absl::MutexLock lock(&mu_);
  return server_release_;
}

void TargetClient::Count(const char* method) {
  absl::MutexLock lock(&mu_);
  ++counts_[method];
}

std::map<std::string, uint64_t> TargetClient::RpcCounts() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [k, v] : counts_) out[k] += v;
  return out;
}

OstClient::OstClient(std::string name, std::string address,
                     TargetOptions options)
    : TargetClient(std::move(name), std::move(address), std::move(options)),
      stub_(rpc::Oss::NewStub(channel_)) {}

grpc::Status OstClient::DoConnect(grpc::ClientContext* ctx,
                                  const rpc::ConnectRequest& req,
                                  rpc::ConnectReply* reply) {
  return stub()->Connect(ctx, req, reply);
}

void OstClient::NewStub(std::shared_ptr<grpc::Channel> channel) {
  std::shared_ptr<rpc::Oss::Stub> stub = rpc::Oss::NewStub(channel);
  absl::MutexLock l(&stub_mu_);
  channel_ = std::move(channel);
  stub_ = std::move(stub);
}

}  // namespace stripefs::conn
