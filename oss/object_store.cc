#include "oss/object_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return SysError(errno, "mkdir", path);
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return SysError(errno, "stat", path);
  if (!S_ISDIR(st.st_mode)) return SysError(ENOTDIR, "data dir", path);
  return absl::OkStatus();
}

absl::Status FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError(errno, "open", path);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return SysError(err, "fsync", path);
  return absl::OkStatus();
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

ObjectStore::ObjectFile::~ObjectFile() {
  if (close(fd) != 0) {
    spdlog::warn("close of object fd {} failed: {}", fd, strerror(errno));
  }
}

ObjectStore::ObjectStore(std::string data_dir, int objects_fd,
                         std::unique_ptr<storage::KvStore> kv,
                         size_t max_open_files)
    : data_dir_(std::move(data_dir)),
      objects_fd_(objects_fd),
      kv_(std::move(kv)),
      per_shard_files_(std::max<size_t>(1, max_open_files / kShards)) {}

ObjectStore::~ObjectStore() {
  if (!closed_.load()) {
    absl::Status s = Close();
    if (!s.ok()) spdlog::error("closing object store: {}", s.ToString());
  }
  close(objects_fd_);
}

absl::StatusOr<std::unique_ptr<ObjectStore>> ObjectStore::Open(
    const ObjectStoreOptions& options) {
  if (options.data_dir.empty()) return Errno(EINVAL, "empty data dir");
  const std::string& dir = options.data_dir;
  if (absl::Status s = MakeDir(dir); !s.ok()) return s;
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return SysError(errno, "access", dir);
  }
  const std::string objects = dir + "/objects";
  bool fresh = access(objects.c_str(), F_OK) != 0;
  if (absl::Status s = MakeDir(objects); !s.ok()) return s;
  for (size_t i = 0; i < kSubdirs; ++i) {
    if (absl::Status s = MakeDir(absl::StrFormat("%s/%02x", objects, i));
        !s.ok()) {
      return s;
    }
  }
  if (fresh) {
    if (absl::Status s = FsyncPath(objects); !s.ok()) return s;
    if (absl::Status s = FsyncPath(dir); !s.ok()) return s;
  }
  auto kv = storage::OpenRocksKv(dir + "/db");
  if (!kv.ok()) return kv.status();
  int fd = open(objects.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError(errno, "open", objects);
  std::unique_ptr<ObjectStore> store(
      new ObjectStore(dir, fd, std::move(*kv), options.max_open_files));
  if (absl::Status s = store->Load(); !s.ok()) return s;
  // A previous instance killed with -9 may have created object files whose
  // directory entries it never synced (page cache only): the first Sync of
  // an object in each subdirectory after a start syncs the directory too,
  // so what a client's fsync acknowledges is on disk, name included.
  for (auto& d : store->subdir_dirty_) d.store(true);
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
  return absl::OkStatus();
}

std::string ObjectStore::SubdirName(uint64_t oid) const {
  return wide_dirs_.load() ? absl::StrFormat("%03x", oid % kWideSubdirs)
                           : absl::StrFormat("%02x", oid % kSubdirs);
}

std::string ObjectStore::RelPath(uint64_t oid) const {
  return absl::StrCat(SubdirName(oid), "/", oid);
}

