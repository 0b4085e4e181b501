#include "conn/request_gate.h"

#include <atomic>
#include <cerrno>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::conn {
namespace {

TEST(RequestGateTest, OpenGateAdmitsAndCounts) {
  RequestGate gate;
  ASSERT_TRUE(gate.Enter().ok());
  ASSERT_TRUE(gate.Enter().ok());
  EXPECT_EQ(gate.in_flight(), 2);
  gate.Exit();
  gate.Exit();
  EXPECT_EQ(gate.in_flight(), 0);
  EXPECT_FALSE(gate.closed());
}

TEST(RequestGateTest, ClosedGateHoldsNewRequestsUntilReopen) {
  RequestGate gate(absl::Milliseconds(5));
  gate.Close();
  std::atomic<bool> admitted{false};
  std::thread t([&] {
    ASSERT_TRUE(gate.Enter().ok());
    admitted = true;
    gate.Exit();
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(admitted.load()) << "a request passed a closed gate";
  gate.Reopen();
  t.join();
  EXPECT_TRUE(admitted.load());
  EXPECT_EQ(gate.in_flight(), 0);
}

TEST(RequestGateTest, InFlightRequestsFinishWhileClosedAndWaitIdleWaits) {
  RequestGate gate(absl::Milliseconds(5));
  ASSERT_TRUE(gate.Enter().ok());  // in flight before the close
  gate.Close();
  std::atomic<bool> idle{false};
  std::thread waiter([&] {
    ASSERT_TRUE(gate.WaitIdle().ok());
    idle = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(idle.load()) << "WaitIdle returned with a request in flight";
  gate.Exit();  // the in-flight request gets its reply
  waiter.join();
  EXPECT_TRUE(idle.load());
  EXPECT_TRUE(gate.closed());
}

TEST(RequestGateTest, WaitIdleOnIdleGateReturnsAtOnce) {
  RequestGate gate;
  gate.Close();
  EXPECT_TRUE(gate.WaitIdle().ok());
}

TEST(RequestGateTest, BlockedEnterCanBeInterrupted) {
  RequestGate gate(absl::Milliseconds(5));
  gate.Close();
  std::atomic<bool> signal{false};
  absl::Status result;
  std::thread t([&] { result = gate.Enter([&] { return signal.load(); }); });
  absl::SleepFor(absl::Milliseconds(50));
  signal = true;
  t.join();
  EXPECT_EQ(ToErrno(result), EINTR);
  EXPECT_EQ(gate.in_flight(), 0) << "an interrupted request must not count";
}

TEST(RequestGateTest, WaitIdleCanBeInterrupted) {
  RequestGate gate(absl::Milliseconds(5));
  ASSERT_TRUE(gate.Enter().ok());
  gate.Close();
  absl::Status s = gate.WaitIdle([] { return true; });
  EXPECT_EQ(ToErrno(s), EINTR);
  gate.Exit();
}

TEST(RequestGateTest, ManyWaitersAllProceedAfterReopen) {
  RequestGate gate(absl::Milliseconds(5));
  gate.Close();
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      GatePass pass(gate, {});
      ASSERT_TRUE(pass.status().ok());
      ++done;
    });
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(done.load(), 0);
  gate.Reopen();
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(gate.in_flight(), 0);
}

TEST(RequestGateTest, BypassAdmitsOnlyItsOwnThreadThroughAClosedGate) {
  RequestGate gate(absl::Milliseconds(5));
  gate.Close();
  std::atomic<bool> other_admitted{false};
  std::thread other([&] {
    GatePass pass(gate, {});
    other_admitted = pass.status().ok();
  });
  {
    GateBypass bypass;  // the failover's own requests (reopen)
    GatePass pass(gate, [] { return true; });  // would fail with EINTR
    ASSERT_TRUE(pass.status().ok());
    EXPECT_EQ(gate.in_flight(), 1);  // counted like any request
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(other_admitted.load());  // still held at the gate
  {
    GatePass pass(gate, [] { return true; });  // no bypass any more
    EXPECT_EQ(ToErrno(pass.status()), EINTR);
  }
  gate.Reopen();
  other.join();
  EXPECT_TRUE(other_admitted.load());
  EXPECT_EQ(gate.in_flight(), 0);
}

}  // namespace
}  // namespace stripefs::conn
