// PowerCutDisk: a Disk (storage/disk.h) for tests that cuts the power
// in-process, the way RocksDB's fault-injection file system does. It runs on
// the real file system and remembers, for every file written through it
// (object files and RocksDB's files alike), what was last synced: a file's
// bytes after DataSync/Sync/Fsync, a file's name after the sync of its
// directory, everything after SyncAll.
//
//   PowerCutDisk disk;
//   auto kv = OpenRocksKv(dir, {.disk = &disk});   // or an ObjectStore
//   ... writes, some synced ...
//   disk.PowerOff();        // from here every write and sync fails (EIO)
//   kv->reset();            // the server "dies"; nothing more reaches disk
//   ASSERT_OK(disk.DropUnsynced());  // unsynced bytes and names are gone
//   kv = OpenRocksKv(dir, {.disk = &disk});        // restart
//
// What is dropped: bytes written since a file's last sync (the file goes
// back to its synced content) and files whose directory was not synced
// since they were created (they are removed). Simplification: a removal
// or rename is durable at once (a real power cut may undo it until the
// directory is synced); files that existed before the disk first saw them
// count as synced.
//
// Thread-safety: safe for concurrent use.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "storage/disk.h"

namespace stripefs::storage {

class PowerCutDisk : public Disk {
 public:
  PowerCutDisk();
  ~PowerCutDisk() override;

  // The power goes off: every later write, truncate, create and sync
  // through this disk fails with EIO and changes nothing.
  void PowerOff();
  // Drops everything unsynced (see above) and turns the power back on.
  // Stop every user of the disk (PowerOff, then close the stores) first.
  [[nodiscard]] absl::Status DropUnsynced();

  absl::StatusOr<std::unique_ptr<DiskFile>> Open(const std::string& path,
                                                 bool create,
                                                 bool* created = nullptr) override;
  absl::Status MakeDir(const std::string& path) override;
  absl::Status Unlink(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::StatusOr<std::vector<std::string>> List(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status SyncAll(const std::string& path) override;
  absl::StatusOr<DiskSpace> Space(const std::string& path) override;
  std::shared_ptr<rocksdb::FileSystem> rocks_fs() override;

  struct State;  // what was synced; shared with the files and RocksDB's fs

 private:
  std::shared_ptr<State> state_;
  std::shared_ptr<rocksdb::FileSystem> rocks_fs_;
};

}  // namespace stripefs::storage
