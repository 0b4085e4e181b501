// stripefs_mds_core on its own: this binary links only the core library
// (no stripefs_proto, no gRPC), and the generated headers are not on its
// include path. It also checks, with a recording MdLockTaker, which
// metadata locks the core's changes take.
#include <fcntl.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "gtest/gtest.h"
#include "mds/core_test_util.h"
#include "mds/md_lock_taker.h"
#include "mds/mds_core.h"

#if __has_include("rpc/proto/common.pb.h")
#error "the generated protobuf headers must not be reachable from the MDS core"
#endif

namespace stripefs::mds {
namespace {

// Records each LockInodes call (sorted, without zeros and duplicates, as
// a real taker locks them) and how many locks are held.
class RecordingLocks final : public MdLockTaker {
 public:
  bool enabled() const override { return true; }
  absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t> inos) override {
    std::sort(inos.begin(), inos.end());
    inos.erase(std::unique(inos.begin(), inos.end()), inos.end());
    inos.erase(std::remove(inos.begin(), inos.end(), 0), inos.end());
    calls.push_back(inos);
    ++held;
    if (before_grant) before_grant();
    return MdLocks([this] { --held; });
  }
  std::vector<std::vector<uint64_t>> calls;
  int held = 0;
  std::function<void()> before_grant;
};

class CoreBoundaryTest : public CoreTestBase {
 protected:
  CoreBoundaryTest() : CoreTestBase(2) {}
  void SetUp() override {
    CoreTestBase::SetUp();
    core_->set_md_locks(&locks_);
  }
  uint64_t File(uint64_t dir, const std::string& name) {
    auto r = core_->Create({}, kRoot, dir, name, 0644, O_CREAT | O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return 0;
    EXPECT_TRUE(core_->Release({}, r->handle).ok());
    return r->inode.ino;
  }
  uint64_t Dir(uint64_t parent, const std::string& name) {
    auto r = core_->Mkdir({}, kRoot, parent, name, 0755);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->ino : 0;
  }
  RecordingLocks locks_;
  NoMdLocks no_locks_;
};

TEST_F(CoreBoundaryTest, ChangesLockTheInodesTheyTouch) {
  const uint64_t d = Dir(kRootIno, "d");
  const uint64_t f = File(d, "f");
  locks_.calls.clear();
  SetAttrArgs a;
  a.valid = kSetMode;
  a.mode = 0600;
  ASSERT_TRUE(core_->SetAttr({}, kRoot, f, a).ok());
  ASSERT_TRUE(core_->Link({}, kRoot, f, kRootIno, "g").ok());
  ASSERT_TRUE(core_->SetXattr({}, kRoot, f, "user.x", "1", 0).ok());
  ASSERT_TRUE(core_->Remove({}, kRoot, d, "f", false).ok());
  ASSERT_TRUE(core_->Rename({}, kRoot, kRootIno, "g", d, "h", 0).ok());
  EXPECT_EQ(locks_.calls,
            (std::vector<std::vector<uint64_t>>{{f},
                                                {kRootIno, f},
                                                {f},
                                                {d, f},
                                                {kRootIno, d, f}}));
  EXPECT_EQ(locks_.held, 0);  // all given back
  // Reads take none.
  locks_.calls.clear();
  ASSERT_TRUE(core_->Lookup(kRoot, d, "h").ok());
  ASSERT_TRUE(core_->GetAttr(f).ok());
  EXPECT_TRUE(locks_.calls.empty());
}

TEST_F(CoreBoundaryTest, ANameMovedBeforeItsLockIsResolvedAgain) {
  const uint64_t a = File(kRootIno, "a");
  const uint64_t b = File(kRootIno, "b");
  locks_.calls.clear();
  // Between the first resolution of "a" and its lock, "a" becomes b.
  bool moved = false;
  locks_.before_grant = [&] {
    if (moved) return;
    moved = true;
    locks_.before_grant = nullptr;
    core_->set_md_locks(&no_locks_);  // the rename of another client
    ASSERT_TRUE(core_->Rename({}, kRoot, kRootIno, "b", kRootIno, "a", 0).ok());
    core_->set_md_locks(&locks_);
  };
  ASSERT_TRUE(core_->Remove({}, kRoot, kRootIno, "a", false).ok());
  // Tried under the lock of a first, then again under b's.
  EXPECT_EQ(locks_.calls, (std::vector<std::vector<uint64_t>>{
                              {kRootIno, a}, {kRootIno, b}}));
  EXPECT_EQ(locks_.held, 0);
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, "a")), ENOENT);
  EXPECT_EQ(Err(core_->GetAttr(b)), ENOENT);  // b was removed, not a
}

}  // namespace
}  // namespace stripefs::mds
