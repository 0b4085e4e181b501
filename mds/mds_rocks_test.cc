// MdsCore on the real RocksDB store: persistence across a restart and a
// create/stat/remove throughput smoke check (rates printed, loosely bounded).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "absl/time/clock.h"
#include "common/errors.h"
#include "gtest/gtest.h"
#include "mds/mds_core.h"

namespace stripefs::mds {
namespace {

class MdsRocksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mds_rocks_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    osts_ = std::make_unique<FakeOstPool>(4);
  }
  void TearDown() override {
    core_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Open() {
    core_.reset();
    store_.reset();
    auto s = storage::OpenRocksKv(dir_ + "/db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    core_ = std::make_unique<MdsCore>(store_.get(), osts_.get(), RealClock(),
                                      MdsOptions{});
    ASSERT_TRUE(core_->Start().ok());
  }

  std::string dir_;
  std::unique_ptr<FakeOstPool> osts_;
  std::unique_ptr<storage::KvStore> store_;
  std::unique_ptr<MdsCore> core_;
};

TEST_F(MdsRocksTest, NamespaceSurvivesRestart) {
  Open();
  const Cred root;
  auto d = core_->Mkdir({1, 1}, root, kRootIno, "dir", 0750);
  ASSERT_TRUE(d.ok());
  auto f = core_->Create({1, 2}, root, d->ino, "file", 0600, O_CREAT | O_RDWR);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(core_->UpdateSize({1, 3}, root, f->inode.ino, 12345, std::nullopt, false).ok());
  ASSERT_TRUE(core_->SetXattr({1, 4}, root, f->inode.ino, "user.x", "y", 0).ok());
  ASSERT_TRUE(core_->Symlink({1, 5}, root, d->ino, "link", "file").ok());
  Open();
  auto l = core_->Lookup(root, kRootIno, "dir");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->mode, S_IFDIR | 0750u);
  auto fl = core_->Lookup(root, d->ino, "file");
  ASSERT_TRUE(fl.ok());
  EXPECT_EQ(fl->size, 12345u);
  EXPECT_EQ(fl->layout.objects, f->inode.layout.objects);
  EXPECT_EQ(*core_->GetXattr(root, fl->ino, "user.x"), "y");
  auto sl = core_->Lookup(root, d->ino, "link");
  ASSERT_TRUE(sl.ok());
  EXPECT_EQ(*core_->Readlink(root, sl->ino), "file");
}

// Many files through RocksDB: every create, lookup and remove succeeds and
// the directory ends empty. The rates are printed for a look, not asserted
// (the machine is shared; speed is measured by tests/bench against a
// baseline in the same run).
TEST_F(MdsRocksTest, CreateStatRemoveManyFiles) {
  Open();
  const Cred root;
  auto d = core_->Mkdir({1, 1}, root, kRootIno, "bench", 0755);
  ASSERT_TRUE(d.ok());
  constexpr int kFiles = 3000;
  uint64_t xid = 10;
  absl::Time t0 = absl::Now();
  for (int i = 0; i < kFiles; ++i) {
    auto r = core_->Create({1, ++xid}, root, d->ino, "f" + std::to_string(i),
                           0644, O_CREAT | O_EXCL | O_WRONLY);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(core_->Release({1, ++xid}, r->handle).ok());
  }
  absl::Time t1 = absl::Now();
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(core_->Lookup(root, d->ino, "f" + std::to_string(i)).ok());
  }
  absl::Time t2 = absl::Now();
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(core_->Remove({1, ++xid}, root, d->ino, "f" + std::to_string(i), false).ok());
  }
  absl::Time t3 = absl::Now();
  auto rate = [](absl::Duration d) { return kFiles / absl::ToDoubleSeconds(d); };
  printf("create+release %.0f/s, lookup %.0f/s, remove %.0f/s\n", rate(t1 - t0),
         rate(t2 - t1), rate(t3 - t2));
  for (int i = 0; i < kFiles; i += 997) {
    EXPECT_EQ(ToErrno(core_->Lookup(root, d->ino, "f" + std::to_string(i))
                          .status()),
              ENOENT);
  }
  EXPECT_TRUE(core_->Remove({1, ++xid}, root, kRootIno, "bench", true).ok());
}

}  // namespace
}  // namespace stripefs::mds
