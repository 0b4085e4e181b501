#include "conn/target_client.h"

#include <atomic>
#include <cerrno>
#include <thread>

#include "absl/time/clock.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::conn {
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
  OstClient ost("ost0", kNowhere, Options());
  rpc::ReqHeader a, b;
  ost.FillHeader(&a);
  ost.FillHeader(&b);
  EXPECT_EQ(a.client_id(), 77u);
  EXPECT_EQ(b.client_id(), 77u);
  EXPECT_NE(a.xid(), 0u);
  EXPECT_GT(b.xid(), a.xid());
}

TEST(TargetClientTest, ConnectToDeadServerFailsWithClearError) {
  OstClient ost("ost0", kNowhere, Options());
  absl::Status s = ost.Connect();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("ost0"), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find(kNowhere), std::string::npos) << s;
}

TEST(TargetClientTest, ClosedGateHoldsRequestBeforeItIsFormatted) {
  OstClient ost("ost0", kNowhere, Options());
  ost.gate().Close();
  std::atomic<bool> formatted{false};
  std::atomic<bool> interrupt{false};
  absl::Status result;
  std::thread t([&] {
    rpc::ObjAttrReply e;
    result = ost.Call(
        &rpc::Oss::Stub::ObjAttr, "ObjAttr", [&] { return interrupt.load(); },
        [&](rpc::ObjAttrRequest& r) {
          formatted = true;
          r.set_oid(1);
        },
        &e);
  });
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_FALSE(formatted.load()) << "request formatted while the gate was shut";
  interrupt = true;  // the syscall gets a signal
  t.join();
  EXPECT_EQ(ToErrno(result), EINTR);
  EXPECT_FALSE(formatted.load());
  EXPECT_EQ(ost.RpcCounts().count("ObjAttr"), 0u);
}

TEST(TargetClientTest, CallsAreCountedPerMethodAndFailWithoutServer) {
  OstClient ost("ost0", kNowhere, Options());
  rpc::ObjAttrReply e;
  for (int i = 0; i < 2; ++i) {
    absl::Status s = ost.Call(
        &rpc::Oss::Stub::ObjAttr, "ObjAttr", {},
        [](rpc::ObjAttrRequest& r) { r.set_oid(1); }, &e);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(ToErrno(s), 0);
  }
  EXPECT_EQ(ost.RpcCounts()["ObjAttr"], 2u);
  EXPECT_EQ(ost.gate().in_flight(), 0);
}

TEST(TargetClientTest, UnreachableTargetIsRetriedUntilInterrupted) {
  TargetOptions o = Options();
  o.retry_window = absl::Seconds(30);
  OstClient ost("ost0", kNowhere, o);
  std::atomic<bool> interrupt{false};
  absl::Status result;
  absl::Time start = absl::Now();
  std::thread t([&] {
    rpc::ObjAttrReply e;
    result = ost.Call(
        &rpc::Oss::Stub::ObjAttr, "ObjAttr", [&] { return interrupt.load(); },
        [](rpc::ObjAttrRequest& r) { r.set_oid(1); }, &e);
  });
  absl::SleepFor(absl::Milliseconds(400));
  interrupt = true;
  t.join();
  EXPECT_EQ(ToErrno(result), EINTR);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GE(ost.RpcCounts()["ObjAttr"], 2u) << "the call was not resent";
}

TEST(TargetClientTest, ResendKeepsTheXidAndStopsAtTheWindow) {
  TargetOptions o = Options();
  o.retry_window = absl::Milliseconds(300);
  OstClient ost("ost0", kNowhere, o);
  int formats = 0;
  uint64_t xid = 0;
  rpc::Empty reply;
  absl::Time start = absl::Now();
  absl::Status s = ost.Call(
      &rpc::Oss::Stub::Destroy, "Destroy", {},
      [&](rpc::DestroyRequest& r) {
        ++formats;
        ost.FillHeader(r.mutable_hdr());
        xid = r.hdr().xid();
      },
      &reply, absl::Milliseconds(500));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(formats, 1) << "a resend must be the same request (same xid)";
  EXPECT_EQ(xid, 1u);
  EXPECT_GE(ost.RpcCounts()["Destroy"], 2u) << "the call was not resent";
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

}  // namespace
}  // namespace stripefs::conn
