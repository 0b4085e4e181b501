// The connect handshake: both sides state their release, a protocol range
// and feature bits; the answer is the highest common version and the common
// features. Renegotiated on every (re)connect. Pure functions; thread-safe.
//
// Releases this tree knows (see docs/internals.md "Versions"):
//   N   = 1.0.0: protocol 1, no features.
//   N+1 = 1.1.0: protocols 1..2, features kFeatureWriteCrc,
//                kFeatureReopen and kFeatureLease. Protocol 2 changes the wire format of the
//                MDS open request (MdsV2.Open2) and of the OSS write (OssV2.
//                Write2, carrying a checksum); a peer that negotiated
//                protocol 1 gets the release N formats.
// The build picks one of them (STRIPEFS_PROTO_MAX, common/version.h); both
// descriptions are compiled into every build so tests can pair them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/version.h"
#include "rpc/proto/common.pb.h"

namespace stripefs::rpc {

// Feature bits (a feature is usable on a connection only when both ends
// offer it).
// The OSS verifies a crc32 of every protocol-2 write it is sent.
inline constexpr uint64_t kFeatureWriteCrc = 1ull << 0;
// The MDS accepts explicit re-establishment of an open handle after a
// failover (Open2 with reopen_handle).
inline constexpr uint64_t kFeatureReopen = 1ull << 1;
// The client keeps its MDS lease alive (StatusRequest.client_id keepalive):
// an MDS that negotiated it with a client evicts that client (drops its open
// handles) once it has not heard from it for --client-lease. A client that
// did not negotiate it (release N) is never evicted this way.
inline constexpr uint64_t kFeatureLease = 1ull << 2;

struct ProtocolRange {
  uint32_t min = 0;
  uint32_t max = 0;
};

// What one release speaks.
struct Build {
  const char* release;
  ProtocolRange protocols;
  uint64_t features;
};

inline constexpr Build kReleaseN{"1.0.0", {1, 1}, 0};
inline constexpr Build kReleaseN1{"1.1.0", {1, 2},
                                  kFeatureWriteCrc | kFeatureReopen |
                                      kFeatureLease};

// The release this binary is.
const Build& ThisBuild();

// Protocol versions and features of this binary (shorthands).
inline constexpr uint32_t kProtoMin = 1;
inline constexpr uint32_t kProtoMax = STRIPEFS_PROTO_MAX;

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

// A ConnectRequest describing `build` (default: this binary).
ConnectRequest MakeConnectRequest(uint64_t client_id, std::string kind,
                                  std::string name,
                                  const Build& build = ThisBuild());

// Server side: negotiate against a request and fill the reply.
absl::StatusOr<ConnectReply> AnswerConnect(const ConnectRequest& req,
                                           const std::string& target,
                                           uint64_t instance,
                                           const Build& build = ThisBuild());

// Client side: checks that the server's answer is something `build` speaks
// (a protocol in its range, no feature it did not offer) and returns it.
absl::StatusOr<Negotiated> CheckConnectReply(const ConnectReply& reply,
                                             const Build& build = ThisBuild());

}  // namespace stripefs::rpc
