// TargetRegistry over an MdsCore with fake OSTs and an in-memory store: the
// flags seed the registry, changes are recorded (a restart keeps them) and
// refused with the errno a user gets from `stripefs target`.
#include "mds/target_registry.h"

#include <fcntl.h>

#include "mds/core_test_util.h"

namespace stripefs::mds {
namespace {

class TargetRegistryTest : public CoreTestBase {
 protected:
  TargetRegistryTest() : CoreTestBase(2) {}
  void SetUp() override {
    CoreTestBase::SetUp();
    // The registry as an MDS start makes it from its flags.
    ASSERT_TRUE(LoadTargets(store_.get(), osts_->Targets()).ok());
    registry_ = std::make_unique<TargetRegistry>(
        store_.get(), osts_.get(), core_.get(), [this] { ++changes_; });
  }
  ReqId Req() { return {.client_id = 7, .xid = ++xid_}; }
  // The OST of a new one-stripe file.
  uint32_t NewFileOst(const std::string& name) {
    auto r = core_->Create(Req(), kRoot, kRootIno, name, 0644,
                           O_CREAT | O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return 99;
    EXPECT_TRUE(core_->Release(Req(), r->handle).ok());
    return r->inode.layout.objects.at(0).ost;
  }
  std::unique_ptr<TargetRegistry> registry_;
  int changes_ = 0;
};

TEST_F(TargetRegistryTest, FlagsSeedTheStoreWhichKeepsStates) {
  std::vector<OstTarget> flags = {{.index = 0, .address = "h:1"},
                                  {.index = 1, .address = "h:2"}};
  auto t = LoadTargets(store_.get(), flags);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, flags);
  ASSERT_TRUE(registry_->SetState(1, false, true).ok());
  // The next start: ost1's state stays, ost0 moved, ost2 is new.
  flags = {{.index = 0, .address = "h:9"}, {.index = 2, .address = "h:3"}};
  t = LoadTargets(store_.get(), flags);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].address, "h:9");
  EXPECT_FALSE((*t)[1].active);
  EXPECT_TRUE((*t)[1].fail_io);
  EXPECT_TRUE((*t)[2].active);
}

TEST_F(TargetRegistryTest, AddPrimesThenActivates) {
  ASSERT_TRUE(registry_->Add(2, "h:7", absl::Seconds(5)).ok());
  EXPECT_EQ(changes_, 1);
  EXPECT_GT(core_->PooledObjects(2), 0u);  // ids agreed before use
  bool used = false;
  for (int i = 0; i < 6; ++i) used |= NewFileOst("f" + std::to_string(i)) == 2;
  EXPECT_TRUE(used);
  // The same again: nothing to do. Another index at its address, or its
  // index elsewhere: refused.
  EXPECT_TRUE(registry_->Add(2, "h:7", absl::Seconds(5)).ok());
  EXPECT_EQ(Err(registry_->Add(3, "h:7", absl::Seconds(5))), EEXIST);
  EXPECT_EQ(Err(registry_->Add(2, "h:8", absl::Seconds(5))), EEXIST);
  EXPECT_EQ(Err(registry_->Add(4, "nonsense", absl::Seconds(5))), EINVAL);
  EXPECT_EQ(changes_, 1);
}

TEST_F(TargetRegistryTest, DeactivatedTargetsGetNoObjects) {
  ASSERT_TRUE(registry_->SetState(0, false, false).ok());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(NewFileOst("g" + std::to_string(i)), 1u);
  EXPECT_EQ(Err(registry_->SetState(1, false, false)), EBUSY);  // the last
  EXPECT_EQ(Err(registry_->SetState(5, false, false)), ENOENT);
  ASSERT_TRUE(registry_->SetState(0, true, false).ok());
  bool used = false;
  for (int i = 0; i < 6; ++i) used |= NewFileOst("h" + std::to_string(i)) == 0;
  EXPECT_TRUE(used);
  EXPECT_EQ(changes_, 2);
}

TEST_F(TargetRegistryTest, RemoveOnlyAnEmptyDeactivatedTarget) {
  uint32_t ost = NewFileOst("a");
  EXPECT_EQ(Err(registry_->Remove(ost, false)), EBUSY);  // active
  ASSERT_TRUE(registry_->SetState(ost, false, false).ok());
  EXPECT_EQ(Err(registry_->Remove(ost, false)), ENOTEMPTY);
  ASSERT_TRUE(registry_->Remove(ost, true).ok());
  EXPECT_EQ(osts_->Targets().size(), 1u);
  EXPECT_EQ(Err(registry_->Remove(1 - ost, false)), EBUSY);  // the last
  EXPECT_EQ(NewFileOst("b"), 1 - ost);
  // The store no longer lists it.
  auto t = LoadTargets(store_.get(), {});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 1u);
}

}  // namespace
}  // namespace stripefs::mds
