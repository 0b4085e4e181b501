#include "oss/object_store.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace stripefs::oss {
namespace {

// KV keys: 'S' superblock, 'L' high-water mark (BE64 last oid handed out),
// 'O'<BE64 oid> one record per existing object (empty value).
constexpr char kSuperKey[] = "S";
constexpr char kLastOidKey[] = "L";
constexpr char kObjectPrefix = 'O';
constexpr int kFormatVersion = 1;

absl::Status SysError(int err, absl::string_view what, absl::string_view path) {
  return Errno(err, absl::StrCat(what, " ", path, ": ", strerror(err)));
}

// Prefixes an object's id to a Disk error.
absl::Status About(uint64_t oid, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("object ", oid, ": ", s.message()));
}

// Checks offset/length of a write-like request.
absl::Status CheckRange(uint64_t offset, uint64_t length) {
  if (length > UINT64_MAX - offset) {
    return Errno(EINVAL, absl::StrFormat("range %u+%u overflows", offset, length));
  }
  if (offset + length > kMaxObjectSize) {
    return Errno(EFBIG, absl::StrFormat("range %u+%u past the largest object "
                                        "size %u",
                                        offset, length, kMaxObjectSize));
  }
  return absl::OkStatus();
}

}  // namespace

ObjectStore::ObjectStore(std::string data_dir, storage::Disk* disk,
                         std::unique_ptr<storage::KvStore> kv,
                         size_t max_open_files)
    : data_dir_(std::move(data_dir)),
      objects_dir_(data_dir_ + "/objects"),
      disk_(disk),
      kv_(std::move(kv)),
      per_shard_files_(std::max<size_t>(1, max_open_files / kShards)) {}

ObjectStore::~ObjectStore() {
  if (!closed_.load()) {
    absl::Status s = Close();
    if (!s.ok()) spdlog::error("closing object store: {}", s.ToString());
  }
}

absl::StatusOr<std::unique_ptr<ObjectStore>> ObjectStore::Open(
    const ObjectStoreOptions& options) {
  if (options.data_dir.empty()) return Errno(EINVAL, "empty data dir");
  const std::string& dir = options.data_dir;
  storage::Disk* disk =
      options.disk != nullptr ? options.disk : storage::ServerDisk();
  if (absl::Status s = disk->MakeDir(dir); !s.ok()) return s;
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return SysError(errno, "access", dir);
  }
  const std::string objects = dir + "/objects";
  bool fresh = access(objects.c_str(), F_OK) != 0;
  if (absl::Status s = disk->MakeDir(objects); !s.ok()) return s;
  for (size_t i = 0; i < kSubdirs; ++i) {
    if (absl::Status s = disk->MakeDir(absl::StrFormat("%s/%02x", objects, i));
        !s.ok()) {
      return s;
    }
  }
  if (fresh) {
    if (absl::Status s = disk->SyncDir(objects); !s.ok()) return s;
    if (absl::Status s = disk->SyncDir(dir); !s.ok()) return s;
  }
  auto kv = storage::OpenRocksKv(dir + "/db", {.disk = disk});
  if (!kv.ok()) return kv.status();
  std::unique_ptr<ObjectStore> store(
      new ObjectStore(dir, disk, std::move(*kv), options.max_open_files));
  if (options.capacity_bytes > 0) {
    store->capacity_ = std::make_unique<Capacity>(options.capacity_bytes);
  }
  if (absl::Status s = store->Load(); !s.ok()) return s;
  // A previous instance killed with -9 may have created object files whose
  // directory entries it never synced (page cache only): the first Sync of
  // an object in each subdirectory after a start syncs the directory too,
  // so what a client's fsync acknowledges is on disk, name included.
  for (auto& d : store->subdir_sync_) d.created.store(1);
  return store;
}

absl::Status ObjectStore::Load() {
  auto super = kv_->Get(kSuperKey);
  if (!super.ok()) return super.status();
  if (!super->has_value()) {
    storage::WriteBatch batch;
    batch.Put(kSuperKey, absl::StrCat("stripefs-oss format=", kFormatVersion,
                                      " release=", kRelease));
    if (absl::Status s = kv_->Write(batch, {.sync = true}); !s.ok()) return s;
  }
  auto last = kv_->Get(kLastOidKey);
  if (!last.ok()) return last.status();
  uint64_t last_oid = 0;
  if (last->has_value()) {
    if ((*last)->size() != 8) return Errno(EIO, "corrupt last_oid record");
    last_oid = storage::DecodeBE64(**last);
  }
  {
    absl::MutexLock l(&precreate_mu_);
    last_oid_ = last_oid;
  }
  uint64_t count = 0;
  auto it = kv_->NewIterator();
  for (it->Seek(std::string(1, kObjectPrefix));
       it->Valid() && !it->key().empty() && it->key()[0] == kObjectPrefix;
       it->Next()) {
    ++count;
  }
  if (absl::Status s = it->status(); !s.ok()) return s;
  objects_.store(count);
  spdlog::info("object store {}: {} objects, last_oid {}", data_dir_, count,
               last_oid);
  return LoadSizes();
}

