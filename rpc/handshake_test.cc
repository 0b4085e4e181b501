#include "rpc/handshake.h"

#include <cerrno>

#include "common/errors.h"
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

TEST(HandshakeTest, InvertedRangeFails) {
  EXPECT_FALSE(Negotiate({1, 1}, 0, {3, 2}, 0).ok());
}

TEST(HandshakeTest, AnswerConnectUsesThisBuild) {
  auto req = MakeConnectRequest(42, "client", "test");
  auto reply = AnswerConnect(req, "mdt0", 7);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->proto(), kProtoMax);
  EXPECT_EQ(reply->target(), "mdt0");
  EXPECT_EQ(reply->instance(), 7u);
}

}  // namespace
}  // namespace stripefs::rpc
