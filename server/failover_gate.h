// FailoverGate: how a service (MDS, OSS) answers once a forced failover
// began (seed 002, docs/internals.md "Crash recovery: forced failover").
// From that moment every RPC answers gRPC UNAVAILABLE "failing over" —
// new ones and ones still executing alike, never their real result or
// error — so the client resends (same xid) to the next instance, which
// answers from its reply record (MDS) or re-executes an idempotent object
// write (OSS). Errors that executing requests meet because the backend
// turned read-only are logged here, one warn line each, as expected.
// Header-only so that the services need no server life-cycle library.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace stripefs::server {

// The message of the UNAVAILABLE status answered during a forced failover.
inline constexpr char kFailingOverMessage[] = "failing over";

inline grpc::Status FailingOver() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, kFailingOverMessage);
}

class FailoverGate {
 public:
  // From now on every answer is UNAVAILABLE. Call BEFORE the backend turns
  // read-only, so that a handler meeting a read-only error always sees
  // failing() and never returns that error.
  void Begin() { failing_.store(true); }
  bool failing() const { return failing_.load(); }

  // nullopt when no forced failover began: the caller answers `s` as
  // usual. Otherwise FailingOver(), never `s`; an error `s` is logged.
  std::optional<grpc::Status> Answer(const char* method,
                                     const absl::Status& s,
                                     uint64_t client_id = 0,
                                     uint64_t xid = 0) const {
    if (!failing()) return std::nullopt;
    if (!s.ok()) {
      spdlog::warn(
          "{} (client {} xid {}) failed during a forced failover, as "
          "expected (backend read-only); answered UNAVAILABLE, the client "
          "resends to the next instance: {}",
          method, client_id, xid, s.ToString());
    }
    return FailingOver();
  }

 private:
  std::atomic<bool> failing_{false};
};

}  // namespace stripefs::server
