#include "rpc/handshake.h"

#include <cerrno>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/version.h"
#include "gtest/gtest.h"

namespace stripefs::rpc {
namespace {

TEST(HandshakeTest, PicksHighestCommonVersion) {
  auto n = Negotiate({1, 3}, 0b111, {2, 5}, 0b101);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->proto, 3u);
  EXPECT_EQ(n->features, 0b101u);
}

TEST(HandshakeTest, DisjointRangesFail) {
  auto n = Negotiate({1, 1}, 0, {2, 3}, 0);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), EPROTO);
}

TEST(HandshakeTest, InvertedOrZeroRangeFails) {
  EXPECT_FALSE(Negotiate({1, 1}, 0, {3, 2}, 0).ok());
  EXPECT_FALSE(Negotiate({1, 1}, 0, {0, 0}, 0).ok());
}

TEST(HandshakeTest, ThisBuildMatchesItsRelease) {
  const Build& b = ThisBuild();
  EXPECT_STREQ(b.release, kRelease);
  EXPECT_EQ(b.protocols.max, kProtoMax);
  EXPECT_EQ(b.protocols.min, kProtoMin);
}

TEST(HandshakeTest, AnswerConnectUsesThisBuild) {
  auto req = MakeConnectRequest(42, "client", "test");
  auto reply = AnswerConnect(req, "mdt0", 7);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->proto(), kProtoMax);
  EXPECT_EQ(reply->release(), kRelease);
  EXPECT_EQ(reply->target(), "mdt0");
  EXPECT_EQ(reply->instance(), 7u);
}

// Every role pairing of the cluster: who connects to whom.
struct RolePair {
  const char* client_kind;
  const char* server_target;
};
constexpr RolePair kRolePairs[] = {
    {"client", "mdt0"}, {"client", "ost0"}, {"client", "dlm"},
    {"mds", "ost0"},    {"mds", "dlm"},     {"oss", "dlm"},
};

struct Pairing {
  const Build* client;
  const Build* server;
  uint32_t want_proto;
  uint64_t want_features;
};

// N and N+1 in both directions (upgrade: old client, new server; downgrade:
// new client, old server), and like with like.
std::vector<Pairing> AllPairings() {
  return {
      {&kReleaseN, &kReleaseN, 1, 0},
      {&kReleaseN, &kReleaseN1, 1, 0},
      {&kReleaseN1, &kReleaseN, 1, 0},
      {&kReleaseN1, &kReleaseN1, 2,
       kFeatureWriteCrc | kFeatureReopen | kFeatureLease},
  };
}

TEST(HandshakeTest, EveryReleasePairingInEveryRoleDirection) {
  for (const RolePair& roles : kRolePairs) {
    for (const Pairing& p : AllPairings()) {
      SCOPED_TRACE(std::string(roles.client_kind) + " " + p.client->release +
                   " -> " + roles.server_target + " " + p.server->release);
      ConnectRequest req =
          MakeConnectRequest(5, roles.client_kind, "peer", *p.client);
      EXPECT_EQ(req.release(), p.client->release);
      absl::StatusOr<ConnectReply> reply =
          AnswerConnect(req, roles.server_target, 1, *p.server);
      ASSERT_TRUE(reply.ok()) << reply.status();
      EXPECT_EQ(reply->release(), p.server->release);
      EXPECT_EQ(reply->proto(), p.want_proto);
      EXPECT_EQ(reply->features(), p.want_features);
      // The client accepts what the server chose.
      absl::StatusOr<Negotiated> n = CheckConnectReply(*reply, *p.client);
      ASSERT_TRUE(n.ok()) << n.status();
      EXPECT_EQ(n->proto, p.want_proto);
      EXPECT_EQ(n->features, p.want_features);
    }
  }
}

TEST(HandshakeTest, ReleaseNRefusesProtocol2Reply) {
  // A release N client must never be handed the N+1 formats.
  ConnectReply reply;
  reply.set_release(kReleaseN1.release);
  reply.set_proto(2);
  absl::StatusOr<Negotiated> n = CheckConnectReply(reply, kReleaseN);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), EPROTO);
  EXPECT_NE(n.status().message().find("1.0.0"), std::string::npos);

  reply.set_proto(1);
  reply.set_features(kFeatureWriteCrc);
  EXPECT_FALSE(CheckConnectReply(reply, kReleaseN).ok());
}

TEST(HandshakeTest, FutureOnlyPeerIsRefusedWithBothReleasesNamed) {
  ConnectRequest req = MakeConnectRequest(5, "client", "m1", kReleaseN1);
  req.set_release("9.0.0");
  req.set_proto_min(7);
  req.set_proto_max(9);
  absl::StatusOr<ConnectReply> reply =
      AnswerConnect(req, "mdt0", 1, kReleaseN1);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(ToErrno(reply.status()), EPROTO);
  EXPECT_NE(reply.status().message().find("9.0.0"), std::string::npos);
  EXPECT_NE(reply.status().message().find("1.1.0"), std::string::npos);
}

}  // namespace
}  // namespace stripefs::rpc
