// Capacity: a limit on the bytes a target's objects may take
// (stripefs-oss --capacity BYTES; e.g. a test's nearly full OST, or a
// target sharing a file system with others). The object store charges
// each write that extends an object against it and refuses one that would
// pass it with ENOSPC; its statfs reports at most the limit as total and
// limit - used as free. An object counts up to its highest written byte
// (a sparse object counts whole; a truncate down gives back, a truncate up
// takes nothing), so `used` is the sum of the object sizes the writes
// made. Thread-safe.
#pragma once

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/disk.h"

namespace stripefs::oss {

class Capacity {
 public:
  explicit Capacity(uint64_t limit_bytes) : limit_(limit_bytes) {}

  uint64_t limit() const { return limit_; }
  uint64_t used() const;
  // Object `oid` holds `size` bytes (at load).
  void Loaded(uint64_t oid, uint64_t size);
  // Before a write ending at byte `end` of `oid`: charges what it adds;
  // ENOSPC (nothing charged) when that passes the limit.
  absl::Status Charge(uint64_t oid, uint64_t end);
  void Truncated(uint64_t oid, uint64_t size);
  void Destroyed(uint64_t oid);
  // The file system's space as the target reports it under the limit.
  storage::DiskSpace Apply(const storage::DiskSpace& disk) const;

 private:
  const uint64_t limit_;
  mutable absl::Mutex mu_;
  uint64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, uint64_t> size_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::oss
