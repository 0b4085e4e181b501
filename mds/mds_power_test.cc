// Power cuts of the MDS (and its OSTs) in-process, on a PowerCutDisk
// (storage/power_cut_disk.h): what a client's fsync (MdsCore::Sync) covered
// is there after the cut, what it did not cover may be gone but the store
// opens cleanly, and no object id is handed out twice, so no byte of a
// file the cut lost shows up in a new one.
#include <fcntl.h>
#include <stdlib.h>

#include <filesystem>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "mds/core_test_util.h"
#include "mds/mds_core.h"
#include "oss/object_store.h"
#include "storage/power_cut_disk.h"

namespace stripefs::mds {
namespace {

// The OSTs as the MDS sees them, each an ObjectStore in this process on
// the same disk as the MDS (one power cut for the whole cluster).
class StoreOstPool : public OstPool {
 public:
  explicit StoreOstPool(std::vector<oss::ObjectStore*> stores)
      : stores_(std::move(stores)) {
    for (uint32_t i = 0; i < stores_.size(); ++i) {
      targets_.push_back({.index = i, .address = "local:" + std::to_string(i)});
    }
  }
  std::vector<OstTarget> Targets() const override { return targets_; }
  absl::StatusOr<ObjectRange> Precreate(uint32_t ost, uint32_t count,
                                        absl::Duration) override {
    auto first = stores_[ost]->Precreate(count);
    if (!first.ok()) return first.status();
    return ObjectRange{*first, count};
  }
  absl::Status Destroy(uint32_t ost, const std::vector<uint64_t>& oids) override {
    return stores_[ost]->Destroy(oids);
  }
  absl::StatusOr<OstStatfs> Statfs(uint32_t ost) override { return OstStatfs{}; }

 private:
  std::vector<oss::ObjectStore*> stores_;
  std::vector<OstTarget> targets_;
};

class MdsPowerTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kOsts = 2;
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/mds_power.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Start();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    auto kv = storage::OpenRocksKv(dir_ + "/mdt", {.disk = &disk_});
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
    std::vector<oss::ObjectStore*> raw;
    for (uint32_t i = 0; i < kOsts; ++i) {
      auto s = oss::ObjectStore::Open(
          {.data_dir = dir_ + "/ost" + std::to_string(i), .disk = &disk_});
      ASSERT_TRUE(s.ok()) << s.status();
      stores_.push_back(std::move(*s));
      raw.push_back(stores_.back().get());
    }
    pool_ = std::make_unique<StoreOstPool>(raw);
    MdsOptions opts;
    opts.background_threads = false;
    opts.precreate_batch = 16;
    opts.precreate_low_water = 4;
    core_ = std::make_unique<MdsCore>(kv_.get(), pool_.get(), RealClock(), opts);
    ASSERT_TRUE(core_->Start().ok());  // the store opens cleanly
  }
  void Stop() {
    core_.reset();
    pool_.reset();
    stores_.clear();
    kv_.reset();
  }
  // The power goes off under the running cluster; then it starts again.
  void Cut() {
    disk_.PowerOff();
    Stop();
    ASSERT_TRUE(disk_.DropUnsynced().ok());
    Start();
  }
  ReqId Req() { return {7, ++xid_}; }
  absl::StatusOr<Inode> Find(uint64_t parent, const std::string& name) {
    return core_->Lookup(kRoot, parent, name);
  }
  Inode MustCreate(uint64_t parent, const std::string& name) {
    auto r = core_->Create(Req(), kRoot, parent, name, 0644, O_CREAT | O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_TRUE(core_->Release(Req(), r->handle).ok());
    return r->inode;
  }
  // Creates, renames, unlinks, chmods and sets an xattr under a new
  // directory "d"; returns its inode.
  uint64_t Changes() {
    auto d = core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755);
    EXPECT_TRUE(d.ok()) << d.status();
    const uint64_t dir = d->ino;
    MustCreate(dir, "a");
    MustCreate(dir, "b");
    Inode c = MustCreate(dir, "c");
    EXPECT_TRUE(core_->Rename(Req(), kRoot, dir, "a", dir, "a2", 0).ok());
    EXPECT_TRUE(core_->Remove(Req(), kRoot, dir, "b", false).ok());
    EXPECT_TRUE(
        core_->SetAttr(Req(), kRoot, c.ino, {.valid = kSetMode, .mode = 0600})
            .ok());
    EXPECT_TRUE(core_->SetXattr(Req(), kRoot, c.ino, "user.k", "v", 0).ok());
    return dir;
  }