absl::Status ObjectStore::LoadSizes() {
  if (capacity_ == nullptr) return absl::OkStatus();
  auto it = kv_->NewIterator();
  for (it->Seek(std::string(1, kObjectPrefix));
       it->Valid() && !it->key().empty() && it->key()[0] == kObjectPrefix;
       it->Next()) {
    if (it->key().size() != 9) continue;
    const uint64_t oid = storage::DecodeBE64(it->key().substr(1));
    auto file = Acquire(oid, /*create=*/false);
    if (!file.ok()) return file.status();
    if (*file == nullptr) continue;  // no data yet
    auto st = (*file)->Stat();
    if (!st.ok()) return About(oid, st.status());
    capacity_->Loaded(oid, st->size);
  }
  if (absl::Status s = it->status(); !s.ok()) return s;
  spdlog::info("object store {}: capacity {} bytes, {} in objects", data_dir_,
               capacity_->limit(), capacity_->used());
  return absl::OkStatus();
}

std::string ObjectStore::SubdirName(uint64_t oid) const {
  return wide_dirs_.load() ? absl::StrFormat("%03x", oid % kWideSubdirs)
                           : absl::StrFormat("%02x", oid % kSubdirs);
}

std::string ObjectStore::PathOf(uint64_t oid) const {
  return absl::StrCat(objects_dir_, "/", SubdirName(oid), "/", oid);
}

absl::Status ObjectStore::UseWideDirs() {
  for (size_t i = 0; i < kWideSubdirs; ++i) {
    if (absl::Status s =
            disk_->MakeDir(absl::StrFormat("%s/%03x", objects_dir_, i));
        !s.ok()) {
      return s;
    }
  }
  uint64_t moved = 0;
  std::vector<std::string> emptied;  // old subdirectories files left
  for (size_t i = 0; i < kSubdirs; ++i) {
    const std::string old_sub = absl::StrFormat("%s/%02x", objects_dir_, i);
    auto names = disk_->List(old_sub);
    if (!names.ok()) return names.status();
    size_t here = 0;
    for (const std::string& name : *names) {
      uint64_t oid = 0;
      if (!absl::SimpleAtoi(name, &oid)) continue;
      const size_t to_index = oid % kWideSubdirs;
      if (absl::Status s = disk_->Rename(
              absl::StrCat(old_sub, "/", name),
              absl::StrFormat("%s/%03x/%u", objects_dir_, to_index, oid));
          !s.ok()) {
        return s;
      }
      subdir_sync_[to_index].created.fetch_add(1);
      ++moved;
      ++here;
    }
    if (here > 0) emptied.push_back(old_sub);
  }
  wide_dirs_.store(true);
  // Durable: first the new entries, then the old ones' removal, so that a
  // crash never loses a file (the next start finishes the moves).
  for (size_t i = 0; i < kWideSubdirs; ++i) {
    if (absl::Status s = SyncSubdir(i); !s.ok()) return s;
  }
  for (const std::string& sub : emptied) {
    if (absl::Status s = disk_->SyncDir(sub); !s.ok()) return s;
  }
  if (absl::Status s = disk_->SyncDir(objects_dir_); !s.ok()) return s;
  spdlog::info("object store {}: wide_dirs ({} subdirectories), {} object "
               "files moved",
               data_dir_, kWideSubdirs, moved);
  return absl::OkStatus();
}

std::string ObjectStore::ObjectKey(uint64_t oid) {
  std::string key(1, kObjectPrefix);
  storage::AppendBE64(&key, oid);
  return key;
}

absl::Status ObjectStore::CheckOpen() const {
  if (closed_.load(std::memory_order_relaxed)) {
    return Errno(ESHUTDOWN, "object store is closed");
  }
  return absl::OkStatus();
}

absl::Status ObjectStore::CheckWritable(uint64_t oid) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  if (read_only_.load()) {
    return Errno(EROFS, absl::StrCat("object store is read-only (forced "
                                     "failover), object ",
                                     oid));
  }
  return absl::OkStatus();
}

