// The real Disk (POSIX calls) and its no-sync variant.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "rocksdb/file_system.h"
#include "spdlog/spdlog.h"
#include "storage/disk.h"

namespace stripefs::storage {
namespace {

absl::Status SysError(int err, absl::string_view what, absl::string_view path) {
  return Errno(err, absl::StrCat(what, " ", path, ": ", strerror(err)));
}

class PosixFile : public DiskFile {
 public:
  PosixFile(int fd, std::string path, bool sync)
      : fd_(fd), path_(std::move(path)), sync_(sync) {}
  ~PosixFile() override {
    if (close(fd_) != 0) {
      spdlog::warn("close of {} failed: {}", path_, strerror(errno));
    }
  }

  absl::Status PWrite(std::string_view data, uint64_t offset) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = pwrite(fd_, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return SysError(errno, "write", path_);
      }
      if (n == 0) return Errno(EIO, absl::StrCat("write ", path_, ": 0"));
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> PRead(char* buf, size_t len,
                               uint64_t offset) override {
    size_t done = 0;
    while (done < len) {
      ssize_t n = pread(fd_, buf + done, len - done,
                        static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return SysError(errno, "read", path_);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  absl::StatusOr<FileStat> Stat() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return SysError(errno, "stat", path_);
    return FileStat{static_cast<uint64_t>(st.st_size),
                    static_cast<uint64_t>(st.st_blocks)};
  }

  absl::Status Truncate(uint64_t size) override {
    if (ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return SysError(errno, "truncate", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Punch(uint64_t offset, uint64_t length) override {
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
      return SysError(errno, "punch", path_);
    }
    return absl::OkStatus();
  }

  absl::Status DataSync() override {
    if (sync_ && fdatasync(fd_) != 0) return SysError(errno, "fdatasync", path_);
    return absl::OkStatus();
  }

 private:
  const int fd_;
  const std::string path_;
  const bool sync_;
};

class PosixDisk : public Disk {
 public:
  explicit PosixDisk(bool sync) : sync_(sync) {}

  absl::StatusOr<std::unique_ptr<DiskFile>> Open(const std::string& path,
                                                 bool create,
                                                 bool* created) override {
    if (created != nullptr) *created = false;
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd >= 0 && created != nullptr) *created = true;
      if (fd < 0 && errno == EEXIST) fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) return SysError(errno, "open", path);
    return std::unique_ptr<DiskFile>(new PosixFile(fd, path, sync_));
  }

  absl::Status MakeDir(const std::string& path) override {
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return SysError(errno, "mkdir", path);
    }
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return SysError(errno, "stat", path);
    if (!S_ISDIR(st.st_mode)) return SysError(ENOTDIR, "directory", path);
    return absl::OkStatus();
  }

  absl::Status Unlink(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return SysError(errno, "unlink", path);
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return SysError(errno, absl::StrCat("rename ", from, " to"), to);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) override {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return SysError(errno, "opendir", dir);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
      errno = 0;
    }
    int err = errno;
    closedir(d);
    if (err != 0) return SysError(err, "readdir", dir);
    return names;
  }

  absl::Status SyncDir(const std::string& dir) override {
    if (!sync_) return absl::OkStatus();
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return SysError(errno, "open", dir);
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc != 0) return SysError(err, "fsync", dir);
    return absl::OkStatus();
  }

  absl::Status SyncAll(const std::string& path) override {
    if (!sync_) return absl::OkStatus();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SysError(errno, "open", path);
    int rc = syncfs(fd);
    int err = errno;
    close(fd);
    if (rc != 0) return SysError(err, "syncfs", path);
    return absl::OkStatus();
  }

  absl::StatusOr<DiskSpace> Space(const std::string& path) override {
    struct statvfs v;
    if (statvfs(path.c_str(), &v) != 0) return SysError(errno, "statvfs", path);
    return DiskSpace{static_cast<uint64_t>(v.f_blocks) * v.f_frsize,
                     static_cast<uint64_t>(v.f_bfree) * v.f_frsize,
                     static_cast<uint64_t>(v.f_bavail) * v.f_frsize};
  }

  std::shared_ptr<rocksdb::FileSystem> rocks_fs() override {
    return rocksdb::FileSystem::Default();
  }
  bool syncs_log() const override { return sync_; }

 private:
  const bool sync_;
};

}  // namespace

Disk* DefaultDisk() {
  static Disk* disk = new PosixDisk(/*sync=*/true);
  return disk;
}

Disk* NoSyncDisk() {
  static Disk* disk = new PosixDisk(/*sync=*/false);
  return disk;
}

Disk* ServerDisk() {
  static Disk* disk = [] {
    const char* v = std::getenv("STRIPEFS_TEST_NO_SYNC");
    if (v != nullptr && std::string_view(v) == "1") {
      spdlog::error(
          "STRIPEFS_TEST_NO_SYNC=1: every sync is skipped; nothing this "
          "server acknowledges survives a power cut (test-only switch)");
      return NoSyncDisk();
    }
    return DefaultDisk();
  }();
  return disk;
}

}  // namespace stripefs::storage
