#include "dlm/lock_cache.h"

#include <algorithm>
#include <vector>

#include "common/fake_clock.h"
#include "gtest/gtest.h"

namespace stripefs::dlm {
namespace {

LockInfo Granted(uint64_t h, const std::string& name, LockMode m) {
  LockInfo i;
  i.handle = h;
  i.spec = {{name, LockType::kPlain}, m};
  i.granted = true;
  return i;
}

TEST(LockCacheTest, ReusesCoveringGrantedLock) {
  FakeClock clock;
  LockCache cache({}, &clock);
  cache.Insert(Granted(1, "config", LockMode::kPW));
  CachedLock* c = cache.Match({{"config", LockType::kPlain}, LockMode::kPR});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->info.handle, 1u);
  EXPECT_EQ(cache.Match({{"config", LockType::kPlain}, LockMode::kEX}),
            nullptr);
  c->blocked = true;  // asked back: no longer handed out
  EXPECT_EQ(cache.Match({{"config", LockType::kPlain}, LockMode::kPR}),
            nullptr);
}

TEST(LockCacheTest, ExemptLockServesOnlyTheSameExemption) {
  FakeClock clock;
  LockCache cache({}, &clock);
  LockInfo ex = Granted(1, "ino:5", LockMode::kEX);
  ex.exempt_client = 7;  // granted beside client 7's locks
  cache.Insert(ex);
  const LockSpec want{{"ino:5", LockType::kPlain}, LockMode::kEX};
  EXPECT_EQ(cache.Match(want), nullptr);      // a change for nobody
  EXPECT_EQ(cache.Match(want, 8), nullptr);   // a change for client 8
  ASSERT_NE(cache.Match(want, 7), nullptr);   // client 7's next change
  // A lock granted without exemption serves every request.
  cache.Insert(Granted(2, "ino:6", LockMode::kEX));
  const LockSpec want6{{"ino:6", LockType::kPlain}, LockMode::kEX};
  EXPECT_NE(cache.Match(want6, 8), nullptr);
  EXPECT_NE(cache.Match(want6), nullptr);
}

TEST(LockCacheTest, TakeUnusedMarksOnlyIdleLocksOfThatResource) {
  FakeClock clock;
  LockCache cache({}, &clock);
  cache.Release(cache.Insert(Granted(1, "ino:7", LockMode::kPR)));
  cache.Insert(Granted(2, "ino:7", LockMode::kPR));  // in use
  cache.Release(cache.Insert(Granted(3, "ino:8", LockMode::kPR)));
  std::vector<LockInfo> out = cache.TakeUnused({"ino:7", LockType::kPlain});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].handle, 1u);
  EXPECT_TRUE(cache.Find(1)->cancelling);
  EXPECT_FALSE(cache.Find(2)->cancelling);
  EXPECT_FALSE(cache.Find(3)->cancelling);
  // Not handed out again, not taken twice.
  EXPECT_EQ(cache.Match({{"ino:7", LockType::kPlain}, LockMode::kPR})
                ->info.handle,
            2u);
  EXPECT_TRUE(cache.TakeUnused({"ino:7", LockType::kPlain}).empty());
  // Erasing keeps the per-resource index right.
  cache.Erase(1);
  cache.Erase(2);
  EXPECT_EQ(cache.Match({{"ino:7", LockType::kPlain}, LockMode::kPR}),
            nullptr);
  EXPECT_NE(cache.Match({{"ino:8", LockType::kPlain}, LockMode::kPR}),
            nullptr);
}

TEST(LockCacheTest, LruByCountDropsLeastRecentlyUsedUnusedLocks) {
  FakeClock clock;
  LockCache cache({.max_count = 2, .max_age = absl::Hours(1)}, &clock);
  for (uint64_t h = 1; h <= 4; ++h) {
    CachedLock& c = cache.Insert(Granted(h, "r" + std::to_string(h),
                                         LockMode::kPR));
    clock.Advance(absl::Seconds(1));
    if (h != 1) cache.Release(c);  // lock 1 stays in use
  }
  // Touch lock 2 so lock 3 becomes the oldest unused one.
  clock.Advance(absl::Seconds(1));
  cache.Use(*cache.Find(2));
  cache.Release(*cache.Find(2));
  std::vector<LockInfo> out = cache.CollectExpired();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].handle, 3u);
  EXPECT_EQ(out[1].handle, 4u);
  EXPECT_TRUE(cache.CollectExpired().empty());  // already cancelling
}