void ObjectStore::SetReadOnly(bool read_only) {
  read_only_.store(read_only);
  kv_->SetReadOnly(read_only);
}

uint64_t ObjectStore::last_oid() const {
  absl::MutexLock l(&precreate_mu_);
  return last_oid_;
}

ObjectStore::FilePtr ObjectStore::Lookup(Shard& shard, uint64_t oid) {
  absl::MutexLock l(&shard.mu);
  auto it = shard.map.find(oid);
  if (it == shard.map.end()) return nullptr;
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return it->second->second;
}

void ObjectStore::Insert(Shard& shard, uint64_t oid, FilePtr file) {
  FilePtr evicted;  // closed after the lock is dropped
  absl::MutexLock l(&shard.mu);
  shard.lru.emplace_front(oid, std::move(file));
  shard.map[oid] = shard.lru.begin();
  if (shard.lru.size() > per_shard_files_) {
    auto& last = shard.lru.back();
    evicted = std::move(last.second);
    shard.map.erase(last.first);
    shard.lru.pop_back();
  }
  // `evicted` is destroyed after `l` (declared before it).
}

absl::StatusOr<ObjectStore::FilePtr> ObjectStore::Acquire(uint64_t oid,
                                                          bool create) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  Shard& shard = ShardFor(oid);
  if (FilePtr f = Lookup(shard, oid)) return f;

  absl::MutexLock life(&shard.life_mu);
  if (FilePtr f = Lookup(shard, oid)) return f;  // opened meanwhile
  auto rec = kv_->Get(ObjectKey(oid));
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) {
    return Errno(ENOENT, absl::StrCat("object ", oid, " does not exist"));
  }
  const std::string path = PathOf(oid);
  auto f = disk_->Open(path, /*create=*/false);
  if (!f.ok() && ToErrno(f.status()) == ENOENT) {
    if (!create) return FilePtr();
    // life_mu is held: nobody else creates this object's file meanwhile.
    bool created = false;
    f = disk_->Open(path, /*create=*/true, &created);
    if (f.ok() && created) subdir_sync_[SubdirIndex(oid)].created.fetch_add(1);
  }
  if (!f.ok()) return f.status();
  FilePtr file(std::move(*f));
  Insert(shard, oid, file);
  return file;
}

absl::Status ObjectStore::SyncSubdir(size_t index) {
  SubdirSync& d = subdir_sync_[index];
  const uint64_t want = d.created.load();
  if (d.synced.load() >= want) return absl::OkStatus();
  absl::MutexLock l(&d.mu);
  // A sync that started after our creates may have finished meanwhile.
  if (d.synced.load() >= want) return absl::OkStatus();
  const uint64_t covers = d.created.load();
  const std::string dir =
      wide_dirs_.load() ? absl::StrFormat("%s/%03x", objects_dir_, index)
                        : absl::StrFormat("%s/%02x", objects_dir_, index);
  if (absl::Status s = disk_->SyncDir(dir); !s.ok()) return s;
  d.synced.store(covers);
  return absl::OkStatus();
}

absl::Status ObjectStore::SyncFile(uint64_t oid, storage::DiskFile& file) {
  if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  if (absl::Status s = file.DataSync(); !s.ok()) return About(oid, s);
  return SyncSubdir(SubdirIndex(oid));
}

absl::StatusOr<uint64_t> ObjectStore::Precreate(uint32_t count) {
  if (absl::Status s = CheckWritable(0); !s.ok()) return s;
  if (count == 0 || count > kMaxPrecreate) {
    return Errno(EINVAL, absl::StrCat("precreate count ", count,
                                      " outside [1, ", kMaxPrecreate, "]"));
  }
  absl::MutexLock l(&precreate_mu_);
  const uint64_t first = last_oid_ + 1;
  storage::WriteBatch batch;
  for (uint64_t oid = first; oid < first + count; ++oid) {
    batch.Put(ObjectKey(oid), "");
  }
  std::string last;
  storage::AppendBE64(&last, first + count - 1);
  batch.Put(kLastOidKey, last);
  if (absl::Status s = kv_->Write(batch, {.sync = true}); !s.ok()) return s;
  last_oid_ = first + count - 1;
  objects_.fetch_add(count);
  return first;
}

