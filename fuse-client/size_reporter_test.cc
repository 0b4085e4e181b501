#include "fuse-client/size_reporter.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "fuse-client/fs.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

class Recorder {
 public:
  SizeReporter::ReportFn Fn() {
    return [this](const std::shared_ptr<InodeState>& st) {
      absl::MutexLock l(&mu_);
      inos_.push_back(st->ino);
    };
  }
  std::vector<uint64_t> Inos() {
    absl::MutexLock l(&mu_);
    return inos_;
  }
  bool WaitFor(size_t n, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return inos_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> inos_ ABSL_GUARDED_BY(mu_);
};

TEST(SizeReporterTest, ReportsAfterTheDelayOncePerInode) {
  Recorder rec;
  SizeReporter r(rec.Fn(), absl::Milliseconds(100));
  auto st = std::make_shared<InodeState>(7);
  r.Add(7, st);
  r.Add(7, st);  // still one report
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_TRUE(rec.Inos().empty());  // not before the delay
  ASSERT_TRUE(rec.WaitFor(1, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_EQ(rec.Inos(), std::vector<uint64_t>{7});
}

TEST(SizeReporterTest, KickReportsAtOnce) {
  Recorder rec;
  SizeReporter r(rec.Fn(), absl::Hours(1));
  r.Add(3, std::make_shared<InodeState>(3));
  r.Add(4, std::make_shared<InodeState>(4));
  r.Kick(5);  // not pending: nothing
  r.Kick(4);
  ASSERT_TRUE(rec.WaitFor(1, absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(rec.Inos(), std::vector<uint64_t>{4});
}

TEST(SizeReporterTest, StopReportsWhatIsPending) {
  Recorder rec;
  {
    SizeReporter r(rec.Fn(), absl::Hours(1));
    r.Add(9, std::make_shared<InodeState>(9));
  }
  EXPECT_EQ(rec.Inos(), std::vector<uint64_t>{9});
}

}  // namespace
}  // namespace stripefs::client
