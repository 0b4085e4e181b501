#include "rpc/channel.h"

#include <stdlib.h>

#include "gtest/gtest.h"

namespace stripefs::rpc {
namespace {

TEST(ChannelTest, CallerPollingUnlessTheEnvironmentChoseAnEngine) {
  unsetenv("GRPC_POLL_STRATEGY");
  EXPECT_EQ(UseCallerPolling(), "poll");
  ASSERT_NE(getenv("GRPC_POLL_STRATEGY"), nullptr);
  EXPECT_STREQ(getenv("GRPC_POLL_STRATEGY"), "poll");
  // An operator's choice stands.
  setenv("GRPC_POLL_STRATEGY", "epoll1", 1);
  EXPECT_EQ(UseCallerPolling(), "epoll1");
  EXPECT_STREQ(getenv("GRPC_POLL_STRATEGY"), "epoll1");
  unsetenv("GRPC_POLL_STRATEGY");
}

}  // namespace
}  // namespace stripefs::rpc