absl::StatusOr<uint64_t> ObjectStore::Write(uint64_t oid, uint64_t offset,
                                            std::string_view data, bool sync) {
  if (data.size() > kMaxIoBytes) {
    return Errno(EINVAL, absl::StrCat("write of ", data.size(),
                                      " bytes exceeds ", kMaxIoBytes));
  }
  if (absl::Status s = CheckRange(offset, data.size()); !s.ok()) return s;
  if (absl::Status s = fault::Hit("oss.before_write"); !s.ok()) return s;
  if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  auto file = Acquire(oid, /*create=*/true);
  if (!file.ok()) return file.status();
  if (capacity_ != nullptr) {
    if (absl::Status s = capacity_->Charge(oid, offset + data.size());
        !s.ok()) {
      return s;
    }
  }
  storage::DiskFile& f = **file;
  // The data goes out in two halves with the fault point oss.mid_write
  // between them, so a crash there leaves a torn (partial) write on disk,
  // as a power cut in the middle of a large write would.
  const size_t half = data.size() / 2;
  if (half > 0) {
    if (absl::Status s = f.PWrite(data.substr(0, half), offset); !s.ok()) {
      return About(oid, s);
    }
    if (absl::Status s = fault::Hit("oss.mid_write"); !s.ok()) return s;
    // A device turned read-only meanwhile refuses the second half.
    if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  }
  if (absl::Status s = f.PWrite(data.substr(half), offset + half); !s.ok()) {
    return About(oid, s);
  }
  if (sync) {
    if (absl::Status s = fault::Hit("oss.before_sync"); !s.ok()) return s;
    if (absl::Status s = SyncFile(oid, f); !s.ok()) return s;
  }
  auto st = f.Stat();
  if (!st.ok()) return About(oid, st.status());
  return st->size;
}

absl::StatusOr<uint64_t> ObjectStore::Read(uint64_t oid, uint64_t offset,
                                           uint64_t length, std::string* out) {
  out->clear();
  if (length > kMaxIoBytes) {
    return Errno(EINVAL, absl::StrCat("read of ", length, " bytes exceeds ",
                                      kMaxIoBytes));
  }
  if (length > UINT64_MAX - offset || offset > kMaxObjectSize) {
    return Errno(EINVAL, absl::StrFormat("bad read range %u+%u", offset, length));
  }
  auto file = Acquire(oid, /*create=*/false);
  if (!file.ok()) return file.status();
  if (*file == nullptr) return uint64_t{0};  // exists, never written
  auto st = (*file)->Stat();
  if (!st.ok()) return About(oid, st.status());
  const uint64_t size = st->size;
  if (offset >= size || length == 0) return size;
  const uint64_t want = std::min(length, size - offset);
  out->resize(want);
  auto n = (*file)->PRead(out->data(), want, offset);
  if (!n.ok()) {
    out->clear();
    return About(oid, n.status());
  }
  // Fewer bytes: shrunk by a concurrent truncate, the object now ends here.
  out->resize(*n);
  return size;
}

absl::Status ObjectStore::Truncate(uint64_t oid, uint64_t size) {
  std::optional<ObjectLock> held;
  if (locks_ != nullptr) {
    absl::StatusOr<ObjectLock> l = locks_->ForTruncate(oid, size);
    if (!l.ok()) return l.status();
    held.emplace(std::move(*l));
  }
  if (size > kMaxObjectSize) {
    return Errno(EFBIG, absl::StrCat("size ", size, " past the largest object"));
  }
  if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  auto file = Acquire(oid, /*create=*/size > 0);
  if (!file.ok()) return file.status();
  if (*file == nullptr) return absl::OkStatus();  // empty stays empty
  if (absl::Status s = (*file)->Truncate(size); !s.ok()) return About(oid, s);
  if (capacity_ != nullptr) capacity_->Truncated(oid, size);
  return absl::OkStatus();
}

absl::Status ObjectStore::Punch(uint64_t oid, uint64_t offset,
                                uint64_t length) {
  std::optional<ObjectLock> held;
  if (locks_ != nullptr) {
    absl::StatusOr<ObjectLock> l = locks_->ForPunch(oid, offset, length);
    if (!l.ok()) return l.status();
    held.emplace(std::move(*l));
  }
  if (length > UINT64_MAX - offset) {
    return Errno(EINVAL, absl::StrFormat("punch range %u+%u overflows", offset,
                                         length));
  }
  if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  auto file = Acquire(oid, /*create=*/false);
  if (!file.ok()) return file.status();
  if (*file == nullptr || length == 0 || offset >= kMaxObjectSize) {
    return absl::OkStatus();  // nothing allocated there
  }
  length = std::min(length, kMaxObjectSize - offset);
  return About(oid, (*file)->Punch(offset, length));
}

