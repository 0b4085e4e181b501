// MdLocker: MdLockTaker (mds/md_lock_taker.h) over the lock service. The
// EX IBITS locks are on the "ino:<N>" resources clients cache under; they
// are released after the change (the DlmClient keeps them cached until a
// client asks). Without a DlmClient every call is a no-op. A lock taken
// with an own-change exemption for mount M stays cached tagged with it and
// is reused only for M's changes (dlm/lock_cache.h Match).
// Part of the adapter library (the DlmClient speaks gRPC).
// Thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "dlm/dlm_client.h"
#include "mds/md_lock_taker.h"

namespace stripefs::mds {

// Every bit a client metadata lock may hold.
inline constexpr uint64_t kMdLockBits = dlm::kBitLookup | dlm::kBitUpdate |
                                        dlm::kBitPerm | dlm::kBitXattr;

class MdLocker final : public MdLockTaker {
 public:
  // dlm may be null (no lock service); it must outlive the locker.
  explicit MdLocker(dlm::DlmClient* dlm) : dlm_(dlm) {}
  bool enabled() const override { return dlm_ != nullptr; }

  absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t> inos,
                                     const Exemption& exempt) override;
  // DlmClient::EnqueueFor (no_wait); `bits` limited to kMdLockBits.
  absl::StatusOr<uint64_t> GrantFor(uint64_t owner, uint64_t xid,
                                    uint64_t ino, uint64_t bits) override;

 private:
  dlm::DlmClient* const dlm_;
};

}  // namespace stripefs::mds
