// On-disk encoding of the DLM lock table in a KvStore:
//   "M"              -> meta: next handle, next seq, clean-shutdown flag
//   "C" <client BE64> -> client name
//   "L" <handle BE64> -> one lock (owner, xid, resource, modes, policy, state)
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "dlm/lock_types.h"

namespace stripefs::dlm {

inline constexpr char kMetaKey[] = "M";
inline constexpr char kClientPrefix = 'C';
inline constexpr char kLockPrefix = 'L';

struct LockRecord {
  uint64_t handle = 0;
  uint64_t client_id = 0;
  uint64_t xid = 0;
  uint64_t seq = 0;  // FIFO order of the queue
  LockSpec spec;     // spec.mode: granted mode, or requested while waiting
  LockMode req_mode = LockMode::kNL;  // == spec.mode unless converting
  bool granted = false;
  bool exact = false;  // EXTENT: never expanded (record locks)
};

struct MetaRecord {
  uint64_t next_handle = 1;
  uint64_t next_seq = 1;
  bool clean = true;  // the last instance shut down cleanly
};

std::string LockKey(uint64_t handle);
std::string ClientKey(uint64_t client_id);

std::string EncodeLock(const LockRecord& r);
absl::StatusOr<LockRecord> DecodeLock(std::string_view key,
                                      std::string_view value);
std::string EncodeMeta(const MetaRecord& m);
absl::StatusOr<MetaRecord> DecodeMeta(std::string_view value);

}  // namespace stripefs::dlm