absl::Status ObjectStore::Destroy(const std::vector<uint64_t>& oids) {
  std::vector<ObjectLock> held;
  if (locks_ != nullptr && oids.size() <= kMaxLockedDestroy) {
    for (uint64_t oid : oids) {
      absl::StatusOr<ObjectLock> l = locks_->ForDestroy(oid);
      if (!l.ok()) return l.status();
      held.push_back(std::move(*l));
    }
  }
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  for (uint64_t oid : oids) {
    if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
    Shard& shard = ShardFor(oid);
    FilePtr dropped;  // closed after the locks are released
    absl::MutexLock life(&shard.life_mu);
    {
      absl::MutexLock l(&shard.mu);
      auto it = shard.map.find(oid);
      if (it != shard.map.end()) {
        dropped = std::move(it->second->second);
        shard.lru.erase(it->second);
        shard.map.erase(it);
      }
    }
    const std::string key = ObjectKey(oid);
    auto rec = kv_->Get(key);
    if (!rec.ok()) return rec.status();
    // Unlink first, then drop the record: a crash in between leaves an
    // existing, empty object that a repeated Destroy removes.
    if (absl::Status s = disk_->Unlink(PathOf(oid));
        !s.ok() && ToErrno(s) != ENOENT) {
      return s;
    }
    if (capacity_ != nullptr) capacity_->Destroyed(oid);
    if (!rec->has_value()) continue;
    storage::WriteBatch batch;
    batch.Delete(key);
    if (absl::Status s = kv_->Write(batch); !s.ok()) return s;
    objects_.fetch_sub(1);
  }
  // Destroyed, not yet acknowledged: the MDS destroys them again.
  return fault::Hit("oss.after_destroy");
}

absl::Status ObjectStore::Sync(const std::vector<uint64_t>& oids) {
  if (absl::Status s = CheckWritable(0); !s.ok()) return s;
  if (absl::Status s = fault::Hit("oss.before_sync"); !s.ok()) return s;
  if (oids.empty()) return SyncAll();
  for (uint64_t oid : oids) {
    auto file = Acquire(oid, /*create=*/false);
    if (!file.ok()) return file.status();
    if (*file == nullptr) continue;  // no data to sync
    if (absl::Status s = SyncFile(oid, **file); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ObjectStore::SyncAll() {
  std::array<uint64_t, kWideSubdirs> covers;
  for (size_t i = 0; i < kWideSubdirs; ++i) {
    covers[i] = subdir_sync_[i].created.load();
  }
  if (absl::Status s = disk_->SyncAll(objects_dir_); !s.ok()) return s;
  for (size_t i = 0; i < kWideSubdirs; ++i) {
    absl::MutexLock l(&subdir_sync_[i].mu);
    if (subdir_sync_[i].synced.load() < covers[i]) {
      subdir_sync_[i].synced.store(covers[i]);
    }
  }
  return kv_->Sync();
}

absl::StatusOr<ObjectAttr> ObjectStore::GetAttr(uint64_t oid) {
  auto file = Acquire(oid, /*create=*/false);
  if (!file.ok()) return file.status();
  if (*file == nullptr) return ObjectAttr{};  // exists, never written
  auto st = (*file)->Stat();
  if (!st.ok()) return About(oid, st.status());
  return *st;
}

absl::StatusOr<StoreStatfs> ObjectStore::Statfs() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  auto space = disk_->Space(objects_dir_);
  if (!space.ok()) return space.status();
  StoreStatfs out;
  static_cast<storage::DiskSpace&>(out) =
      capacity_ != nullptr ? capacity_->Apply(*space) : *space;
  out.objects = objects_.load();
  return out;
}

absl::Status ObjectStore::Close() {
  if (closed_.load()) return absl::OkStatus();
  // A clean stop leaves every acknowledged byte on stable storage, not
  // just the index (a forced failover's read-only store cannot sync).
  absl::Status synced =
      read_only_.load() ? absl::OkStatus() : disk_->SyncAll(objects_dir_);
  if (closed_.exchange(true)) return absl::OkStatus();
  for (Shard& shard : shards_) {
    std::list<std::pair<uint64_t, FilePtr>> files;
    {
      absl::MutexLock l(&shard.mu);
      files.swap(shard.lru);
      shard.map.clear();
    }
  }
  absl::Status s = kv_->Sync();
  return synced.ok() ? s : synced;
}

}  // namespace stripefs::oss