TEST(LockCacheTest, LruOverManyLocksKeepsTheNewestAndCountsCancellingOnce) {
  FakeClock clock;
  LockCache cache({.max_count = 100, .max_age = absl::Hours(1)}, &clock);
  for (uint64_t h = 1; h <= 5000; ++h) {
    clock.Advance(absl::Milliseconds(1));
    cache.Release(cache.Insert(Granted(h, "r" + std::to_string(h),
                                       LockMode::kPR)));
  }
  cache.Use(*cache.Find(1));  // in use again: not the LRU's
  std::vector<LockInfo> out = cache.CollectExpired();
  ASSERT_EQ(out.size(), 4900u);
  EXPECT_EQ(out.front().handle, 2u);  // oldest unused first
  EXPECT_EQ(out.back().handle, 4901u);
  // Cancelling locks still in the cache count once, not again.
  EXPECT_TRUE(cache.CollectExpired().empty());
  for (const LockInfo& l : out) cache.Erase(l.handle);
  EXPECT_EQ(cache.size(), 100u);
  clock.Advance(absl::Milliseconds(1));
  cache.Release(*cache.Find(1));  // now the most recently used
  cache.Release(cache.Insert(Granted(6000, "r6000", LockMode::kPR)));
  out = cache.CollectExpired();  // 101 live, 100 allowed: the oldest goes
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].handle, 4902u);
}

TEST(LockCacheTest, LocksCancelledByCallbackLeaveTheLru) {
  FakeClock clock;
  LockCache cache({.max_count = 2, .max_age = absl::Hours(1)}, &clock);
  for (uint64_t h = 1; h <= 3; ++h) {
    cache.Release(cache.Insert(Granted(h, "r" + std::to_string(h),
                                       LockMode::kPR)));
    clock.Advance(absl::Seconds(1));
  }
  // Lock 1 is asked back and handed to the cancel path (not by the LRU),
  // then erased once cancelled: the LRU neither takes it again nor counts
  // it afterwards.
  cache.MarkCancelling(*cache.Find(1));
  EXPECT_TRUE(cache.CollectExpired().empty());  // 2 live, 2 allowed
  cache.Erase(1);
  EXPECT_TRUE(cache.CollectExpired().empty());
  cache.Release(cache.Insert(Granted(4, "r4", LockMode::kPR)));
  std::vector<LockInfo> out = cache.CollectExpired();  // 3 live: one goes
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].handle, 2u);
}

TEST(LockCacheTest, LruByAgeDropsIdleLocksOnly) {
  FakeClock clock;
  LockCache cache({.max_count = 100, .max_age = absl::Seconds(30)}, &clock);
  cache.Release(cache.Insert(Granted(1, "a", LockMode::kPR)));
  cache.Insert(Granted(2, "b", LockMode::kPR));  // in use
  clock.Advance(absl::Seconds(20));
  cache.Release(cache.Insert(Granted(3, "c", LockMode::kPR)));
  EXPECT_TRUE(cache.CollectExpired().empty());
  clock.Advance(absl::Seconds(15));
  std::vector<LockInfo> out = cache.CollectExpired();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].handle, 1u);
  EXPECT_EQ(cache.BlockedHeld(true).size(), 0u);  // none asked back
}

TEST(LockCacheTest, BlockedLocksTouchedInUseOrWhileAHandlerWorks) {
  FakeClock clock;
  LockCache cache({.max_count = 100, .max_age = absl::Seconds(30)}, &clock);
  CachedLock& used = cache.Insert(Granted(1, "a", LockMode::kPW));
  cache.Release(cache.Insert(Granted(2, "b", LockMode::kPW)));
  cache.Release(cache.Insert(Granted(3, "c", LockMode::kPR)));
  used.blocked = true;                 // asked back while in use
  cache.Find(2)->blocked = true;       // asked back, its handler to run
  // A handler that works on its lock: every asked-back lock is Touched.
  std::vector<uint64_t> touched = cache.BlockedHeld(true);
  std::sort(touched.begin(), touched.end());
  EXPECT_EQ(touched, (std::vector<uint64_t>{1, 2}));
  // Otherwise only the one in use: a hanging handler is evicted.
  EXPECT_EQ(cache.BlockedHeld(false), std::vector<uint64_t>{1});
  cache.Erase(2);  // cancelled
  EXPECT_EQ(cache.BlockedHeld(true), std::vector<uint64_t>{1});
}

}  // namespace
}  // namespace stripefs::dlm
