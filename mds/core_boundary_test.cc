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
  absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t> inos,
                                     const Exemption& exempt) override {
    std::vector<uint64_t> ex;
    for (uint64_t i : inos) {
      if (i != 0 && exempt.For(i) != 0) ex.push_back(exempt.For(i) * 1000 + i);
    }
    std::sort(ex.begin(), ex.end());
    exempts.push_back(ex);
    std::sort(inos.begin(), inos.end());
    inos.erase(std::unique(inos.begin(), inos.end()), inos.end());
    inos.erase(std::remove(inos.begin(), inos.end(), 0), inos.end());
    calls.push_back(inos);
    ++held;
    if (before_grant) before_grant();
    return MdLocks([this] { --held; });
  }
  std::vector<std::vector<uint64_t>> calls;
  // Per call: client * 1000 + ino of each exempt inode.
  std::vector<std::vector<uint64_t>> exempts;
  int held = 0;
  std::function<void()> before_grant;
  // Intent locks: each GrantFor as {owner, xid, ino, bits}; run before
  // the grant is answered (a change made meanwhile).
  absl::StatusOr<uint64_t> GrantFor(uint64_t owner, uint64_t xid,
                                    uint64_t ino, uint64_t bits) override {
    grants.push_back({owner, xid, ino, bits});
    if (during_grant) during_grant(ino);
    return 5000 + ino;
  }
  std::vector<std::vector<uint64_t>> grants;
  std::function<void(uint64_t)> during_grant;
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

TEST_F(CoreBoundaryTest, NamespaceChangesExemptTheAskingMountOnlyWhenAsked) {
  const uint64_t d = Dir(kRootIno, "d");
  const ReqId own{77, 1, /*own_md_cache=*/true};
  auto next = [x = own](uint64_t xid) mutable {
    x.xid = xid;
    return x;
  };
  // A first create on each of the 2 OSTs fills their precreate pools (a
  // create that finds its pool dry runs again after the refill, taking its
  // locks twice).
  File(d, "w1");
  File(d, "w2");
  locks_.exempts.clear();
  locks_.calls.clear();
  auto c = core_->Create(next(1), kRoot, d, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(core_->Release({}, c->handle).ok());
  ASSERT_TRUE(core_->Mkdir(next(2), kRoot, d, "sub", 0755).ok());
  ASSERT_TRUE(core_->Mknod(next(3), kRoot, d, "p", S_IFIFO | 0644, 0).ok());
  ASSERT_TRUE(core_->Symlink(next(4), kRoot, d, "s", "f").ok());
  ASSERT_TRUE(core_->Link(next(5), kRoot, c->inode.ino, d, "g").ok());
  ASSERT_TRUE(core_->Remove(next(6), kRoot, d, "g", false).ok());
  ASSERT_TRUE(core_->Remove(next(7), kRoot, d, "sub", true).ok());
  // Only the directory's lock is exempt: what a name resolves to (the
  // unlinked file) and link's inode are locked as always.
  using V = std::vector<std::vector<uint64_t>>;
  EXPECT_EQ(locks_.exempts, V(7, {77000 + d}));
  ASSERT_EQ(locks_.calls.size(), 7u);
  EXPECT_EQ(locks_.calls[5], (std::vector<uint64_t>{d, c->inode.ino}));
  // The same changes of a mount that does not ask (release N, or no
  // metadata cache), a rename and an attribute change: no exemption.
  locks_.exempts.clear();
  const ReqId plain{78, 1};
  ASSERT_TRUE(core_->Mkdir(plain, kRoot, d, "sub2", 0755).ok());
  ASSERT_TRUE(core_->Remove({78, 2}, kRoot, d, "sub2", true).ok());
  ASSERT_TRUE(core_->Rename(next(8), kRoot, d, "f", d, "f2", 0).ok());
  SetAttrArgs a;
  a.valid = kSetMode;
  a.mode = 0600;
  ASSERT_TRUE(core_->SetAttr(next(9), kRoot, c->inode.ino, a).ok());
  EXPECT_EQ(locks_.exempts, V(4));
}

TEST_F(CoreBoundaryTest, UnlinkExemptsTheChildTheMountNamed) {
  const uint64_t d = Dir(kRootIno, "d");
  const uint64_t f = File(d, "f");
  const uint64_t g = File(d, "g");
  const uint64_t h = File(d, "h");
  locks_.exempts.clear();
  locks_.calls.clear();
  // The mount names f for "f": both locks exempt. It names f for "g"
  // (its cache is behind): only the directory's. A mount without
  // own_md_cache: none.
  ASSERT_TRUE(core_->Remove({77, 1, true}, kRoot, d, "f", false, f).ok());
  ASSERT_TRUE(core_->Remove({77, 2, true}, kRoot, d, "g", false, f).ok());
  ASSERT_TRUE(core_->Remove({77, 3, false}, kRoot, d, "h", false, h).ok());
  using V = std::vector<std::vector<uint64_t>>;
  EXPECT_EQ(locks_.exempts,
            V({{77000 + d, 77000 + f}, {77000 + d}, {}}));
  EXPECT_EQ(locks_.calls, V({{d, f}, {d, g}, {d, h}}));
  EXPECT_EQ(locks_.held, 0);
}

TEST_F(CoreBoundaryTest, CreateGrantsTheIntentLockOnlyOnWhatItMade) {
  const uint64_t d = Dir(kRootIno, "d");
  File(d, "w1");  // fill both precreate pools (see above)
  File(d, "w2");
  const IntentLock intent{/*dlm_client=*/77, /*bits=*/0x33};
  // Another mount's chmod between the commit and the grant: the reply's
  // attributes are read after the grant, so they have it.
  locks_.during_grant = [&](uint64_t ino) {
    locks_.during_grant = nullptr;
    SetAttrArgs a;
    a.valid = kSetMode;
    a.mode = 0600;
    ASSERT_TRUE(core_->SetAttr({}, kRoot, ino, a).ok());
  };
  auto c = core_->Create({77, 41, true}, kRoot, d, "f", 0644,
                         O_CREAT | O_RDWR, intent);
  ASSERT_TRUE(c.ok()) << c.status();
  const uint64_t f = c->inode.ino;
  using V = std::vector<std::vector<uint64_t>>;
  EXPECT_EQ(locks_.grants,
            V({{77, 41 | (uint64_t{1} << 63), f, 0x33}}));
  EXPECT_EQ(c->intent_lock, 5000 + f);
  EXPECT_EQ(c->inode.mode & 07777, 0600u);
  // A resend (answered from its reply record), an open of an existing
  // file, a request without intent: no lock granted.
  auto again = core_->Create({77, 41, true}, kRoot, d, "f", 0644,
                             O_CREAT | O_RDWR, intent);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->intent_lock, 0u);
  auto opened = core_->Create({77, 42, true}, kRoot, d, "f", 0644,
                              O_CREAT | O_RDWR, intent);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->intent_lock, 0u);
  auto plain = core_->Create({77, 43, true}, kRoot, d, "g", 0644,
                             O_CREAT | O_RDWR);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->intent_lock, 0u);
  EXPECT_EQ(locks_.grants.size(), 1u);
  // Without a lock service nothing is asked.
  core_->set_md_locks(&no_locks_);
  auto none = core_->Create({77, 44, true}, kRoot, d, "h", 0644,
                            O_CREAT | O_RDWR, intent);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->intent_lock, 0u);
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
