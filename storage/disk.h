// Disk: the one seam through which a server reaches stable storage — the
// file system its RocksDB stores run on (RocksOptions::disk) and the files
// the OSS keeps object data in (oss/object_store.h). Three implementations:
//   DefaultDisk()  the real one (POSIX calls, RocksDB's default FileSystem);
//   NoSyncDisk()   the real one with stripefs's own syncs turned into
//                  no-ops (object files, directories, the KV store's log;
//                  RocksDB still syncs its own metadata so a store opens
//                  after a cut) — the test-only switch
//                  STRIPEFS_TEST_NO_SYNC=1 (ServerDisk), which shows that
//                  the power-cut checks can fail;
//   PowerCutDisk   (storage/power_cut_disk.h) remembers what was synced and
//                  drops everything else on command, as a power cut would.
// Only a sync makes anything durable: DiskFile::DataSync for a file's bytes,
// SyncDir for the names in a directory, SyncAll for everything.
//
// Thread-safety: Disks and DiskFiles are safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace stripefs::storage {

struct FileStat {
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte blocks allocated
};

struct DiskSpace {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t avail_bytes = 0;
};

// An open regular file; closed when destroyed.
class DiskFile {
 public:
  virtual ~DiskFile() = default;
  // Writes all of `data` at `offset` (retrying short writes and EINTR).
  [[nodiscard]] virtual absl::Status PWrite(std::string_view data,
                                            uint64_t offset) = 0;
  // Reads up to n bytes at offset; fewer only at the end of the file.
  [[nodiscard]] virtual absl::StatusOr<size_t> PRead(char* buf, size_t n,
                                                     uint64_t offset) = 0;
  [[nodiscard]] virtual absl::StatusOr<FileStat> Stat() = 0;
  [[nodiscard]] virtual absl::Status Truncate(uint64_t size) = 0;
  // Deallocates [offset, offset + length), keeping the size.
  [[nodiscard]] virtual absl::Status Punch(uint64_t offset,
                                           uint64_t length) = 0;
  // fdatasync: the bytes and size are durable (the name is not: SyncDir).
  [[nodiscard]] virtual absl::Status DataSync() = 0;
};

class Disk {
 public:
  virtual ~Disk() = default;
  // Opens `path` read-write. Without create, a missing file is ENOENT; with
  // it, the file is created and *created (if given) says whether this call
  // created it.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<DiskFile>> Open(
      const std::string& path, bool create, bool* created = nullptr) = 0;
  // Creates a directory; an existing directory is fine, anything else
  // there is ENOTDIR.
  [[nodiscard]] virtual absl::Status MakeDir(const std::string& path) = 0;
  // ENOENT if missing.
  [[nodiscard]] virtual absl::Status Unlink(const std::string& path) = 0;
  [[nodiscard]] virtual absl::Status Rename(const std::string& from,
                                            const std::string& to) = 0;
  // Names in a directory, without "." and "..".
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> List(
      const std::string& dir) = 0;
  // fsync of a directory: the names created, renamed or removed in it are
  // durable.
  [[nodiscard]] virtual absl::Status SyncDir(const std::string& dir) = 0;
  // syncfs: everything written so far under `path` is durable.
  [[nodiscard]] virtual absl::Status SyncAll(const std::string& path) = 0;
  [[nodiscard]] virtual absl::StatusOr<DiskSpace> Space(
      const std::string& path) = 0;
  // The file system RocksDB opens its databases on.
  virtual std::shared_ptr<rocksdb::FileSystem> rocks_fs() = 0;
  // False for NoSyncDisk: a KvStore on it neither syncs its log on
  // KvStore::Sync nor for WriteOptions::sync.
  virtual bool syncs_log() const { return true; }
};

// Process-wide instances, never destroyed.
Disk* DefaultDisk();
Disk* NoSyncDisk();
// What a server uses: NoSyncDisk() when $STRIPEFS_TEST_NO_SYNC is "1"
// (logged as an error at the first call: nothing is durable then), else
// DefaultDisk().
Disk* ServerDisk();

}  // namespace stripefs::storage
