#include "conn/active_gate.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace stripefs::conn {
namespace {

// No server listens on port 1.
constexpr char kNowhere[] = "127.0.0.1:1";

TargetOptions Options() {
  TargetOptions o;
  o.client_id = 7;
  o.client_kind = "mds";
  o.connect_deadline = absl::Seconds(1);
  o.retry_window = absl::ZeroDuration();
  return o;
}

TEST(ActiveGateTest, PauseClosesTheGateAndWaitsForInFlightRequests) {
  OstClient ost("ost0", kNowhere, Options());
  ASSERT_TRUE(ost.gate().Enter().ok());  // one request in flight
  std::atomic<bool> paused{false};
  std::thread t([&] {
    PauseTarget(ost);
    paused = true;
  });
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_TRUE(ost.gate().closed());
  EXPECT_FALSE(paused.load()) << "pause did not wait for the request";
  ost.gate().Exit();
  t.join();
  EXPECT_TRUE(paused.load());
}

TEST(ActiveGateTest, PauseGivesUpAfterTheDrainLimit) {
  OstClient ost("ost0", kNowhere, Options());
  ASSERT_TRUE(ost.gate().Enter().ok());
  const absl::Time start = absl::Now();
  PauseTarget(ost, absl::Milliseconds(200));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_TRUE(ost.gate().closed());
  ost.gate().Exit();
}

TEST(ActiveGateTest, ResumeKeepsTheGateClosedUntilTheServerAnswers) {
  OstClient ost("ost0", kNowhere, Options());
  ost.gate().Close();
  bool after_ran = false;
  absl::Status s = ResumeTarget(ost, /*lost=*/false, [&](bool) {
    after_ran = true;
    return absl::OkStatus();
  });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(after_ran);
  EXPECT_TRUE(ost.gate().closed());
}

}  // namespace
}  // namespace stripefs::conn
