// The key-value store every stateful role keeps its records in. Two
// implementations: RocksDB (OpenRocksKv) and an in-memory fake for unit
// tests (NewMemKv). RocksDB is included only in storage/ (rocks_kv.cc and
// the Disk implementations it runs on, storage/disk.h).
//
// Thread-safety: a KvStore is safe for concurrent use; a WriteBatch and a
// KvIterator belong to one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stripefs::storage {

class Disk;  // storage/disk.h

// Ordered set of puts and deletes applied atomically by KvStore::Write.
class WriteBatch {
 public:
  struct Op {
    bool is_delete;
    std::string key;
    std::string value;
  };
  void Put(std::string_view key, std::string_view value) {
    ops_.push_back({false, std::string(key), std::string(value)});
  }
  void Delete(std::string_view key) {
    ops_.push_back({true, std::string(key), {}});
  }
  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }
  void Clear() { ops_.clear(); }

 private:
  std::vector<Op> ops_;
};

// Forward iterator over keys in bytewise order.
class KvIterator {
 public:
  virtual ~KvIterator() = default;
  virtual void Seek(std::string_view key) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Non-OK if iteration hit an error (Valid() is then false).
  virtual absl::Status status() const = 0;
};

struct WriteOptions {
  // Make the batch durable (fsync the log) before returning. Default false:
  // the write survives a process crash (it is in the OS page cache) but not
  // a machine crash.
  bool sync = false;
};

class KvStore {
 public:
  virtual ~KvStore() = default;
  // nullopt when absent.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) = 0;
  [[nodiscard]] virtual absl::Status Write(const WriteBatch& batch,
                                           WriteOptions options = {}) = 0;
  virtual std::unique_ptr<KvIterator> NewIterator() = 0;
  // Makes every write completed before the call durable (group commit:
  // concurrent callers share one sync of the log).
  [[nodiscard]] virtual absl::Status Sync() = 0;
  // Refuses every further write with FAILED_PRECONDITION (EROFS), as a
  // backend turned read-only would. Reads keep working.
  virtual void SetReadOnly(bool read_only) = 0;
};

struct RocksOptions {
  // Create the database if it does not exist (default true).
  bool create_if_missing = true;
  // Block cache size in bytes (default 64 MiB).
  size_t block_cache_bytes = 64 << 20;
  // The disk the database lives on (default nullptr: ServerDisk()).
  Disk* disk = nullptr;
};

[[nodiscard]] absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksKv(
    const std::string& path, const RocksOptions& options = {});

std::unique_ptr<KvStore> NewMemKv();

// Key encoding helpers: big-endian integers sort numerically.
void AppendBE64(std::string* dst, uint64_t v);
void AppendBE32(std::string* dst, uint32_t v);
uint64_t DecodeBE64(std::string_view src);  // src.size() >= 8
uint32_t DecodeBE32(std::string_view src);  // src.size() >= 4

}  // namespace stripefs::storage
