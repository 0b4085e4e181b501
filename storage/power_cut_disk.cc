#include "storage/power_cut_disk.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/errors.h"
#include "rocksdb/file_system.h"

namespace stripefs::storage {
namespace {

// "a//b/" -> "a/b": the same file under the same key however it is named.
std::string Clean(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

absl::Status PowerIsOff(absl::string_view what) {
  return Errno(EIO, absl::StrCat(what, ": the power is off"));
}

rocksdb::IOStatus RocksOff() {
  return rocksdb::IOStatus::IOError("the power is off");
}

uint64_t SizeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

struct PowerCutDisk::State {
  struct Tracked {
    bool rocks = false;         // append-only RocksDB file (else object file)
    bool name_durable = true;   // its directory was synced since creation
    bool dirty = false;         // object file: written since its snapshot
    std::string snapshot;       // object file: content at the last sync
    uint64_t size = 0;          // RocksDB file: bytes appended
    uint64_t synced_size = 0;   // RocksDB file: bytes synced
  };
  absl::Mutex mu;
  bool on ABSL_GUARDED_BY(mu) = true;
  std::map<std::string, Tracked> files ABSL_GUARDED_BY(mu);

  void NamesDurable(const std::string& dir) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& [path, t] : files) {
      if (Parent(path) == dir) t.name_durable = true;
    }
  }
};

namespace {

using State = PowerCutDisk::State;

absl::StatusOr<std::string> ReadAll(DiskFile& f) {
  auto st = f.Stat();
  if (!st.ok()) return st.status();
  std::string data(st->size, '\0');
  auto n = f.PRead(data.data(), data.size(), 0);
  if (!n.ok()) return n.status();
  data.resize(*n);
  return data;
}

class PcFile : public DiskFile {
 public:
  PcFile(std::unique_ptr<DiskFile> base, std::string path,
         std::shared_ptr<State> state)
      : base_(std::move(base)), path_(std::move(path)), state_(std::move(state)) {}

  absl::Status PWrite(std::string_view data, uint64_t offset) override {
    return Change("write", [&] { return base_->PWrite(data, offset); });
  }
  absl::StatusOr<size_t> PRead(char* buf, size_t n, uint64_t offset) override {
    return base_->PRead(buf, n, offset);
  }
  absl::StatusOr<FileStat> Stat() override { return base_->Stat(); }
  absl::Status Truncate(uint64_t size) override {
    return Change("truncate", [&] { return base_->Truncate(size); });
  }
  absl::Status Punch(uint64_t offset, uint64_t length) override {
    return Change("punch", [&] { return base_->Punch(offset, length); });
  }
  absl::Status DataSync() override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return PowerIsOff(absl::StrCat("fdatasync ", path_));
    if (absl::Status s = base_->DataSync(); !s.ok()) return s;
    auto data = ReadAll(*base_);
    if (!data.ok()) return data.status();
    auto it = state_->files.find(path_);
    if (it != state_->files.end()) {  // else unlinked meanwhile
      it->second.snapshot = std::move(*data);
      it->second.dirty = false;
    }
    return absl::OkStatus();
  }

 private:
  template <typename Fn>
  absl::Status Change(absl::string_view what, Fn fn) {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return PowerIsOff(absl::StrCat(what, " ", path_));
    auto it = state_->files.find(path_);
    if (it != state_->files.end()) it->second.dirty = true;
    return fn();
  }

  const std::unique_ptr<DiskFile> base_;
  const std::string path_;
  const std::shared_ptr<State> state_;
};

class PcWritable : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  PcWritable(std::unique_ptr<rocksdb::FSWritableFile> t, std::string path,
             std::shared_ptr<State> state)
      : FSWritableFileOwnerWrapper(std::move(t)),
        path_(std::move(path)),
        state_(std::move(state)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    return Grow(data.size(), [&] { return target()->Append(data, o, dbg); });
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& v,
                           rocksdb::IODebugContext* dbg) override {
    return Grow(data.size(), [&] { return target()->Append(data, o, v, dbg); });
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& o,
                                     rocksdb::IODebugContext* dbg) override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) {
      auto& t = state_->files[path_];
      t.size = std::max<uint64_t>(t.size, offset + data.size());
    }
    return s;
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = target()->Truncate(size, o, dbg);
    if (s.ok()) state_->files[path_].size = size;
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o,
                         rocksdb::IODebugContext* dbg) override {
    return Synced([&] { return target()->Sync(o, dbg); });
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o,
                          rocksdb::IODebugContext* dbg) override {
    return Synced([&] { return target()->Fsync(o, dbg); });
  }

 private:
  template <typename Fn>
  rocksdb::IOStatus Grow(size_t n, Fn fn) {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = fn();
    if (s.ok()) state_->files[path_].size += n;
    return s;
  }
  template <typename Fn>
  rocksdb::IOStatus Synced(Fn fn) {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = fn();
    if (s.ok()) {
      auto& t = state_->files[path_];
      t.synced_size = t.size;
    }
    return s;
  }

  const std::string path_;
  const std::shared_ptr<State> state_;
};

