// The object store under a capacity (stripefs-oss --capacity): statfs
// reports the limit, writes past it fail with ENOSPC, truncates and
// destroys give space back, a restart counts the objects again.
#include "oss/capacity.h"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "common/errors.h"
#include "gtest/gtest.h"
#include "oss/object_store.h"

namespace stripefs::oss {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

TEST(CapacityTest, ChargesGrowthOnly) {
  Capacity c(10 * kMiB);
  EXPECT_TRUE(c.Charge(1, 4 * kMiB).ok());
  EXPECT_TRUE(c.Charge(1, 2 * kMiB).ok());  // inside: nothing more
  EXPECT_EQ(c.used(), 4 * kMiB);
  EXPECT_TRUE(c.Charge(2, 6 * kMiB).ok());
  EXPECT_EQ(ToErrno(c.Charge(2, 6 * kMiB + 1)), ENOSPC);
  EXPECT_EQ(c.used(), 10 * kMiB);
  c.Truncated(2, kMiB);
  EXPECT_EQ(c.used(), 5 * kMiB);
  c.Truncated(2, 9 * kMiB);  // a hole takes nothing
  EXPECT_EQ(c.used(), 5 * kMiB);
  c.Destroyed(1);
  EXPECT_EQ(c.used(), kMiB);
  storage::DiskSpace disk{100 * kMiB, 50 * kMiB, 40 * kMiB};
  storage::DiskSpace s = c.Apply(disk);
  EXPECT_EQ(s.total_bytes, 10 * kMiB);
  EXPECT_EQ(s.avail_bytes, 9 * kMiB);
  // A disk with less room than the limit leaves: the disk's numbers.
  storage::DiskSpace small{100 * kMiB, 3 * kMiB, 2 * kMiB};
  EXPECT_EQ(c.Apply(small).avail_bytes, 2 * kMiB);
}

class CapacityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/oss_cap.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Reopen() {
    if (store_) ASSERT_TRUE(store_->Close().ok());
    store_.reset();
    auto s = ObjectStore::Open(
        {.data_dir = dir_ + "/ost", .capacity_bytes = 8 * kMiB});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  uint64_t Avail() {
    auto st = store_->Statfs();
    EXPECT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st.value_or(StoreStatfs{}).total_bytes, 8 * kMiB);
    return st.value_or(StoreStatfs{}).avail_bytes;
  }
  std::string dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(CapacityStoreTest, WritesStopAtTheCapacity) {
  EXPECT_EQ(Avail(), 8 * kMiB);
  auto first = store_->Precreate(3);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint64_t a = *first, b = *first + 1, c = *first + 2;
  const std::string mib(kMiB, 'x');
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->Write(a, i * kMiB, mib, false).ok());
  }
  EXPECT_EQ(Avail(), 3 * kMiB);
  ASSERT_TRUE(store_->Write(b, 0, mib, false).ok());
  ASSERT_TRUE(store_->Write(b, kMiB, mib, false).ok());
  ASSERT_TRUE(store_->Write(a, 0, mib, false).ok());  // overwrite: free
  EXPECT_EQ(Avail(), kMiB);
  EXPECT_EQ(ToErrno(store_->Write(c, kMiB, mib, false).status()), ENOSPC);
  ASSERT_TRUE(store_->Write(c, 0, mib, false).ok());
  EXPECT_EQ(Avail(), 0u);
  EXPECT_EQ(ToErrno(store_->Write(b, 2 * kMiB, "y", false).status()), ENOSPC);
  // A restart counts what the objects hold.
  Reopen();
  EXPECT_EQ(Avail(), 0u);
  EXPECT_EQ(ToErrno(store_->Write(b, 2 * kMiB, "y", false).status()), ENOSPC);
  ASSERT_TRUE(store_->Truncate(a, 2 * kMiB).ok());
  EXPECT_EQ(Avail(), 3 * kMiB);
  ASSERT_TRUE(store_->Destroy({b}).ok());
  EXPECT_EQ(Avail(), 5 * kMiB);
  EXPECT_TRUE(store_->Write(c, kMiB, mib, false).ok());
}

}  // namespace
}  // namespace stripefs::oss
