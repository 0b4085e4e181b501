#include "oss/object_locks.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stripefs::oss {

std::string ObjectLocks::Resource(uint64_t oid) const {
  return absl::StrCat("obj:", ost_index_, ":", oid);
}

absl::StatusOr<ObjectLocks::Held> ObjectLocks::Take(uint64_t oid,
                                                    dlm::LockMode mode,
                                                    uint64_t start,
                                                    uint64_t end) {
  if (dlm_ == nullptr) return Held();
  dlm::LockSpec spec;
  spec.resource = {Resource(oid), dlm::LockType::kExtent};
  spec.mode = mode;
  spec.start = start;
  spec.end = end;
  dlm::LockOptions opts;
  opts.no_cache_match = true;  // a fresh lock each time: we cancel it after
  absl::StatusOr<dlm::LockInfo> l = dlm_->Lock(spec, opts);
  if (!l.ok()) return l.status();
  dlm::DlmClient* dlm = dlm_;
  const uint64_t handle = l->handle;
  return Held([dlm, handle] {
    if (absl::Status s = dlm->Cancel(handle); !s.ok()) {
      // The lock stays until the DLM asks for it back; nothing is lost.
      spdlog::warn("cancel of object lock {}: {}", handle, s.ToString());
    }
  });
}

absl::StatusOr<ObjectLocks::Held> ObjectLocks::ForTruncate(uint64_t oid,
                                                           uint64_t size) {
  return Take(oid, dlm::LockMode::kPW, size, dlm::kExtentEof);
}

absl::StatusOr<ObjectLocks::Held> ObjectLocks::ForPunch(uint64_t oid,
                                                        uint64_t offset,
                                                        uint64_t length) {
  if (length == 0) return Held();
  uint64_t end = offset > dlm::kExtentEof - (length - 1)
                     ? dlm::kExtentEof
                     : offset + length - 1;
  return Take(oid, dlm::LockMode::kPW, offset, end);
}

absl::StatusOr<ObjectLocks::Held> ObjectLocks::ForDestroy(uint64_t oid) {
  return Take(oid, dlm::LockMode::kEX, 0, dlm::kExtentEof);
}

}  // namespace stripefs::oss
