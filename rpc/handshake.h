// The connect handshake: both sides state a protocol range and feature bits;
// the answer is the highest common version and the common features.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "rpc/proto/common.pb.h"

namespace stripefs::rpc {

// Protocol versions this build speaks.
inline constexpr uint32_t kProtoMin = 1;
inline constexpr uint32_t kProtoMax = 1;
// Feature bits this build supports (none defined yet).
inline constexpr uint64_t kFeatures = 0;

struct ProtocolRange {
  uint32_t min = kProtoMin;
  uint32_t max = kProtoMax;
};

struct Negotiated {
  uint32_t proto = 0;
  uint64_t features = 0;
};

// Highest version in both ranges and the intersection of features; an error
// (FAILED_PRECONDITION with EPROTO) when the ranges do not meet.
absl::StatusOr<Negotiated> Negotiate(ProtocolRange local,
                                     uint64_t local_features,
                                     ProtocolRange remote,
                                     uint64_t remote_features);

// A ConnectRequest describing this build.
ConnectRequest MakeConnectRequest(uint64_t client_id, std::string kind,
                                  std::string name);

// Server side: negotiate against a request and fill the reply.
absl::StatusOr<ConnectReply> AnswerConnect(const ConnectRequest& req,
                                           const std::string& target,
                                           uint64_t instance);

}  // namespace stripefs::rpc
