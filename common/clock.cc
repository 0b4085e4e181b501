#include "common/clock.h"

#include "absl/time/clock.h"

namespace stripefs {
namespace {
class SystemClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration d) override { absl::SleepFor(d); }
};
}  // namespace

Clock* RealClock() {
  static SystemClock* clock = new SystemClock;
  return clock;
}

}  // namespace stripefs