  storage::PowerCutDisk disk_;
  std::string dir_;
  std::unique_ptr<storage::KvStore> kv_;
  std::vector<std::unique_ptr<oss::ObjectStore>> stores_;
  std::unique_ptr<StoreOstPool> pool_;
  std::unique_ptr<MdsCore> core_;
  uint64_t xid_ = 0;
};

TEST_F(MdsPowerTest, EveryChangeBeforeTheClientsFsyncSurvives) {
  Changes();
  ASSERT_TRUE(core_->Sync().ok());  // the client's fsync / fsyncdir
  Cut();
  auto d = Find(kRootIno, "d");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(Find(d->ino, "a2").ok());
  EXPECT_EQ(Err(Find(d->ino, "a")), ENOENT);
  EXPECT_EQ(Err(Find(d->ino, "b")), ENOENT);
  auto c = Find(d->ino, "c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mode & 07777, 0600u);
  auto x = core_->GetXattr(kRoot, c->ino, "user.k");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(*x, "v");
}

// Without the fsync the changes may be gone (here they are: the cut is
// real), and the MDS starts cleanly on what is left.
TEST_F(MdsPowerTest, WithoutFsyncChangesMayBeGoneAndTheStoreOpens) {
  Changes();
  Cut();
  EXPECT_EQ(Err(Find(kRootIno, "d")), ENOENT);
  MustCreate(kRootIno, "after");
  ASSERT_TRUE(core_->Sync().ok());
  Cut();
  EXPECT_TRUE(Find(kRootIno, "after").ok());
}

// A file whose data an OST made durable but whose create the cut lost:
// its object id is never handed out again and its bytes never show in a
// new file; the orphan is destroyed.
TEST_F(MdsPowerTest, NoObjectIdReusedAndNoLostBytesVisible) {
  std::set<std::pair<uint32_t, uint64_t>> seen;
  for (int round = 0; round < 3; ++round) {
    const std::string lost = "lost" + std::to_string(round);
    Inode f = MustCreate(kRootIno, lost);
    ASSERT_EQ(f.layout.objects.size(), 1u);
    const StripeObject o = f.layout.objects[0];
    EXPECT_TRUE(seen.insert({o.ost, o.oid}).second) << "reused " << o.oid;
    ASSERT_TRUE(stores_[o.ost]->Write(o.oid, 0, "bytes of " + lost, true).ok());
    Cut();
    ASSERT_EQ(Err(Find(kRootIno, lost)), ENOENT);
    for (int i = 0; i < 2 * int(kOsts); ++i) {
      Inode g = MustCreate(kRootIno, "new" + std::to_string(round * 10 + i));
      ASSERT_EQ(g.layout.objects.size(), 1u);
      const StripeObject n = g.layout.objects[0];
      EXPECT_TRUE(seen.insert({n.ost, n.oid}).second)
          << "object id " << n.oid << " on ost" << n.ost << " handed out twice";
      std::string data;
      ASSERT_TRUE(stores_[n.ost]->Read(n.oid, 0, 4096, &data).ok());
      EXPECT_EQ(data, "") << "a new file shows another file's bytes";
    }
    auto destroyed = core_->DrainDestroyQueue();
    ASSERT_TRUE(destroyed.ok()) << destroyed.status();
    std::string data;
    EXPECT_EQ(ToErrno(stores_[o.ost]->Read(o.oid, 0, 16, &data).status()),
              ENOENT)
        << "the lost file's object was not destroyed";
    ASSERT_TRUE(core_->Sync().ok());
  }
}

}  // namespace
}  // namespace stripefs::mds
