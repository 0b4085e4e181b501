// MdLocker: the MDS side of metadata coherence. Before a change to what
// clients may cache (attributes, names in a directory, xattrs), the MDS
// takes EX IBITS locks on the affected "ino:<N>" resources; clients cache
// under PR locks on the same resources, so their caches are dropped
// (blocking callback) before the change is made. Locks are taken in
// ascending inode order, never while the MDS mutex is held, and released
// after the commit (the DlmClient keeps them cached until a client asks).
// Without a DlmClient every call is a no-op.
// Thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "dlm/dlm_client.h"

namespace stripefs::mds {

// Every bit a client metadata lock may hold.
inline constexpr uint64_t kMdLockBits = dlm::kBitLookup | dlm::kBitUpdate |
                                        dlm::kBitPerm | dlm::kBitXattr;

// Locks held for one request; released when destroyed.
class MdLocks {
 public:
  MdLocks() = default;
  MdLocks(dlm::DlmClient* dlm, std::vector<uint64_t> handles)
      : dlm_(dlm), handles_(std::move(handles)) {}
  MdLocks(MdLocks&& o) noexcept : dlm_(o.dlm_), handles_(std::move(o.handles_)) {
    o.handles_.clear();
  }
  MdLocks& operator=(MdLocks&& o) noexcept {
    ReleaseAll();
    dlm_ = o.dlm_;
    handles_ = std::move(o.handles_);
    o.handles_.clear();
    return *this;
  }
  ~MdLocks() { ReleaseAll(); }
  void ReleaseAll() {
    for (uint64_t h : handles_) dlm_->Release(h);
    handles_.clear();
  }

 private:
  dlm::DlmClient* dlm_ = nullptr;
  std::vector<uint64_t> handles_;
};

class MdLocker {
 public:
  // dlm may be null (no lock service); it must outlive the locker.
  explicit MdLocker(dlm::DlmClient* dlm) : dlm_(dlm) {}
  bool enabled() const { return dlm_ != nullptr; }

  // EX on every inode of `inos` (0s and duplicates ignored), in order.
  absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t> inos);

 private:
  dlm::DlmClient* const dlm_;
};

}  // namespace stripefs::mds
