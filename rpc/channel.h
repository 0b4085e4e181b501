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

// Picks gRPC's polling engine for a process whose RPCs are blocking calls
// made by many threads while another thread waits on a long-lived stream
// (the mount: FUSE workers calling the OSTs and the MDS, beside the DLM
// callback reader). With gRPC's default engine (epoll1) one thread at a
// time polls for the whole process, and that is mostly the idle stream
// reader: each reply to a worker woke the reader, which then woke the
// worker (4.5 thread switches per 4 KiB read in the mount against 2.4,
// and a quarter of its CPU in the reader). The "poll" engine lets each
// waiting thread poll its own call's connection. Sets GRPC_POLL_STRATEGY
// to "poll" unless the environment already names an engine; call before
// any gRPC object exists. Returns the engine asked for ("default" when
// the variable could not be set).
std::string UseCallerPolling();

// Sets ctx's deadline to now + d.
void SetDeadline(grpc::ClientContext& ctx, absl::Duration d = kDefaultDeadline);

}  // namespace stripefs::rpc
