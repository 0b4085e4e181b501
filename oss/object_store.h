// ObjectStore: the core logic of one object storage target (OST), free of
// any RPC types. Object data lives in sparse files
// DATA/objects/<oid % 256 as 2 hex digits>/<oid>; a KvStore at DATA/db
// records which objects exist and the precreate high-water mark. Every
// file and the KvStore are reached through one storage::Disk.
//
// Thread-safety: every method is safe to call concurrently. Reads and writes
// of different (or the same) objects run in parallel: the data path takes
// only a short per-shard lock on the open-file cache, never a lock held over
// pread/pwrite. Lock order: the object's lock (ObjectLockTaker, taken
// first) -> Shard::life_mu -> Shard::mu; precreate_mu_ is never held
// together with a shard lock.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/limits.h"
#include "oss/capacity.h"
#include "oss/object_lock_taker.h"
#include "storage/disk.h"
#include "storage/kv.h"

namespace stripefs::oss {

// Largest object: common/limits.h.
using ::stripefs::kMaxObjectSize;
// Largest single read or write.
inline constexpr uint64_t kMaxIoBytes = uint64_t{8} << 20;  // 8 MiB
// Most objects one Precreate may create.
inline constexpr uint32_t kMaxPrecreate = 1 << 20;

struct ObjectStoreOptions {
  // Data directory; created if missing (its parent must exist).
  std::string data_dir;
  // Bound of the open-file-descriptor cache (default 512).
  size_t max_open_files = 512;
  // Where files and the KV store live (default nullptr: ServerDisk()).
  storage::Disk* disk = nullptr;
  // Most bytes the objects may take (oss/capacity.h); 0: no limit but the
  // file system's.
  uint64_t capacity_bytes = 0;
};

// An object's size and the 512-byte blocks allocated to it.
using ObjectAttr = storage::FileStat;

// Space of the target's file system plus its object count.
struct StoreStatfs : storage::DiskSpace {
  uint64_t objects = 0;
};

class ObjectStore {
 public:
  // Opens (formatting on first use) the store in options.data_dir.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ObjectStore>> Open(
      const ObjectStoreOptions& options);
  ~ObjectStore();

  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  // Creates `count` new, empty objects and returns the first id: objects
  // [first, first + count) now exist. Ids are never reused, also across
  // restarts and crashes (the high-water mark is synced before returning).
  [[nodiscard]] absl::StatusOr<uint64_t> Precreate(uint32_t count);

  // Writes `data` at `offset`; with sync, the data (and the file's directory
  // entry if this write created it) is durable on return. Returns the object
  // size after the write.
  [[nodiscard]] absl::StatusOr<uint64_t> Write(uint64_t oid, uint64_t offset,
                                               std::string_view data,
                                               bool sync);

  // Replaces *out with the bytes [offset, min(offset + length, size));
  // holes read as zeros. Returns the object size.
  [[nodiscard]] absl::StatusOr<uint64_t> Read(uint64_t oid, uint64_t offset,
                                              uint64_t length,
                                              std::string* out);

  // The object locks taken before a truncate, punch or destroy
  // (object_lock_taker.h); default: none. Set before serving; `locks` must
  // outlive the store.
  void set_object_locks(ObjectLockTaker* locks) { locks_ = locks; }

  // Sets the object size (shrinks or grows with a hole), under the object's
  // lock beyond the new size.
  [[nodiscard]] absl::Status Truncate(uint64_t oid, uint64_t size);

  // Deallocates [offset, offset + length); the range reads as zeros after,
  // the size does not change. Under the lock of the range.
  [[nodiscard]] absl::Status Punch(uint64_t oid, uint64_t offset,
                                   uint64_t length);

  // Removes objects and their data. Unknown ids are skipped (idempotent).
  // Each object is locked whole first, unless there are more than
  // kMaxLockedDestroy of them (a bulk orphan clean-up: clients may cache
  // pages of an object only while its file is reachable, which it is not
  // once the MDS destroys it; the locks only revoke their locks early).
  [[nodiscard]] absl::Status Destroy(const std::vector<uint64_t>& oids);
  static constexpr size_t kMaxLockedDestroy = 64;

  // Makes the data of `oids` durable; an empty list means every object.
  // Returns only when everything written before the call is durable, also
  // when another caller's sync of the same file or directory overlaps.
  [[nodiscard]] absl::Status Sync(const std::vector<uint64_t>& oids);

  [[nodiscard]] absl::StatusOr<ObjectAttr> GetAttr(uint64_t oid);
  [[nodiscard]] absl::StatusOr<StoreStatfs> Statfs();

  // stripefs fsck (object_store_list.cc): the existing objects with ids
  // above `after`, in id order, at most `max` of them, each with its size
  // (an object never written: 0). *done: no object after these.
  struct ListedObject {
    uint64_t oid = 0;
    uint64_t size = 0;
  };
  [[nodiscard]] absl::StatusOr<std::vector<ListedObject>> ListObjects(
      uint64_t after, size_t max, bool* done);

  // Highest object id handed out so far (0 if none).
  uint64_t last_oid() const;
  // Number of existing objects.
  uint64_t object_count() const { return objects_.load(); }

