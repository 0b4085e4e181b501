// ObjectLocks: the OSS side of data coherence. Before the OSS cuts, punches
// or destroys an object it takes a conflicting EXTENT lock on the object's
// DLM resource "obj:<ost_index>:<object_id>" (the resource the clients
// lock for I/O, fuse-client/data_locks.h), so every mount caching pages in
// that range drops them (and has reported its size) first; the lock is
// cancelled right after the change (nothing is cached by the OSS).
//  - truncate to S: PW over [S, EOF]
//  - punch [O, O+L): PW over [O, O+L-1]
//  - destroy: EX over all of the object
// Without a lock client (no --dlm) every call is a no-op.
// Thread-safe (DlmClient is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "dlm/dlm_client.h"

namespace stripefs::oss {

class ObjectLocks {
 public:
  // `dlm` may be null; otherwise it must outlive this object.
  ObjectLocks(dlm::DlmClient* dlm, uint32_t ost_index)
      : dlm_(dlm), ost_index_(ost_index) {}

  // Cancels the lock at scope exit.
  class Held {
   public:
    Held() = default;
    Held(dlm::DlmClient* dlm, uint64_t handle) : dlm_(dlm), handle_(handle) {}
    Held(Held&& o) noexcept : dlm_(o.dlm_), handle_(o.handle_) {
      o.dlm_ = nullptr;
    }
    Held& operator=(Held&&) = delete;
    ~Held();

   private:
    dlm::DlmClient* dlm_ = nullptr;
    uint64_t handle_ = 0;
  };

  // Object `oid` cut to `size` / range punched / destroyed.
  [[nodiscard]] absl::StatusOr<Held> ForTruncate(uint64_t oid, uint64_t size);
  [[nodiscard]] absl::StatusOr<Held> ForPunch(uint64_t oid, uint64_t offset,
                                              uint64_t length);
  [[nodiscard]] absl::StatusOr<Held> ForDestroy(uint64_t oid);

  bool enabled() const { return dlm_ != nullptr; }
  std::string Resource(uint64_t oid) const;

 private:
  absl::StatusOr<Held> Take(uint64_t oid, dlm::LockMode mode, uint64_t start,
                            uint64_t end);

  dlm::DlmClient* const dlm_;
  const uint32_t ost_index_;
};

}  // namespace stripefs::oss
