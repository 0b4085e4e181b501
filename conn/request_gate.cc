#include "conn/request_gate.h"

#include <cerrno>

#include "common/errors.h"

namespace stripefs::conn {

namespace {
thread_local int bypass_depth = 0;
}  // namespace

GateBypass::GateBypass() { ++bypass_depth; }
GateBypass::~GateBypass() { --bypass_depth; }
bool GateBypass::Active() { return bypass_depth > 0; }

absl::Status RequestGate::Enter(const InterruptFn& interrupted) {
  absl::MutexLock lock(&mu_);
  while (closed_ && !GateBypass::Active()) {
    auto open = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !closed_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&open), poll_)) break;
    if (interrupted && interrupted()) {
      return Errno(EINTR, "interrupted while requests to the target are held");
    }
  }
  ++in_flight_;
  return absl::OkStatus();
}

void RequestGate::Exit() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void RequestGate::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

absl::Status RequestGate::WaitIdle(const InterruptFn& interrupted) {
  absl::MutexLock lock(&mu_);
  while (in_flight_ > 0) {
    auto idle = [this]()
                    ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
    if (mu_.AwaitWithTimeout(absl::Condition(&idle), poll_)) break;
    if (interrupted && interrupted()) {
      return Errno(EINTR, "interrupted while waiting for in-flight requests");
    }
  }
  return absl::OkStatus();
}

void RequestGate::Reopen() {
  absl::MutexLock lock(&mu_);
  closed_ = false;
}

bool RequestGate::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

int64_t RequestGate::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

}  // namespace stripefs::conn
