#include "rpc/handshake.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "common/errors.h"
#include "common/version.h"

namespace stripefs::rpc {

static_assert(STRIPEFS_PROTO_MAX == 1 || STRIPEFS_PROTO_MAX == 2,
              "this tree builds release N (protocol 1) or N+1 (protocol 2)");

const Build& ThisBuild() {
#if STRIPEFS_PROTO_MAX >= 2
  return kReleaseN1;
#else
  return kReleaseN;
#endif
}

absl::StatusOr<Negotiated> Negotiate(ProtocolRange local,
                                     uint64_t local_features,
                                     ProtocolRange remote,
                                     uint64_t remote_features) {
  if (remote.min > remote.max || remote.min == 0) {
    return Errno(EPROTO, absl::StrFormat("bad protocol range [%d, %d]",
                                         remote.min, remote.max));
  }
  uint32_t hi = std::min(local.max, remote.max);
  uint32_t lo = std::max(local.min, remote.min);
  if (hi < lo) {
    return Errno(EPROTO,
                 absl::StrFormat("no common protocol: we speak [%d, %d], "
                                 "peer speaks [%d, %d]",
                                 local.min, local.max, remote.min, remote.max));
  }
  return Negotiated{hi, local_features & remote_features};
}

ConnectRequest MakeConnectRequest(uint64_t client_id, std::string kind,
                                  std::string name, const Build& build) {
  ConnectRequest req;
  req.set_release(build.release);
  req.set_proto_min(build.protocols.min);
  req.set_proto_max(build.protocols.max);
  req.set_features(build.features);
  req.set_client_id(client_id);
  req.set_client_kind(std::move(kind));
  req.set_client_name(std::move(name));
  return req;
}

absl::StatusOr<ConnectReply> AnswerConnect(const ConnectRequest& req,
                                           const std::string& target,
                                           uint64_t instance,
                                           const Build& build) {
  auto n = Negotiate(build.protocols, build.features,
                     {req.proto_min(), req.proto_max()}, req.features());
  if (!n.ok()) {
    return Errno(EPROTO, absl::StrFormat("%s (release %s) refuses %s (release "
                                         "%s): %s",
                                         target, build.release,
                                         req.client_name(), req.release(),
                                         n.status().message()));
  }
  ConnectReply reply;
  reply.set_release(build.release);
  reply.set_proto(n->proto);
  reply.set_features(n->features);
  reply.set_target(target);
  reply.set_instance(instance);
  return reply;
}

absl::StatusOr<Negotiated> CheckConnectReply(const ConnectReply& reply,
                                             const Build& build) {
  if (reply.proto() < build.protocols.min ||
      reply.proto() > build.protocols.max) {
    return Errno(EPROTO,
                 absl::StrFormat("server (release %s) answered protocol %d; "
                                 "release %s speaks [%d, %d]",
                                 reply.release(), reply.proto(), build.release,
                                 build.protocols.min, build.protocols.max));
  }
  if ((reply.features() & ~build.features) != 0) {
    return Errno(EPROTO,
                 absl::StrFormat("server (release %s) answered features %#x; "
                                 "release %s offered %#x",
                                 reply.release(), reply.features(),
                                 build.release, build.features));
  }
  return Negotiated{reply.proto(), reply.features()};
}

}  // namespace stripefs::rpc