absl::Status ObjectStore::UseWideDirs() {
  const std::string objects = data_dir_ + "/objects";
  for (size_t i = 0; i < kWideSubdirs; ++i) {
    if (absl::Status s = MakeDir(absl::StrFormat("%s/%03x", objects, i));
        !s.ok()) {
      return s;
    }
  }
  uint64_t moved = 0;
  std::vector<std::string> emptied;  // old subdirectories files left
  for (size_t i = 0; i < kSubdirs; ++i) {
    const std::string old_sub = absl::StrFormat("%02x", i);
    int dfd = openat(objects_fd_, old_sub.c_str(),
                     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return SysError(errno, "open", old_sub);
    DIR* d = fdopendir(dfd);
    if (d == nullptr) {
      int err = errno;
      close(dfd);
      return SysError(err, "fdopendir", old_sub);
    }
    // Names first, then the moves (not while reading the directory).
    std::vector<uint64_t> oids;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      uint64_t oid = 0;
      if (absl::SimpleAtoi(e->d_name, &oid)) oids.push_back(oid);
      errno = 0;
    }
    absl::Status st;
    if (errno != 0) st = SysError(errno, "readdir", old_sub);
    for (size_t k = 0; st.ok() && k < oids.size(); ++k) {
      const uint64_t oid = oids[k];
      const std::string from = absl::StrCat(oid);
      const std::string to =
          absl::StrFormat("%03x/%u", oid % kWideSubdirs, oid);
      if (renameat(dfd, from.c_str(), objects_fd_, to.c_str()) != 0) {
        st = SysError(errno, "rename object file to", to);
        break;
      }
      subdir_dirty_[oid % kWideSubdirs].store(true);
      ++moved;
    }
    closedir(d);  // closes dfd
    if (!st.ok()) return st;
    if (!oids.empty()) emptied.push_back(old_sub);
  }
  wide_dirs_.store(true);
  // Durable: first the new entries, then the old ones' removal, so that a
  // crash never loses a file (the next start finishes the moves).
  for (size_t i = 0; i < kWideSubdirs; ++i) {
    if (absl::Status s = SyncSubdir(i); !s.ok()) return s;
  }
  for (const std::string& sub : emptied) {
    if (absl::Status s = FsyncPath(absl::StrCat(objects, "/", sub)); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = FsyncPath(objects); !s.ok()) return s;
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
  const std::string rel = RelPath(oid);
  int fd = openat(objects_fd_, rel.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (!create) return FilePtr();
    // life_mu is held: nobody else creates this object's file meanwhile.
    fd = openat(objects_fd_, rel.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) subdir_dirty_[SubdirIndex(oid)].store(true);
  }
  if (fd < 0) return SysError(errno, "open object", rel);
  auto file = std::make_shared<ObjectFile>(fd);
  Insert(shard, oid, file);
  return file;
}

absl::Status ObjectStore::SyncSubdir(uint64_t oid) {
  auto& dirty = subdir_dirty_[SubdirIndex(oid)];
  if (!dirty.exchange(false)) return absl::OkStatus();
  const std::string sub = SubdirName(oid);
  int fd = openat(objects_fd_, sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    dirty.store(true);
    return SysError(errno, "open", sub);
  }
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) {
    dirty.store(true);
    return SysError(err, "fsync", sub);
  }
  return absl::OkStatus();
}

