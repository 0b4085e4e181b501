#include "common/fault_points.h"

#include <string>
#include <vector>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::fault {
namespace {

class FaultPointsTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(Configure("", 1).ok()); }
};

TEST_F(FaultPointsTest, OffByDefaultAndAfterEmptySpec) {
  ASSERT_TRUE(Configure("", 1).ok());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Hit("mds.before_commit").ok());
  EXPECT_EQ(Fired("mds.before_commit"), 0u);
}

TEST_F(FaultPointsTest, ErrorFiresCountTimesThenStops) {
  ASSERT_TRUE(Configure("a=error*2,b=delay:1", 7).ok());
  EXPECT_EQ(ToErrno(Hit("a")), EIO);
  EXPECT_EQ(ToErrno(Hit("a")), EIO);
  EXPECT_TRUE(Hit("a").ok());  // bounded
  EXPECT_EQ(Fired("a"), 2u);
  EXPECT_TRUE(Hit("b").ok());  // a delay is not an error
  EXPECT_EQ(Fired("b"), 1u);
  EXPECT_TRUE(Hit("c").ok());  // not configured
}

TEST_F(FaultPointsTest, DropFailsUnavailableLikeACutConnection) {
  ASSERT_TRUE(Configure("mds.after_commit=drop*1", 1).ok());
  absl::Status s = Hit("mds.after_commit");
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(s.message(), "fault point mds.after_commit: reply dropped");
  EXPECT_TRUE(Hit("mds.after_commit").ok());  // *1: only once
  EXPECT_EQ(Fired("mds.after_commit"), 1u);
}

std::vector<bool> Pattern(uint64_t seed) {
  EXPECT_TRUE(Configure("p=error@0.5*1000", seed).ok());
  std::vector<bool> out;
  for (int i = 0; i < 200; ++i) out.push_back(!Hit("p").ok());
  return out;
}

TEST_F(FaultPointsTest, ProbabilityIsReplayedBySeed) {
  std::vector<bool> a = Pattern(42);
  std::vector<bool> b = Pattern(42);
  std::vector<bool> c = Pattern(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int fired = 0;
  for (bool f : a) fired += f ? 1 : 0;
  EXPECT_GT(fired, 50);
  EXPECT_LT(fired, 150);
}

TEST_F(FaultPointsTest, BadSpecsAreRefusedAndChangeNothing) {
  ASSERT_TRUE(Configure("a=error", 1).ok());
  for (const char* bad :
       {"a", "=error", "a=explode", "a=error@0", "a=error@1.5", "a=error*0",
        "a=error*x", "a=delay:", "a=delay:-1", "a=drops"}) {
    absl::Status s = Configure(bad, 1);
    EXPECT_EQ(ToErrno(s), EINVAL) << bad;
  }
  EXPECT_EQ(ToErrno(Hit("a")), EIO);  // the earlier spec still holds
}

TEST_F(FaultPointsTest, CrashEndsTheProcessAtOnce) {
  EXPECT_EXIT(
      {
        if (!Configure("x=crash", 1).ok()) _exit(1);
        (void)Hit("x");
        _exit(0);
      },
      ::testing::ExitedWithCode(kCrashExit), "");
}

}  // namespace
}  // namespace stripefs::fault
