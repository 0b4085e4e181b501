// Time reaches logic through this interface so tests can substitute a fake.
// RealClock() is thread-safe.
#pragma once

#include "absl/time/time.h"

namespace stripefs {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  virtual void SleepFor(absl::Duration d) = 0;
};

// The system clock; never null, never destroyed.
Clock* RealClock();

}  // namespace stripefs
