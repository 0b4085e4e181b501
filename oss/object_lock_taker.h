// ObjectLockTaker: how ObjectStore locks an object before it cuts, punches
// or destroys it, in the core's own types (data coherence: every mount
// caching pages in the range drops them, and reports its size, first).
// ObjectStore decides when and over what range; oss/object_locks.h takes
// the locks from the lock service (the adapter library). Without a taker
// ObjectStore locks nothing.
//  - truncate to S: PW over [S, EOF]
//  - punch [O, O+L): PW over [O, O+L-1]
//  - destroy: EX over all of the object
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "absl/status/statusor.h"

namespace stripefs::oss {

// One object lock, given back when destroyed.
class ObjectLock {
 public:
  ObjectLock() = default;
  explicit ObjectLock(std::function<void()> release)
      : release_(std::move(release)) {}
  ObjectLock(ObjectLock&& o) noexcept
      : release_(std::exchange(o.release_, {})) {}
  ObjectLock& operator=(ObjectLock&&) = delete;
  ObjectLock(const ObjectLock&) = delete;
  ~ObjectLock() {
    if (release_) release_();
  }

 private:
  std::function<void()> release_;
};

class ObjectLockTaker {
 public:
  virtual ~ObjectLockTaker() = default;
  // Object `oid` cut to `size` / range punched / destroyed.
  [[nodiscard]] virtual absl::StatusOr<ObjectLock> ForTruncate(
      uint64_t oid, uint64_t size) = 0;
  [[nodiscard]] virtual absl::StatusOr<ObjectLock> ForPunch(
      uint64_t oid, uint64_t offset, uint64_t length) = 0;
  [[nodiscard]] virtual absl::StatusOr<ObjectLock> ForDestroy(uint64_t oid) = 0;
};

}  // namespace stripefs::oss