  // On-disk feature wide_dirs (storage/on_disk_features.h, incompatible
  // with release N): object files live in 4096 subdirectories
  // DATA/objects/<oid % 4096 as 3 hex digits>/<oid> instead of 256. Moves
  // every object file still in the 256 old subdirectories (idempotent: a
  // move interrupted by a crash is finished by the next call) and makes
  // the moves durable. Call at start, before serving, each time the
  // store's record has the feature (after the record was stored).
  [[nodiscard]] absl::Status UseWideDirs();
  bool wide_dirs() const { return wide_dirs_.load(); }

  // Forced failover (seed 002): from now on every change — object writes
  // (also the rest of one in progress), truncates, punches, precreates,
  // destroys and syncs — fails with EROFS, as on a device remounted
  // read-only; the KV store turns read-only too. Reads keep working.
  // Callers log the errors and never crash on them.
  void SetReadOnly(bool read_only);

  // Makes every object's data and the KV store durable and closes every
  // cached file. Further calls are refused. Called by the destructor if not called before.
  [[nodiscard]] absl::Status Close();

  // The store's KV, for the server record (server/lifecycle.h), which
  // the main writes at start and after Close().
  storage::KvStore& kv() { return *kv_; }

 private:
  // An open object file; closed when the last user drops it.
  using FilePtr = std::shared_ptr<storage::DiskFile>;
  // Names created in one subdirectory against names made durable there:
  // a sync covers what was created before it started, and a caller waits
  // for (or runs) a sync that started after its own creates.
  struct SubdirSync {
    std::atomic<uint64_t> created{0};
    std::atomic<uint64_t> synced{0};
    absl::Mutex mu;  // one directory fsync at a time
  };

  // One slice of the open-file cache (oids hash to shards). life_mu
  // serializes opening a missing entry against Destroy, so a write can never
  // recreate the file of an object being destroyed.
  struct Shard {
    absl::Mutex life_mu;
    absl::Mutex mu ABSL_ACQUIRED_AFTER(life_mu);
    std::list<std::pair<uint64_t, FilePtr>> lru ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<uint64_t, std::list<std::pair<uint64_t, FilePtr>>::iterator>
        map ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 16;
  static constexpr size_t kSubdirs = 256;
  static constexpr size_t kWideSubdirs = 4096;  // with wide_dirs

  ObjectStore(std::string data_dir, storage::Disk* disk,
              std::unique_ptr<storage::KvStore> kv, size_t max_open_files);

  [[nodiscard]] absl::Status Load();
  // With a capacity: the size of every object file, at load.
  [[nodiscard]] absl::Status LoadSizes();
  Shard& ShardFor(uint64_t oid) { return shards_[oid % kShards]; }
  // Subdirectory of an object (per the layout in use) and its name.
  size_t SubdirIndex(uint64_t oid) const {
    return oid % (wide_dirs_.load() ? kWideSubdirs : kSubdirs);
  }
  std::string SubdirName(uint64_t oid) const;
  std::string PathOf(uint64_t oid) const;
  static std::string ObjectKey(uint64_t oid);

  // The open file of an existing object. ENOENT if the object does not
  // exist. If the object exists but has no file yet: with create, the file
  // is created; without, returns nullptr (an empty object).
  [[nodiscard]] absl::StatusOr<FilePtr> Acquire(uint64_t oid, bool create);
  // Looks oid up in the cache (and refreshes its LRU position).
  FilePtr Lookup(Shard& shard, uint64_t oid);
  void Insert(Shard& shard, uint64_t oid, FilePtr file)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.life_mu);
  // fdatasync of the file plus the directory entry if still unsynced.
  [[nodiscard]] absl::Status SyncFile(uint64_t oid, storage::DiskFile& file);
  // syncfs of the objects plus the KV store (Sync of every object).
  [[nodiscard]] absl::Status SyncAll();
  // Makes every name created in subdirectory `index` so far durable.
  [[nodiscard]] absl::Status SyncSubdir(size_t index);
  [[nodiscard]] absl::Status CheckOpen() const;
  // EROFS once SetReadOnly(true) (and CheckOpen's error when closed).
  [[nodiscard]] absl::Status CheckWritable(uint64_t oid) const;

  const std::string data_dir_;
  const std::string objects_dir_;  // DATA/objects
  storage::Disk* const disk_;
  ObjectLockTaker* locks_ = nullptr;  // set before serving
  std::unique_ptr<Capacity> capacity_;  // null: no limit (set at Open)
  const std::unique_ptr<storage::KvStore> kv_;
  const size_t per_shard_files_;

  std::array<Shard, kShards> shards_;
  std::array<SubdirSync, kWideSubdirs> subdir_sync_;
  // Layout of the object files: set by UseWideDirs before serving.
  std::atomic<bool> wide_dirs_{false};
  std::atomic<uint64_t> objects_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> read_only_{false};

  mutable absl::Mutex precreate_mu_;
  uint64_t last_oid_ ABSL_GUARDED_BY(precreate_mu_) = 0;
};

}  // namespace stripefs::oss
