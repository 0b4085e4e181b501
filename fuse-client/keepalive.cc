#include "fuse-client/keepalive.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

Keepalive::Keepalive(MdsClient* mds, absl::Duration period)
    : mds_(mds), period_(period), thread_([this] { Run(); }) {}

Keepalive::~Keepalive() { Stop(); }

void Keepalive::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Keepalive::Round(MdsClient& mds) {
  // Always Ping (it does not pass the gate): while the gate is closed this
  // mount's requests are held, and without the Ping the MDS would hear
  // nothing from it and could evict it before the failover ends.
  absl::StatusOr<uint64_t> instance = mds.Ping();
  // A controlled failover owns the reconnect and the recovery while the
  // gate is closed.
  if (mds.gate().closed()) return absl::OkStatus();
  if (!instance.ok()) {
    // The MDS is away (or restarting): reconnect attempts also make
    // TargetClient replace a channel stuck in TRANSIENT_FAILURE.
    absl::Status r = mds.Reconnect();
    if (!r.ok()) return instance.status();
  } else if (*instance != mds.instance()) {
    spdlog::info("{}: Status answered by a new server instance {:#x} (was "
                 "{:#x}); reconnecting",
                 mds.name(), *instance, mds.instance());
    if (absl::Status s = mds.Reconnect(); !s.ok()) return s;
  }
  if (mds.gate().closed()) return absl::OkStatus();
  return mds.Recover({});
}

void Keepalive::Run() {
  absl::MutexLock l(&mu_);
  // The first round at once: the mount learns its lease's length
  // (MdsClient::LeaseInDoubt) right after mounting.
  for (bool first = true;; first = false) {
    // Wakes early only to stop.
    const absl::Time until = first ? absl::Now() : absl::Now() + period_;
    while (!stop_ && absl::Now() < until) {
      mu_.AwaitWithDeadline(absl::Condition(&stop_), until);
    }
    if (stop_) return;
    mu_.Unlock();
    absl::Status s = Round(*mds_);
    if (!s.ok()) spdlog::debug("keepalive to {}: {}", mds_->name(), s.ToString());
    mu_.Lock();
  }
}

}  // namespace stripefs::client
