// Channel and server construction with the settings every role shares:
// message size limits, keepalive on both ends, and per-call deadlines.
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace stripefs::rpc {

// Largest request a server accepts; bigger ones get RESOURCE_EXHAUSTED.
inline constexpr int kMaxMessageBytes = 8 << 20;
// Default deadline of a call.
inline constexpr absl::Duration kDefaultDeadline = absl::Seconds(30);

// An insecure channel (loopback / private network) with keepalive.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

// Applies limits and keepalive to a server builder.
void ConfigureServer(grpc::ServerBuilder& builder);

// Sets ctx's deadline to now + d.
void SetDeadline(grpc::ClientContext& ctx, absl::Duration d = kDefaultDeadline);

}  // namespace stripefs::rpc
