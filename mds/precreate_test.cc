// MdsCore's object allocation when pools run dry: the precreate runs
// outside the core's lock, one per OST at a time, and the create that needs
// it waits for it (or goes to another OST when its own is down).
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "common/fault_points.h"
#include "gtest/gtest.h"
#include "mds/core_test_util.h"
#include "mds/mds_core.h"

namespace stripefs::mds {
namespace {

class MdsCorePrecreateTest : public CoreTestBase {
 protected:
  MdsCorePrecreateTest() : CoreTestBase(4, /*real_clock=*/true) {}
  ReqId Req() { return {9, ++xid_}; }

  // Creates dir/name on another thread; `done` turns true when it returned.
  std::thread CreateAsync(uint64_t dir, std::string name,
                          std::atomic<bool>* done, Inode* out) {
    const ReqId req = Req();
    return std::thread([this, dir, name, done, out, req] {
      auto r = core_->Create(req, kRoot, dir, name, 0644, O_CREAT | O_RDWR);
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) *out = r->inode;
      done->store(true);
    });
  }
  // Waits (bounded) until `n` precreates sit at the fake's block.
  void WaitBlocked(int n) {
    for (int i = 0; i < 500 && osts_->blocked_precreates() < n; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_EQ(osts_->blocked_precreates(), n);
  }
  // A directory whose files have one object, on `ost`.
  uint64_t DirOn(const std::string& name, int32_t ost) {
    auto d = core_->Mkdir(Req(), kRoot, kRootIno, name, 0755);
    EXPECT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(core_->SetLayout(Req(), kRoot, d->ino, 0, 1, ost).ok());
    return d->ino;
  }
};

TEST_F(MdsCorePrecreateTest, DryPoolRefillsWithoutHoldingTheCoreLock) {
  const uint64_t d = DirOn("d", 1);
  osts_->BlockPrecreates(true);
  std::atomic<bool> done{false};
  Inode f;
  std::thread t = CreateAsync(d, "f", &done, &f);
  WaitBlocked(1);
  // The precreate hangs at the OSS; the rest of the namespace is served.
  EXPECT_TRUE(core_->GetAttr(kRootIno).ok());
  EXPECT_EQ(Err(core_->Lookup(kRoot, d, "f")), ENOENT);
  EXPECT_TRUE(core_->Mkdir(Req(), kRoot, kRootIno, "other", 0755).ok());
  EXPECT_TRUE(core_->Lookup(kRoot, kRootIno, "other").ok());
  EXPECT_FALSE(done.load());  // the create waits for its objects
  osts_->BlockPrecreates(false);
  t.join();
  ASSERT_EQ(f.layout.objects.size(), 1u);
  EXPECT_EQ(f.layout.objects[0].ost, 1u);
  EXPECT_TRUE(osts_->Exists(1, f.layout.objects[0].oid));
  EXPECT_EQ(osts_->precreate_calls(), 1);
  EXPECT_TRUE(core_->Lookup(kRoot, d, "f").ok());
}

TEST_F(MdsCorePrecreateTest, CreatesWaitForTheRefillInFlight) {
  // Every pool dry, a background refill hanging at the OSSs: creates find
  // the refill of their OST in flight and wait for it, no second call.
  osts_->BlockPrecreates(true);
  std::thread refill([this] { core_->RefillPools(); });
  WaitBlocked(4);  // one per OST, in parallel
  std::atomic<bool> done1{false}, done2{false};
  Inode f1, f2;
  std::thread t1 = CreateAsync(kRootIno, "f1", &done1, &f1);
  std::thread t2 = CreateAsync(kRootIno, "f2", &done2, &f2);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(osts_->blocked_precreates(), 4);
  EXPECT_FALSE(done1.load());
  EXPECT_FALSE(done2.load());
  EXPECT_TRUE(core_->GetAttr(kRootIno).ok());
  osts_->BlockPrecreates(false);
  t1.join();
  t2.join();
  refill.join();
  EXPECT_EQ(osts_->precreate_calls(), 4);
  ASSERT_EQ(f1.layout.objects.size(), 1u);
  ASSERT_EQ(f2.layout.objects.size(), 1u);
  EXPECT_NE(f1.layout.objects[0], f2.layout.objects[0]);
}

TEST_F(MdsCorePrecreateTest, DownOstFallsBackToAnother) {
  core_->RefillPools();  // every OST has a pool
  const uint64_t d = DirOn("on1", 1);
  const uint64_t pooled = core_->PooledObjects(1);
  for (uint64_t i = 0; i < pooled; ++i) {
    auto r = core_->Create(Req(), kRoot, d, "f" + std::to_string(i), 0644,
                           O_CREAT | O_RDWR);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  ASSERT_EQ(core_->PooledObjects(1), 0u);
  // ost1's precreate hangs, then its OSS turns out to be down.
  osts_->BlockPrecreates(true);
  std::atomic<bool> done{false};
  Inode g;
  std::thread t = CreateAsync(d, "g", &done, &g);
  WaitBlocked(1);
  EXPECT_TRUE(core_->GetAttr(d).ok());
  EXPECT_EQ(osts_->last_precreate_wait(), MdsCore::kOnDemandShortWait);
  osts_->SetFailing(1, true);
  osts_->BlockPrecreates(false);
  t.join();
  ASSERT_EQ(g.layout.objects.size(), 1u);
  EXPECT_NE(g.layout.objects[0].ost, 1u);  // another OST stood in
}

// A getattr does not wait for a change that holds the core's lock (here
// one stalled just before its commit).
TEST_F(MdsCorePrecreateTest, GetAttrDoesNotWaitBehindACommit) {
  ASSERT_TRUE(fault::Configure("mds.before_commit=delay:2000", 1).ok());
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_TRUE(core_->Mkdir(Req(), kRoot, kRootIno, "slow", 0755).ok());
    done.store(true);
  });
  absl::SleepFor(absl::Milliseconds(200));  // the mkdir holds the lock
  const absl::Time start = absl::Now();
  auto root = core_->GetAttr(kRootIno);
  const absl::Duration took = absl::Now() - start;
  EXPECT_FALSE(done.load());
  t.join();
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_LT(took, absl::Milliseconds(500));
  EXPECT_EQ(root->nlink, 2u);  // as before the mkdir, which came later
  EXPECT_EQ(Attr(kRootIno).nlink, 3u);
}

}  // namespace
}  // namespace stripefs::mds
