#include "fuse-client/attr_inval.h"

#include <errno.h>

#include <map>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

class Kernel {
 public:
  // ino -> result of the next notifications (0 known, -ENOENT unknown).
  void SetKnown(uint64_t ino, bool known) {
    absl::MutexLock l(&mu_);
    known_[ino] = known;
  }
  int Notify(uint64_t ino) {
    absl::MutexLock l(&mu_);
    ++calls_[ino];
    return known_[ino] ? 0 : -ENOENT;
  }
  int Calls(uint64_t ino) {
    absl::MutexLock l(&mu_);
    return calls_[ino];
  }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, bool> known_;
  std::map<uint64_t, int> calls_;
};

bool WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 200; ++i) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

TEST(AttrInvalidatorTest, KnownInodeIsInvalidatedOnceAtOnce) {
  Kernel k;
  k.SetKnown(5, true);
  AttrInvalidator inv([&k](uint64_t ino) { return k.Notify(ino); });
  inv.Invalidate(5);
  EXPECT_EQ(k.Calls(5), 1);
  EXPECT_EQ(inv.Queued(), 0u);
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(k.Calls(5), 1);
}

TEST(AttrInvalidatorTest, UnknownInodeIsInvalidatedAgainLater) {
  // A lookup answered before the callback may install the inode after the
  // first notification: the later ones reach it.
  Kernel k;
  AttrInvalidator inv([&k](uint64_t ino) { return k.Notify(ino); });
  inv.Invalidate(7);
  EXPECT_EQ(k.Calls(7), 1);
  k.SetKnown(7, true);  // the lookup installed it
  ASSERT_TRUE(WaitFor([&] { return k.Calls(7) == 3; }));
  EXPECT_TRUE(WaitFor([&] { return inv.Queued() == 0; }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(k.Calls(7), 3);
}

TEST(AttrInvalidatorTest, StopsWithRetriesQueued) {
  Kernel k;
  {
    AttrInvalidator inv([&k](uint64_t ino) { return k.Notify(ino); });
    for (uint64_t i = 1; i <= 100; ++i) inv.Invalidate(i);
    EXPECT_GT(inv.Queued(), 0u);
  }  // joins without waiting for the retries
  int total = 0;
  for (uint64_t i = 1; i <= 100; ++i) total += k.Calls(i);
  EXPECT_LT(total, 300);
}

}  // namespace
}  // namespace stripefs::client
