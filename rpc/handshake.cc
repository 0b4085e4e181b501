#include "rpc/handshake.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "common/errors.h"
#include "common/version.h"

namespace stripefs::rpc {

absl::StatusOr<Negotiated> Negotiate(ProtocolRange local,
                                     uint64_t local_features,
                                     ProtocolRange remote,
                                     uint64_t remote_features) {
  if (remote.min > remote.max) {
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
                                  std::string name) {
  ConnectRequest req;
  req.set_release(kRelease);
  req.set_proto_min(kProtoMin);
  req.set_proto_max(kProtoMax);
  req.set_features(kFeatures);
  req.set_client_id(client_id);
  req.set_client_kind(std::move(kind));
  req.set_client_name(std::move(name));
  return req;
}

absl::StatusOr<ConnectReply> AnswerConnect(const ConnectRequest& req,
                                           const std::string& target,
                                           uint64_t instance) {
  auto n = Negotiate({}, kFeatures, {req.proto_min(), req.proto_max()},
                     req.features());
  if (!n.ok()) return n.status();
  ConnectReply reply;
  reply.set_release(kRelease);
  reply.set_proto(n->proto);
  reply.set_features(n->features);
  reply.set_target(target);
  reply.set_instance(instance);
  return reply;
}

}  // namespace stripefs::rpc