class PcDirectory : public rocksdb::FSDirectoryWrapper {
 public:
  PcDirectory(std::unique_ptr<rocksdb::FSDirectory> t, std::string path,
              std::shared_ptr<State> state)
      : FSDirectoryWrapper(std::move(t)),
        path_(std::move(path)),
        state_(std::move(state)) {}
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o,
                          rocksdb::IODebugContext* dbg) override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) state_->NamesDurable(path_);
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(
      const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
      const rocksdb::DirFsyncOptions& d) override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
    if (s.ok()) state_->NamesDurable(path_);
    return s;
  }

 private:
  const std::string path_;
  const std::shared_ptr<State> state_;
};

class PcRocksFs : public rocksdb::FileSystemWrapper {
 public:
  explicit PcRocksFs(std::shared_ptr<State> state)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        state_(std::move(state)) {}
  const char* Name() const override { return "StripefsPowerCutFs"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& f, const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSWritableFile>* r,
      rocksdb::IODebugContext* dbg) override {
    const std::string path = Clean(f);
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    const bool existed = access(path.c_str(), F_OK) == 0;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, dbg);
    if (!s.ok()) return s;
    State::Tracked t;
    t.rocks = true;
    t.name_durable = existed;
    state_->files[path] = t;
    r->reset(new PcWritable(std::move(*r), path, state_));
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& f, const rocksdb::FileOptions& o,
      std::unique_ptr<rocksdb::FSWritableFile>* r,
      rocksdb::IODebugContext* dbg) override {
    const std::string path = Clean(f);
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, r, dbg);
    if (!s.ok()) return s;
    if (!state_->files.contains(path)) {
      State::Tracked t;
      t.rocks = true;
      t.size = t.synced_size = SizeOf(path);
      state_->files[path] = t;
    }
    r->reset(new PcWritable(std::move(*r), path, state_));
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(
      const std::string&, const std::string&, const rocksdb::FileOptions&,
      std::unique_ptr<rocksdb::FSWritableFile>*,
      rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("PowerCutDisk: no WAL recycling");
  }
  rocksdb::IOStatus NewDirectory(const std::string& name,
                                 const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewDirectory(name, o, r, dbg);
    if (s.ok()) r->reset(new PcDirectory(std::move(*r), Clean(name), state_));
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = target()->DeleteFile(f, o, dbg);
    if (s.ok()) state_->files.erase(Clean(f));
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return RocksOff();
    rocksdb::IOStatus s = target()->RenameFile(src, dst, o, dbg);
    if (!s.ok()) return s;
    auto it = state_->files.find(Clean(src));
    if (it != state_->files.end()) {
      state_->files[Clean(dst)] = it->second;
      state_->files.erase(it);
    } else {
      state_->files.erase(Clean(dst));
    }
    return s;
  }

 private:
  const std::shared_ptr<State> state_;
};

}  // namespace

PowerCutDisk::PowerCutDisk()
    : state_(std::make_shared<State>()),
      rocks_fs_(std::make_shared<PcRocksFs>(state_)) {}

PowerCutDisk::~PowerCutDisk() = default;

void PowerCutDisk::PowerOff() {
  absl::MutexLock l(&state_->mu);
  state_->on = false;
}

