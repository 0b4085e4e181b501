#include "fuse-client/target_client.h"

#include <atomic>
#include <cerrno>
#include <thread>

#include "absl/time/clock.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

// No server listens on port 1: calls that get through fail fast.
constexpr char kNowhere[] = "127.0.0.1:1";

TargetOptions Options() {
  TargetOptions o;
  o.client_id = 77;
  o.deadline = absl::Seconds(2);
  o.connect_deadline = absl::Seconds(2);
  o.retry_window = absl::ZeroDuration();
  return o;
}

TEST(TargetClientTest, HeadersCarryClientIdAndFreshXids) {
  MdsClient mds(kNowhere, Options());
  rpc::ReqHeader a, b;
  mds.FillHeader(&a);
  mds.FillHeader(&b);
  EXPECT_EQ(a.client_id(), 77u);
  EXPECT_EQ(b.client_id(), 77u);
  EXPECT_NE(a.xid(), 0u);
  EXPECT_GT(b.xid(), a.xid());
}

TEST(TargetClientTest, ConnectToDeadServerFailsWithClearError) {
  MdsClient mds(kNowhere, Options());
  absl::Status s = mds.Connect();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("mdt0"), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find(kNowhere), std::string::npos) << s;
}

TEST(TargetClientTest, ClosedGateHoldsRequestBeforeItIsFormatted) {
  MdsClient mds(kNowhere, Options());
  mds.gate().Close();
  std::atomic<bool> formatted{false};
  std::atomic<bool> interrupt{false};
  absl::Status result;
  std::thread t([&] {
    rpc::Entry e;
    result = mds.Call(
        &rpc::Mds::Stub::GetAttr, "GetAttr", [&] { return interrupt.load(); },
        [&](rpc::GetAttrRequest& r) {
          formatted = true;
          r.set_ino(1);
        },
        &e);
  });
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_FALSE(formatted.load()) << "request formatted while the gate was shut";
  interrupt = true;  // the syscall gets a signal
  t.join();
  EXPECT_EQ(ToErrno(result), EINTR);
  EXPECT_FALSE(formatted.load());
  EXPECT_EQ(mds.RpcCounts().count("GetAttr"), 0u);
}

TEST(TargetClientTest, CallsAreCountedPerMethodAndFailWithoutServer) {
  MdsClient mds(kNowhere, Options());
  rpc::Entry e;
  for (int i = 0; i < 2; ++i) {
    absl::Status s = mds.Call(
        &rpc::Mds::Stub::GetAttr, "GetAttr", {},
        [](rpc::GetAttrRequest& r) { r.set_ino(1); }, &e);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(ToErrno(s), 0);
  }
  EXPECT_EQ(mds.RpcCounts()["GetAttr"], 2u);
  EXPECT_EQ(mds.gate().in_flight(), 0);
}

TEST(TargetClientTest, UnreachableTargetIsRetriedUntilInterrupted) {
  TargetOptions o = Options();
  o.retry_window = absl::Seconds(30);
  MdsClient mds(kNowhere, o);
  std::atomic<bool> interrupt{false};
  absl::Status result;
  absl::Time start = absl::Now();
  std::thread t([&] {
    rpc::Entry e;
    result = mds.Call(
        &rpc::Mds::Stub::GetAttr, "GetAttr", [&] { return interrupt.load(); },
        [](rpc::GetAttrRequest& r) { r.set_ino(1); }, &e);
  });
  absl::SleepFor(absl::Milliseconds(400));
  interrupt = true;
  t.join();
  EXPECT_EQ(ToErrno(result), EINTR);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(mds.RpcCounts()["GetAttr"], 2u) << "the call was not resent";
}

}  // namespace
}  // namespace stripefs::client
