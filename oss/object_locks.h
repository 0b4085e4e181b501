// ObjectLocks: ObjectLockTaker (oss/object_lock_taker.h, which says which
// lock each change takes) over the lock service: a conflicting EXTENT lock
// on the object's DLM resource "obj:<ost_index>:<object_id>" (the resource
// the clients lock for I/O, fuse-client/data_locks.h), cancelled right
// after the change (nothing is cached by the OSS). Part of the adapter
// library (the DlmClient speaks gRPC).
// Without a lock client (no --dlm) every call is a no-op.
// Thread-safe (DlmClient is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "dlm/dlm_client.h"
#include "oss/object_lock_taker.h"

namespace stripefs::oss {

class ObjectLocks final : public ObjectLockTaker {
 public:
  // `dlm` may be null; otherwise it must outlive this object.
  ObjectLocks(dlm::DlmClient* dlm, uint32_t ost_index)
      : dlm_(dlm), ost_index_(ost_index) {}

  // Cancels the lock at scope exit.
  using Held = ObjectLock;

  // Object `oid` cut to `size` / range punched / destroyed.
  [[nodiscard]] absl::StatusOr<Held> ForTruncate(uint64_t oid,
                                                 uint64_t size) override;
  [[nodiscard]] absl::StatusOr<Held> ForPunch(uint64_t oid, uint64_t offset,
                                              uint64_t length) override;
  [[nodiscard]] absl::StatusOr<Held> ForDestroy(uint64_t oid) override;

  bool enabled() const { return dlm_ != nullptr; }
  std::string Resource(uint64_t oid) const;

 private:
  absl::StatusOr<Held> Take(uint64_t oid, dlm::LockMode mode, uint64_t start,
                            uint64_t end);

  dlm::DlmClient* const dlm_;
  const uint32_t ost_index_;
};

}  // namespace stripefs::oss