absl::Status PowerCutDisk::DropUnsynced() {
  absl::MutexLock l(&state_->mu);
  absl::Status first;
  auto note = [&](absl::Status s) {
    if (first.ok() && !s.ok()) first = s;
  };
  for (auto& [path, t] : state_->files) {
    if (!t.name_durable) {
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        note(Errno(errno, absl::StrCat("unlink ", path)));
      }
      continue;
    }
    if (t.rocks) {
      if (SizeOf(path) > t.synced_size &&
          truncate(path.c_str(), static_cast<off_t>(t.synced_size)) != 0) {
        note(Errno(errno, absl::StrCat("truncate ", path)));
      }
      continue;
    }
    if (!t.dirty) continue;
    auto f = DefaultDisk()->Open(path, /*create=*/true);
    if (!f.ok()) {
      note(f.status());
      continue;
    }
    note((*f)->Truncate(0));
    note((*f)->PWrite(t.snapshot, 0));
  }
  state_->files.clear();
  state_->on = true;
  return first;
}

absl::StatusOr<std::unique_ptr<DiskFile>> PowerCutDisk::Open(
    const std::string& p, bool create, bool* created) {
  const std::string path = Clean(p);
  absl::MutexLock l(&state_->mu);
  if (!state_->on && create) return PowerIsOff(absl::StrCat("open ", path));
  bool made = false;
  auto f = DefaultDisk()->Open(path, create, &made);
  if (!f.ok()) return f.status();
  if (created != nullptr) *created = made;
  if (!state_->files.contains(path)) {
    State::Tracked t;
    t.name_durable = !made;
    if (!made) {
      auto data = ReadAll(**f);
      if (!data.ok()) return data.status();
      t.snapshot = std::move(*data);
    }
    state_->files[path] = std::move(t);
  }
  return std::unique_ptr<DiskFile>(new PcFile(std::move(*f), path, state_));
}

absl::Status PowerCutDisk::MakeDir(const std::string& path) {
  {
    absl::MutexLock l(&state_->mu);
    if (!state_->on) return PowerIsOff(absl::StrCat("mkdir ", path));
  }
  return DefaultDisk()->MakeDir(path);
}

absl::Status PowerCutDisk::Unlink(const std::string& path) {
  absl::MutexLock l(&state_->mu);
  if (!state_->on) return PowerIsOff(absl::StrCat("unlink ", path));
  absl::Status s = DefaultDisk()->Unlink(path);
  if (s.ok()) state_->files.erase(Clean(path));
  return s;
}

absl::Status PowerCutDisk::Rename(const std::string& from,
                                  const std::string& to) {
  absl::MutexLock l(&state_->mu);
  if (!state_->on) return PowerIsOff(absl::StrCat("rename ", from));
  absl::Status s = DefaultDisk()->Rename(from, to);
  if (!s.ok()) return s;
  auto it = state_->files.find(Clean(from));
  if (it != state_->files.end()) {
    state_->files[Clean(to)] = std::move(it->second);
    state_->files.erase(it);
  } else {
    state_->files.erase(Clean(to));
  }
  return s;
}

absl::StatusOr<std::vector<std::string>> PowerCutDisk::List(
    const std::string& dir) {
  return DefaultDisk()->List(dir);
}

absl::Status PowerCutDisk::SyncDir(const std::string& dir) {
  absl::MutexLock l(&state_->mu);
  if (!state_->on) return PowerIsOff(absl::StrCat("fsync ", dir));
  if (absl::Status s = DefaultDisk()->SyncDir(dir); !s.ok()) return s;
  state_->NamesDurable(Clean(dir));
  return absl::OkStatus();
}

absl::Status PowerCutDisk::SyncAll(const std::string& p) {
  const std::string prefix = Clean(p) + "/";
  absl::MutexLock l(&state_->mu);
  if (!state_->on) return PowerIsOff(absl::StrCat("syncfs ", p));
  if (absl::Status s = DefaultDisk()->SyncAll(p); !s.ok()) return s;
  for (auto& [path, t] : state_->files) {
    if (!absl::StartsWith(path, prefix)) continue;
    t.name_durable = true;
    if (t.rocks) {
      t.synced_size = t.size;
      continue;
    }
    if (!t.dirty) continue;
    auto f = DefaultDisk()->Open(path, /*create=*/false);
    if (!f.ok()) return f.status();
    auto data = ReadAll(**f);
    if (!data.ok()) return data.status();
    t.snapshot = std::move(*data);
    t.dirty = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<DiskSpace> PowerCutDisk::Space(const std::string& path) {
  return DefaultDisk()->Space(path);
}

std::shared_ptr<rocksdb::FileSystem> PowerCutDisk::rocks_fs() {
  return rocks_fs_;
}

}  // namespace stripefs::storage