absl::Status ObjectStore::SyncFile(uint64_t oid, int fd) {
  if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  if (fdatasync(fd) != 0) {
    return SysError(errno, "fdatasync object", absl::StrCat(oid));
  }
  return SyncSubdir(oid);
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
  const int fd = (*file)->fd;
  // The data goes out in two halves with the fault point oss.mid_write
  // between them, so a crash there leaves a torn (partial) write on disk,
  // as a power cut in the middle of a large write would.
  const size_t half = data.size() / 2;
  size_t done = 0;
  bool mid_passed = half == 0;
  while (done < data.size()) {
    if (!mid_passed && done >= half) {
      mid_passed = true;
      if (absl::Status s = fault::Hit("oss.mid_write"); !s.ok()) return s;
      // A device turned read-only meanwhile refuses the second half.
      if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
    }
    const size_t end = mid_passed ? data.size() : half;
    ssize_t n = pwrite(fd, data.data() + done, end - done,
                       static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError(errno, "write object", absl::StrCat(oid));
    }
    if (n == 0) return Errno(EIO, absl::StrCat("write object ", oid, ": 0"));
    done += static_cast<size_t>(n);
  }
  if (sync) {
    if (absl::Status s = fault::Hit("oss.before_sync"); !s.ok()) return s;
    if (absl::Status s = SyncFile(oid, fd); !s.ok()) return s;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return SysError(errno, "stat object", absl::StrCat(oid));
  return static_cast<uint64_t>(st.st_size);
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
  const int fd = (*file)->fd;
  struct stat st;
  if (fstat(fd, &st) != 0) return SysError(errno, "stat object", absl::StrCat(oid));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (offset >= size || length == 0) return size;
  const uint64_t want = std::min(length, size - offset);
  out->resize(want);
  size_t done = 0;
  while (done < want) {
    ssize_t n = pread(fd, out->data() + done, want - done,
                      static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      out->clear();
      return SysError(errno, "read object", absl::StrCat(oid));
    }
    if (n == 0) {
      // Shrunk by a concurrent truncate: the object now ends here.
      out->resize(done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return size;
}

absl::Status ObjectStore::Truncate(uint64_t oid, uint64_t size) {
  if (size > kMaxObjectSize) {
    return Errno(EFBIG, absl::StrCat("size ", size, " past the largest object"));
  }
  if (absl::Status s = CheckWritable(oid); !s.ok()) return s;
  auto file = Acquire(oid, /*create=*/size > 0);
  if (!file.ok()) return file.status();
  if (*file == nullptr) return absl::OkStatus();  // empty stays empty
  if (ftruncate((*file)->fd, static_cast<off_t>(size)) != 0) {
    return SysError(errno, "truncate object", absl::StrCat(oid));
  }
  return absl::OkStatus();
}

absl::Status ObjectStore::Punch(uint64_t oid, uint64_t offset,
                                uint64_t length) {
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
  if (fallocate((*file)->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
    return SysError(errno, "punch object", absl::StrCat(oid));
  }
  return absl::OkStatus();
}

absl::Status ObjectStore::Destroy(const std::vector<uint64_t>& oids) {
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
    const std::string rel = RelPath(oid);
    if (unlinkat(objects_fd_, rel.c_str(), 0) != 0 && errno != ENOENT) {
      return SysError(errno, "unlink object", rel);
    }
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
  if (oids.empty()) {
    for (auto& d : subdir_dirty_) d.store(false);
    if (syncfs(objects_fd_) != 0) {
      int err = errno;
      for (auto& d : subdir_dirty_) d.store(true);
      return SysError(err, "syncfs", data_dir_);
    }
    return kv_->Sync();
  }
  for (uint64_t oid : oids) {
    auto file = Acquire(oid, /*create=*/false);
    if (!file.ok()) return file.status();
    if (*file == nullptr) continue;  // no data to sync
    if (absl::Status s = SyncFile(oid, (*file)->fd); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<ObjectAttr> ObjectStore::GetAttr(uint64_t oid) {
  auto file = Acquire(oid, /*create=*/false);
  if (!file.ok()) return file.status();
  ObjectAttr attr;
  if (*file == nullptr) return attr;
  struct stat st;
  if (fstat((*file)->fd, &st) != 0) {
    return SysError(errno, "stat object", absl::StrCat(oid));
  }
  attr.size = static_cast<uint64_t>(st.st_size);
  attr.blocks = static_cast<uint64_t>(st.st_blocks);
  return attr;
}

absl::StatusOr<StoreStatfs> ObjectStore::Statfs() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  struct statvfs v;
  if (fstatvfs(objects_fd_, &v) != 0) {
    return SysError(errno, "statvfs", data_dir_);
  }
  StoreStatfs out;
  out.total_bytes = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  out.free_bytes = static_cast<uint64_t>(v.f_bfree) * v.f_frsize;
  out.avail_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  out.objects = objects_.load();
  return out;
}

absl::Status ObjectStore::Close() {
  if (closed_.exchange(true)) return absl::OkStatus();
  for (Shard& shard : shards_) {
    std::list<std::pair<uint64_t, FilePtr>> files;
    {
      absl::MutexLock l(&shard.mu);
      files.swap(shard.lru);
      shard.map.clear();
    }
  }
  return kv_->Sync();
}

}  // namespace stripefs::oss
