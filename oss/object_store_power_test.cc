// Power cuts of an ObjectStore (storage/power_cut_disk.h): fsync'd object
// data survives, unsynced data is dropped (so the cut is real), a clean
// Close leaves everything durable, and an fsync that overlaps another's
// directory sync waits for it.
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "oss/object_store.h"
#include "storage/power_cut_disk.h"

namespace stripefs::oss {
namespace {

// Forwards to a PowerCutDisk; a directory sync can be held inside (to pin
// the overlapping-fsync race) and the finished ones are counted.
class HoldDisk : public storage::Disk {
 public:
  storage::PowerCutDisk base;
  std::atomic<bool> hold{false};
  absl::Notification entered, release;
  std::atomic<int> dir_syncs_done{0};

  absl::StatusOr<std::unique_ptr<storage::DiskFile>> Open(
      const std::string& p, bool c, bool* made) override {
    return base.Open(p, c, made);
  }
  absl::Status MakeDir(const std::string& p) override { return base.MakeDir(p); }
  absl::Status Unlink(const std::string& p) override { return base.Unlink(p); }
  absl::Status Rename(const std::string& a, const std::string& b) override {
    return base.Rename(a, b);
  }
  absl::StatusOr<std::vector<std::string>> List(const std::string& d) override {
    return base.List(d);
  }
  absl::Status SyncDir(const std::string& d) override {
    if (hold.exchange(false)) {
      entered.Notify();
      release.WaitForNotification();
    }
    absl::Status s = base.SyncDir(d);
    dir_syncs_done.fetch_add(1);
    return s;
  }
  absl::Status SyncAll(const std::string& p) override { return base.SyncAll(p); }
  absl::StatusOr<storage::DiskSpace> Space(const std::string& p) override {
    return base.Space(p);
  }
  std::shared_ptr<rocksdb::FileSystem> rocks_fs() override {
    return base.rocks_fs();
  }
};

class ObjectStorePowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/oss_power.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto s = ObjectStore::Open({.data_dir = dir_ + "/ost", .disk = &disk_});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void Cut() {
    disk_.base.PowerOff();
    store_.reset();
    ASSERT_TRUE(disk_.base.DropUnsynced().ok());
    Open();
  }
  std::string Read(uint64_t oid) {
    std::string out;
    auto r = store_->Read(oid, 0, 1 << 20, &out);
    EXPECT_TRUE(r.ok()) << r.status();
    return out;
  }

  HoldDisk disk_;
  std::string dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStorePowerTest, FsyncedDataSurvivesUnsyncedIsDropped) {
  auto first = store_->Precreate(3);
  ASSERT_TRUE(first.ok());
  const uint64_t a = *first, b = a + 1, c = a + 2;
  ASSERT_TRUE(store_->Write(a, 0, "fsynced later", false).ok());
  ASSERT_TRUE(store_->Sync({a}).ok());
  ASSERT_TRUE(store_->Write(b, 0, "written with sync", true).ok());
  ASSERT_TRUE(store_->Write(c, 0, "never synced", false).ok());
  ASSERT_TRUE(store_->Write(a, 100, "tail never synced", false).ok());
  Cut();
  EXPECT_EQ(Read(a), "fsynced later");
  EXPECT_EQ(Read(b), "written with sync");
  EXPECT_EQ(Read(c), "");  // the cut is real
  // The high-water mark was synced with the precreate: no id comes back.
  auto next = store_->Precreate(1);
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, c);
}

TEST_F(ObjectStorePowerTest, CleanCloseLeavesEveryWriteDurable) {
  auto first = store_->Precreate(2);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->Write(*first, 0, "acknowledged", false).ok());
  ASSERT_TRUE(store_->Write(*first + 1, 4096, "also", false).ok());
  ASSERT_TRUE(store_->Close().ok());
  Cut();
  EXPECT_EQ(Read(*first), "acknowledged");
  EXPECT_EQ(Read(*first + 1).substr(4096), "also");
}

// Two objects in one subdirectory, both new: the first fsync is held inside
// its directory sync; the second, overlapping it, must not return before a
// directory sync that covers its object's name has finished.
TEST_F(ObjectStorePowerTest, OverlappingFsyncWaitsForTheDirectorySync) {
  auto first = store_->Precreate(300);
  ASSERT_TRUE(first.ok());
  const uint64_t x = *first, y = x + 256;  // same subdirectory (oid % 256)
  // Flush the start-up state so only x and y's names are unsynced.
  ASSERT_TRUE(store_->Sync({}).ok());
  ASSERT_TRUE(store_->Write(x, 0, "x", false).ok());
  ASSERT_TRUE(store_->Write(y, 0, "y", false).ok());
  const int before = disk_.dir_syncs_done.load();
  disk_.hold = true;
  std::thread t1([&] { EXPECT_TRUE(store_->Sync({x}).ok()); });
  disk_.entered.WaitForNotification();
  std::atomic<int> done_when_y_returned{-1};
  absl::Notification y_returned;
  std::thread t2([&] {
    EXPECT_TRUE(store_->Sync({y}).ok());
    done_when_y_returned = disk_.dir_syncs_done.load() - before;
    y_returned.Notify();
  });
  // Give the second fsync time to (wrongly) return; release either way.
  y_returned.WaitForNotificationWithTimeout(absl::Milliseconds(300));
  disk_.release.Notify();
  t1.join();
  t2.join();
  EXPECT_GE(done_when_y_returned.load(), 1)
      << "fsync of y returned while the directory sync was still running";
  Cut();
  EXPECT_EQ(Read(x), "x");
  EXPECT_EQ(Read(y), "y");
}

}  // namespace
}  // namespace stripefs::oss
