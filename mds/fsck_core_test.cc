// MdsCore's side of stripefs fsck (mds_core_fsck.cc): the per-OST horizon
// and reserved pools, and the paged list of the objects the inodes and the
// destroy queue reference.
#include <fcntl.h>

#include <map>
#include <set>

#include "gtest/gtest.h"
#include "mds/core_test_util.h"
#include "mds/mds_core.h"

namespace stripefs::mds {
namespace {

class FsckCoreTest : public CoreTestBase {
 protected:
  FsckCoreTest() : CoreTestBase(2) {}
  ReqId Req() { return {9, ++xid_}; }

  // Every reference, read max_refs at a time.
  std::vector<FsckRef> AllRefs(size_t max_refs) {
    std::vector<FsckRef> out;
    std::string after;
    for (int page = 0; page < 1000; ++page) {
      auto r = core_->ListObjectRefs(after, max_refs);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      out.insert(out.end(), r->refs.begin(), r->refs.end());
      if (r->next.empty()) break;
      after = r->next;
    }
    return out;
  }
  std::map<uint32_t, FsckOst> State() {
    std::map<uint32_t, FsckOst> out;
    for (const FsckOst& o : core_->FsckState()) out[o.ost] = o;
    return out;
  }
};

TEST_F(FsckCoreTest, PoolsAreReservedUpToTheHorizon) {
  core_->RefillPools();  // 64 objects per OST: ids 1..64
  auto st = State();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].horizon, 64u);
  EXPECT_EQ(st[0].reserved,
            (std::vector<std::pair<uint64_t, uint64_t>>{{1, 65}}));
  auto f = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(f.ok()) << f.status();
  const StripeObject o = f->inode.layout.objects.at(0);
  st = State();
  EXPECT_EQ(st[o.ost].horizon, 64u);  // handed out: still below it
  EXPECT_EQ(st[o.ost].reserved,
            (std::vector<std::pair<uint64_t, uint64_t>>{{o.oid + 1, 65}}));
}

TEST_F(FsckCoreTest, RestartLeavesThePreviousPoolOutside) {
  core_->RefillPools();
  auto f = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(f.ok()) << f.status();
  const StripeObject o = f->inode.layout.objects.at(0);
  Restart();
  // Before the first precreate only ids up to the last one in use count;
  // the MDS destroys the rest of the old pool itself.
  auto st = State();
  EXPECT_EQ(st[o.ost].horizon, o.oid);
  EXPECT_TRUE(st[o.ost].reserved.empty());
}

TEST_F(FsckCoreTest, ListsFilesUnlinkedOpenAndQueuedObjectsPageByPage) {
  core_->RefillPools();
  auto d = core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(core_->SetLayout(Req(), kRoot, d->ino, 65536, 2, -1).ok());
  std::map<uint64_t, Inode> files;
  for (int i = 0; i < 5; ++i) {
    auto f = core_->Create(Req(), kRoot, d->ino, "f" + std::to_string(i), 0644,
                           O_CREAT | O_RDWR);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE(core_->Release(Req(), f->handle).ok());
    files[f->inode.ino] = f->inode;
  }
  const uint64_t sized = files.begin()->first;
  ASSERT_TRUE(
      core_->UpdateSize(Req(), kRoot, sized, 100000, std::nullopt, false).ok());
  // Unlinked while open (and open for writing).
  auto held =
      core_->Create(Req(), kRoot, d->ino, "held", 0644, O_CREAT | O_WRONLY);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, d->ino, "held", false).ok());
  // Removed: its objects wait in the destroy queue.
  Inode gone = files.rbegin()->second;
  files.erase(gone.ino);
  ASSERT_TRUE(core_->Remove(Req(), kRoot, d->ino, "f4", false).ok());

  std::vector<FsckRef> refs = AllRefs(3);  // pages of about 3
  std::set<std::pair<uint32_t, uint64_t>> seen;
  size_t file_refs = 0, unlinked = 0, queued = 0;
  for (const FsckRef& r : refs) {
    EXPECT_TRUE(seen.insert({r.ost, r.oid}).second) << r.ost << "/" << r.oid;
    switch (r.kind) {
      case FsckRef::Kind::kFile: {
        ++file_refs;
        ASSERT_TRUE(files.contains(r.ino)) << r.ino;
        const Inode& n = files[r.ino];
        EXPECT_EQ(n.layout.objects.at(r.stripe).oid, r.oid);
        EXPECT_EQ(r.stripe_count, 2u);
        EXPECT_EQ(r.stripe_size, 65536u);
        EXPECT_EQ(r.file_size, r.ino == sized ? 100000u : 0u);
        EXPECT_FALSE(r.open_for_write);
        break;
      }
      case FsckRef::Kind::kUnlinkedOpen:
        ++unlinked;
        EXPECT_EQ(r.ino, held->inode.ino);
        EXPECT_TRUE(r.open_for_write);
        break;
      case FsckRef::Kind::kDestroyQueued: {
        ++queued;
        bool in_gone = false;
        for (const auto& o : gone.layout.objects) {
          in_gone = in_gone || (o.ost == r.ost && o.oid == r.oid);
        }
        EXPECT_TRUE(in_gone) << r.ost << "/" << r.oid;
        break;
      }
    }
  }
  EXPECT_EQ(file_refs, 8u);
  EXPECT_EQ(unlinked, 2u);
  EXPECT_EQ(queued, 2u);
  // The same with one big page.
  EXPECT_EQ(AllRefs(0).size(), refs.size());
}

}  // namespace
}  // namespace stripefs::mds
