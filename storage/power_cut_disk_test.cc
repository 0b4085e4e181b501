// In-process power cuts (PowerCutDisk) of the KV store, the server record
// and plain files: what was synced survives, what was not is gone (so the
// tests of the servers' syncs built on this disk can fail).
#include "storage/power_cut_disk.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "storage/kv.h"
#include "storage/server_record.h"

namespace stripefs::storage {
namespace {

class PowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("power_cut_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    kv_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto kv = OpenRocksKv((dir_ / "db").string(), {.disk = &disk_});
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
  }
  // Power cut and restart: the store must open cleanly.
  void Cut() {
    disk_.PowerOff();
    kv_.reset();
    ASSERT_TRUE(disk_.DropUnsynced().ok());
    Open();
  }
  std::optional<std::string> Get(const std::string& key) {
    auto v = kv_->Get(key);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : std::nullopt;
  }
  absl::Status Put(const std::string& key, const std::string& value,
                   bool sync = false) {
    WriteBatch b;
    b.Put(key, value);
    return kv_->Write(b, {.sync = sync});
  }

  PowerCutDisk disk_;
  std::filesystem::path dir_;
  std::unique_ptr<KvStore> kv_;
};

TEST_F(PowerCutTest, UnsyncedWritesAreGoneSyncedOnesStay) {
  ASSERT_TRUE(Put("synced-by-write", "1", /*sync=*/true).ok());
  ASSERT_TRUE(Put("synced-by-sync", "2").ok());
  ASSERT_TRUE(kv_->Sync().ok());
  ASSERT_TRUE(Put("unsynced", "3").ok());
  Cut();
  EXPECT_EQ(Get("synced-by-write"), "1");
  EXPECT_EQ(Get("synced-by-sync"), "2");
  // The cut really drops what nobody synced (else every test above is
  // vacuous).
  EXPECT_EQ(Get("unsynced"), std::nullopt);
}

TEST_F(PowerCutTest, RepeatedCutsKeepEverySyncedWrite) {
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 50; ++i) {
      std::string k = "r" + std::to_string(round) + "-" + std::to_string(i);
      ASSERT_TRUE(Put(k, k).ok());
    }
    ASSERT_TRUE(kv_->Sync().ok());
    ASSERT_TRUE(Put("tail" + std::to_string(round), "x").ok());
    Cut();
    for (int r = 0; r <= round; ++r) {
      for (int i = 0; i < 50; ++i) {
        std::string k = "r" + std::to_string(r) + "-" + std::to_string(i);
        ASSERT_EQ(Get(k), k) << "round " << round;
      }
      EXPECT_EQ(Get("tail" + std::to_string(r)), std::nullopt);
    }
  }
}

// Group commit: concurrent writers each sync after their write; every
// write acknowledged by its Sync survives.
TEST_F(PowerCutTest, ConcurrentSyncsCoverEveryWriter) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        std::string k = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!Put(k, k).ok() || !kv_->Sync().ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  Cut();
  for (int t = 0; t < 8; ++t) {
    for (int i = 0; i < 40; ++i) {
      std::string k = "t" + std::to_string(t) + "-" + std::to_string(i);
      ASSERT_EQ(Get(k), k);
    }
  }
}

TEST_F(PowerCutTest, ServerRecordSurvives) {
  ServerRecord r;
  r.role = "oss";
  r.target = "ost0";
  r.release = "1.1.0";
  r.clean = true;
  r.instance = 7;
  ASSERT_TRUE(StoreServerRecord(*kv_, r).ok());
  Cut();
  auto loaded = LoadServerRecord(*kv_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_TRUE((*loaded)->clean);
  EXPECT_EQ((*loaded)->instance, 7u);
}

TEST_F(PowerCutTest, FilesKeepTheirSyncedBytesAndNames) {
  const std::string a = (dir_ / "a").string(), b = (dir_ / "b").string();
  {
    auto f = disk_.Open(a, /*create=*/true);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->PWrite("synced", 0).ok());
    ASSERT_TRUE((*f)->DataSync().ok());
    ASSERT_TRUE(disk_.SyncDir(dir_.string()).ok());
    ASSERT_TRUE((*f)->PWrite("UNSYNCED-TAIL", 6).ok());
    auto g = disk_.Open(b, /*create=*/true);  // name never synced
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE((*g)->PWrite("b", 0).ok());
    ASSERT_TRUE((*g)->DataSync().ok());
  }
  disk_.PowerOff();
  EXPECT_FALSE(disk_.Open((dir_ / "c").string(), true).ok());
  kv_.reset();
  ASSERT_TRUE(disk_.DropUnsynced().ok());
  auto f = disk_.Open(a, /*create=*/false);
  ASSERT_TRUE(f.ok());
  std::string buf(64, '\0');
  auto n = (*f)->PRead(buf.data(), buf.size(), 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(buf.substr(0, *n), "synced");
  EXPECT_FALSE(std::filesystem::exists(b));
}

}  // namespace
}  // namespace stripefs::storage
