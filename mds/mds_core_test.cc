// Unit tests of MdsCore on the in-memory store with fake OSTs.
#include "mds/mds_core.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <thread>

#include "common/fault_points.h"
#include "gtest/gtest.h"
#include "mds/core_test_util.h"

namespace stripefs::mds {
namespace {

const Cred kAlice{1000, 1000, {1000, 50}};
const Cred kBob{1001, 1001, {1001}};

class MdsCoreTest : public CoreTestBase {
 protected:
  MdsCoreTest() : CoreTestBase(4, /*real_clock=*/true) {}

  ReqId Req() { return {7, ++xid_}; }

  Inode MustCreate(uint64_t parent, const std::string& name,
                   uint32_t mode = 0644, const Cred& c = kRoot) {
    auto r = core_->Create(Req(), c, parent, name, mode, O_CREAT | O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_TRUE(core_->Release(Req(), r->handle).ok());
    return r->inode;
  }
  Inode MustMkdir(uint64_t parent, const std::string& name,
                  uint32_t mode = 0755, const Cred& c = kRoot) {
    auto r = core_->Mkdir(Req(), c, parent, name, mode);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Inode{};
  }
};

TEST_F(MdsCoreTest, RootIsFormatted) {
  Inode root = Attr(kRootIno);
  EXPECT_EQ(root.mode, S_IFDIR | 0755u);
  EXPECT_EQ(root.nlink, 2u);
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.layout.stripe_size, 1u << 20);
  EXPECT_EQ(root.layout.stripe_count, 1);
  EXPECT_GT(root.ctime.sec, 1600000000);
}

TEST_F(MdsCoreTest, CreateLookupAndExcl) {
  Inode f = MustCreate(kRootIno, "a");
  EXPECT_EQ(f.mode, S_IFREG | 0644u);
  EXPECT_EQ(f.nlink, 1u);
  ASSERT_EQ(f.layout.objects.size(), 1u);
  auto l = core_->Lookup(kRoot, kRootIno, "a");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->ino, f.ino);
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, "nope")), ENOENT);
  EXPECT_EQ(Err(core_->Create(Req(), kRoot, kRootIno, "a", 0644,
                              O_CREAT | O_EXCL | O_RDWR)),
            EEXIST);
  // Without O_EXCL an existing file is opened.
  auto again = core_->Create(Req(), kRoot, kRootIno, "a", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->inode.ino, f.ino);
  EXPECT_NE(again->handle, 0u);
  EXPECT_TRUE(core_->Release(Req(), again->handle).ok());
  EXPECT_EQ(Err(core_->Release(Req(), again->handle)), EBADF);
  EXPECT_EQ(Err(core_->GetAttr(9999)), ENOENT);
}

TEST_F(MdsCoreTest, FaultPointsAroundTheCommit) {
  // Before the commit: the request fails and nothing of it is there.
  ASSERT_TRUE(fault::Configure("mds.before_commit=error", 1).ok());
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755)), EIO);
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, "d")), ENOENT);
  Inode d = MustMkdir(kRootIno, "d");  // fired once: works again
  EXPECT_EQ(Attr(kRootIno).nlink, 3u);
  // After the commit: the change is made, only the reply is lost.
  ASSERT_TRUE(fault::Configure("mds.after_commit=error", 1).ok());
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, d.ino, "e", 0755)), EIO);
  EXPECT_TRUE(core_->Lookup(kRoot, d.ino, "e").ok());
  EXPECT_EQ(fault::Fired("mds.after_commit"), 1u);
  ASSERT_TRUE(fault::Configure("", 1).ok());
  // The state on disk is what the core serves.
  Restart();
  EXPECT_TRUE(core_->Lookup(kRoot, d.ino, "e").ok());
  EXPECT_EQ(List(kRootIno), std::vector<std::string>{"d"});
}

TEST_F(MdsCoreTest, BadNames) {
  std::string long_name(256, 'x');
  EXPECT_EQ(Err(core_->Create(Req(), kRoot, kRootIno, long_name, 0644, O_RDWR)),
            ENAMETOOLONG);
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, long_name)), ENAMETOOLONG);
  EXPECT_TRUE(core_->Mkdir(Req(), kRoot, kRootIno, std::string(255, 'y'), 0755).ok());
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, kRootIno, "a/b", 0755)), EINVAL);
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, kRootIno, "", 0755)), EINVAL);
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, kRootIno, ".", 0755)), EEXIST);
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, kRootIno, "..", 0755)), EEXIST);
  EXPECT_EQ(Err(core_->Remove(Req(), kRoot, kRootIno, ".", true)), EINVAL);
  EXPECT_EQ(Err(core_->Remove(Req(), kRoot, kRootIno, "..", true)), ENOTEMPTY);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, ".", kRootIno, "z", 0)),
            EBUSY);
  EXPECT_EQ(Err(core_->Symlink(Req(), kRoot, kRootIno, "s", std::string(5000, 'a'))),
            ENAMETOOLONG);
}

TEST_F(MdsCoreTest, InodeNumbersAreNeverReused) {
  Inode a = MustCreate(kRootIno, "a");
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "a", false).ok());
  Inode b = MustCreate(kRootIno, "b");
  EXPECT_GT(b.ino, a.ino);
  Restart();
  Inode c = MustCreate(kRootIno, "c");
  EXPECT_GT(c.ino, b.ino);
}

TEST_F(MdsCoreTest, CreatesUsePrecreatedPool) {
  std::set<uint32_t> osts_used;
  for (int i = 0; i < 100; ++i) {
    Inode f = MustCreate(kRootIno, "f" + std::to_string(i));
    ASSERT_EQ(f.layout.objects.size(), 1u);
    osts_used.insert(f.layout.objects[0].ost);
  }
  EXPECT_EQ(osts_used.size(), 4u);  // round robin
  // 100 creates over 4 OSTs with batches of 64: one precreate per OST.
  EXPECT_LE(osts_->precreate_calls(), 4);
  // After a restart the remaining pool is not reused (a power cut may have
  // lost files that wrote to its objects) but destroyed, not leaked.
  int calls = osts_->precreate_calls();
  Restart();
  Inode after = MustCreate(kRootIno, "after");
  EXPECT_EQ(osts_->precreate_calls(), calls + 1);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  size_t objects = 0;
  for (uint32_t i = 0; i < 4; ++i) objects += osts_->ObjectCount(i);
  const uint32_t ost = after.layout.objects[0].ost;
  // 101 files in use; the new pool's rest on one OST; the pools of the
  // other OSTs are destroyed once each OST precreates again.
  EXPECT_EQ(osts_->ObjectCount(ost), 25u + 1u + 63u);
  EXPECT_LE(objects, 101u + 63u + 3u * 64u);
}

TEST_F(MdsCoreTest, StripeAllAndOffsetAndRefill) {
  auto l = core_->SetLayout(Req(), kRoot, kRootIno, 0, -1, 2);
  ASSERT_TRUE(l.ok()) << l.status();
  Inode f = MustCreate(kRootIno, "wide");
  ASSERT_EQ(f.layout.objects.size(), 4u);
  EXPECT_EQ(f.layout.objects[0].ost, 2u);
  std::set<uint32_t> distinct;
  for (auto& o : f.layout.objects) {
    distinct.insert(o.ost);
    EXPECT_TRUE(osts_->Exists(o.ost, o.oid));
  }
  EXPECT_EQ(distinct.size(), 4u);
  // Background refill tops the pools up.
  for (int i = 0; i < 60; ++i) MustCreate(kRootIno, "w" + std::to_string(i));
  EXPECT_LT(core_->PooledObjects(0), 8u);
  core_->RefillPools();
  EXPECT_GE(core_->PooledObjects(0), 8u);
}

TEST_F(MdsCoreTest, FailingOstIsSkipped) {
  osts_->SetFailing(1, true);
  std::set<uint32_t> used;
  for (int i = 0; i < 8; ++i) {
    Inode f = MustCreate(kRootIno, "f" + std::to_string(i));
    ASSERT_EQ(f.layout.objects.size(), 1u);
    used.insert(f.layout.objects[0].ost);
  }
  EXPECT_EQ(used.count(1), 0u);
}

// A precreate on demand (made outside the core's lock, the create waiting
// for it) may wait long for an OSS that is away (a restart) only when no
// other OST can supply the object; otherwise it waits briefly, the file
// goes elsewhere, and the OST is left alone for a growing while.
TEST_F(MdsCoreTest, OnDemandPrecreateWaitsLongOnlyWithoutAlternative) {
  // Nothing pooled anywhere: the first create must wait for its OST.
  MustCreate(kRootIno, "first");
  EXPECT_EQ(osts_->last_precreate_wait(), MdsCore::kOnDemandWait);
  core_->RefillPools();
  // Drain ost1's pool through a directory whose files start there.
  Inode d = MustMkdir(kRootIno, "on1");
  ASSERT_TRUE(core_->SetLayout(Req(), kRoot, d.ino, 0, 1, 1).ok());
  const uint64_t pooled = core_->PooledObjects(1);
  for (uint64_t i = 0; i < pooled; ++i) {
    ASSERT_EQ(MustCreate(d.ino, "f" + std::to_string(i)).layout.objects[0].ost,
              1u);
  }
  ASSERT_EQ(core_->PooledObjects(1), 0u);
  osts_->SetFailing(1, true);
  const int calls = osts_->precreate_calls();
  Inode g = MustCreate(d.ino, "g");
  EXPECT_EQ(osts_->last_precreate_wait(), MdsCore::kOnDemandShortWait);
  EXPECT_EQ(osts_->precreate_calls(), calls + 1);
  EXPECT_NE(g.layout.objects[0].ost, 1u);  // the next OST stood in
  // Within the retry backoff ost1 is not asked again.
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(MustCreate(d.ino, "h" + std::to_string(i)).layout.objects[0].ost,
              1u);
  }
  EXPECT_EQ(osts_->precreate_calls(), calls + 1);
  // A file that needs every OST leaves none to stand in: ost1 is asked
  // again, backoff or not, and waited for (its OSS may be back).
  Inode all = MustMkdir(kRootIno, "all");
  ASSERT_TRUE(core_->SetLayout(Req(), kRoot, all.ino, 0, -1, std::nullopt).ok());
  Inode w = MustCreate(all.ino, "w");
  EXPECT_EQ(osts_->precreate_calls(), calls + 2);
  EXPECT_EQ(osts_->last_precreate_wait(), MdsCore::kOnDemandWait);
  EXPECT_EQ(w.layout.objects.size(), 3u);  // ost1 failed: the other three
}

TEST_F(MdsCoreTest, LayoutValidation) {
  EXPECT_EQ(Err(core_->SetLayout(Req(), kRoot, kRootIno, 1000, 0, std::nullopt)), EINVAL);
  EXPECT_EQ(Err(core_->SetLayout(Req(), kRoot, kRootIno, 0, 5, std::nullopt)), EINVAL);
  EXPECT_EQ(Err(core_->SetLayout(Req(), kRoot, kRootIno, 0, -2, std::nullopt)), EINVAL);
  EXPECT_EQ(Err(core_->SetLayout(Req(), kRoot, kRootIno, 0, 0, 7)), EINVAL);
  EXPECT_EQ(Err(core_->SetLayout(Req(), kRoot, kRootIno, 0, 0, -3)), EINVAL);
  Inode d = MustMkdir(kRootIno, "d");
  ASSERT_TRUE(core_->SetLayout(Req(), kRoot, d.ino, 4 << 20, 2, std::nullopt).ok());
  Inode sub = MustMkdir(d.ino, "sub");  // mkdir copies the default
  auto gl = core_->GetLayout(kRoot, sub.ino);
  ASSERT_TRUE(gl.ok());
  EXPECT_EQ(gl->stripe_size, 4u << 20);
  EXPECT_EQ(gl->stripe_count, 2);
  Inode f = MustCreate(sub.ino, "f");
  EXPECT_EQ(f.layout.objects.size(), 2u);
  EXPECT_EQ(f.layout.stripe_size, 4u << 20);
  // Replace a new file's layout; the old objects get destroyed.
  auto nl = core_->SetLayout(Req(), kRoot, f.ino, 0, 3, std::nullopt);
  ASSERT_TRUE(nl.ok());
  EXPECT_EQ(nl->objects.size(), 3u);
  auto destroyed = core_->DrainDestroyQueue();
  ASSERT_TRUE(destroyed.ok());
  EXPECT_EQ(*destroyed, 2u);
  for (auto& o : f.layout.objects) EXPECT_FALSE(osts_->Exists(o.ost, o.oid));
  ASSERT_TRUE(core_->UpdateSize(Req(), kRoot, f.ino, 10, std::nullopt, false).ok());
  EXPECT_EQ(Err(core_->SetLayout(Req(), kRoot, f.ino, 0, 1, std::nullopt)), EBUSY);
}

// mds.before_destroy: the unlink is committed, the objects stay queued
// (and on the OST) until a later drain; mds.after_destroy: destroyed on the
// OST but still queued, so the next drain destroys them again, harmlessly.
TEST_F(MdsCoreTest, FaultPointsOnTheDestroyPath) {
  Inode a = MustCreate(kRootIno, "a");
  Inode b = MustCreate(kRootIno, "b");
  const auto& oa = a.layout.objects.at(0);
  const auto& ob = b.layout.objects.at(0);
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "a", false).ok());
  ASSERT_TRUE(fault::Configure("mds.before_destroy=error", 1).ok());
  EXPECT_EQ(Err(core_->DrainDestroyQueue().status()), EIO);
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, "a")), ENOENT);
  EXPECT_TRUE(osts_->Exists(oa.ost, oa.oid));
  auto destroyed = core_->DrainDestroyQueue();
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u);
  EXPECT_FALSE(osts_->Exists(oa.ost, oa.oid));
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "b", false).ok());
  ASSERT_TRUE(fault::Configure("mds.after_destroy=error", 1).ok());
  EXPECT_EQ(Err(core_->DrainDestroyQueue().status()), EIO);
  EXPECT_FALSE(osts_->Exists(ob.ost, ob.oid));
  ASSERT_TRUE(fault::Configure("", 1).ok());
  Restart();  // the queue is on disk
  destroyed = core_->DrainDestroyQueue();
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(*destroyed, 1u);
  destroyed = core_->DrainDestroyQueue();
  ASSERT_TRUE(destroyed.ok());
  EXPECT_EQ(*destroyed, 0u);
}

TEST_F(MdsCoreTest, MkdirRmdir) {
  Inode d = MustMkdir(kRootIno, "d");
  EXPECT_EQ(d.nlink, 2u);
  EXPECT_EQ(Attr(kRootIno).nlink, 3u);
  MustCreate(d.ino, "f");
  EXPECT_EQ(Err(core_->Remove(Req(), kRoot, kRootIno, "d", true)), ENOTEMPTY);
  EXPECT_EQ(Err(core_->Remove(Req(), kRoot, d.ino, "f", true)), ENOTDIR);
  EXPECT_EQ(Err(core_->Remove(Req(), kRoot, kRootIno, "d", false)), EISDIR);
  ASSERT_TRUE(core_->Remove(Req(), kRoot, d.ino, "f", false).ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "d", true).ok());
  EXPECT_EQ(Attr(kRootIno).nlink, 2u);
  EXPECT_EQ(Err(core_->GetAttr(d.ino)), ENOENT);
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, d.ino, "x", 0755)), ENOENT);
  auto lookup = core_->Lookup(kRoot, kRootIno, "..");
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->ino, kRootIno);
}

TEST_F(MdsCoreTest, MknodTypes) {
  auto fifo = core_->Mknod(Req(), kAlice, kRootIno, "p", S_IFIFO | 0644, 0);
  EXPECT_EQ(Err(fifo), EACCES);  // root dir is 0755 root-owned
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, kRootIno, {.valid = kSetMode, .mode = 0777}).ok());
  fifo = core_->Mknod(Req(), kAlice, kRootIno, "p", S_IFIFO | 0644, 0);
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(fifo->mode, S_IFIFO | 0644u);
  EXPECT_EQ(fifo->uid, 1000u);
  EXPECT_EQ(Err(core_->Mknod(Req(), kAlice, kRootIno, "c", S_IFCHR | 0644, 0x501)), EPERM);
  auto chr = core_->Mknod(Req(), kRoot, kRootIno, "c", S_IFCHR | 0644, 0x501);
  ASSERT_TRUE(chr.ok());
  EXPECT_EQ(chr->rdev, 0x501u);
  auto sock = core_->Mknod(Req(), kRoot, kRootIno, "s", S_IFSOCK | 0644, 0);
  ASSERT_TRUE(sock.ok());
  auto reg = core_->Mknod(Req(), kRoot, kRootIno, "r", S_IFREG | 0644, 0);
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->layout.objects.size(), 1u);
  EXPECT_EQ(Err(core_->Mknod(Req(), kRoot, kRootIno, "d", S_IFDIR | 0755, 0)), EPERM);
}

TEST_F(MdsCoreTest, LinkAndSymlink) {
  Inode f = MustCreate(kRootIno, "f");
  auto l = core_->Link(Req(), kRoot, f.ino, kRootIno, "g");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->nlink, 2u);
  EXPECT_EQ(Err(core_->Link(Req(), kRoot, f.ino, kRootIno, "g")), EEXIST);
  Inode d = MustMkdir(kRootIno, "d");
  EXPECT_EQ(Err(core_->Link(Req(), kRoot, d.ino, kRootIno, "dd")), EPERM);
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  EXPECT_EQ(Attr(f.ino).nlink, 1u);
  auto s = core_->Symlink(Req(), kRoot, kRootIno, "s", "/some/where");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->mode, S_IFLNK | 0777u);
  EXPECT_EQ(s->size, 11u);
  auto t = core_->Readlink(kRoot, s->ino);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "/some/where");
  EXPECT_EQ(Err(core_->Readlink(kRoot, f.ino)), EINVAL);
}

TEST_F(MdsCoreTest, RenameCases) {
  Inode a = MustCreate(kRootIno, "a");
  Inode b = MustCreate(kRootIno, "b");
  Inode d1 = MustMkdir(kRootIno, "d1");
  Inode d2 = MustMkdir(kRootIno, "d2");
  Inode e = MustMkdir(kRootIno, "empty");
  MustCreate(d2.ino, "x");
  // Replace a file: the replaced file's objects get destroyed.
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(core_->Lookup(kRoot, kRootIno, "b")->ino, a.ino);
  EXPECT_EQ(Err(core_->GetAttr(b.ino)), ENOENT);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_FALSE(osts_->Exists(b.layout.objects[0].ost, b.layout.objects[0].oid));
  // Across directories.
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "b", d1.ino, "moved", 0).ok());
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, "b")), ENOENT);
  EXPECT_EQ(core_->Lookup(kRoot, d1.ino, "moved")->ino, a.ino);
  // Type mismatches and non-empty targets.
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, d1.ino, "moved", kRootIno, "d2", 0)), EISDIR);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "d2", d1.ino, "moved", 0)), ENOTDIR);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "e_none", kRootIno, "zz", 0)), ENOENT);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "empty", kRootIno, "d2", 0)), ENOTEMPTY);
  // Directory over an empty directory, across parents: nlinks follow.
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "d2", d1.ino, "sub", 0).ok());
  EXPECT_EQ(Attr(d1.ino).nlink, 3u);
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "empty", d1.ino, "sub2", 0).ok());
  MustMkdir(kRootIno, "empty2");
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "empty2", d1.ino, "sub2", 0).ok());
  EXPECT_EQ(Err(core_->GetAttr(e.ino)), ENOENT);
  EXPECT_EQ(Attr(d1.ino).nlink, 4u);
  EXPECT_EQ(Attr(kRootIno).nlink, 3u);
  // Into its own subtree.
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "d1", d2.ino, "loop", 0)), EINVAL);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "d1", d1.ino, "self", 0)), EINVAL);
  // Flags.
  MustCreate(kRootIno, "p");
  MustCreate(kRootIno, "q");
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "p", kRootIno, "q", 1)), EEXIST);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "p", kRootIno, "q", 3)), EINVAL);
  EXPECT_EQ(Err(core_->Rename(Req(), kRoot, kRootIno, "p", kRootIno, "none", 2)), ENOENT);
  uint64_t p = core_->Lookup(kRoot, kRootIno, "p")->ino;
  uint64_t q = core_->Lookup(kRoot, kRootIno, "q")->ino;
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "p", kRootIno, "q", 2).ok());
  EXPECT_EQ(core_->Lookup(kRoot, kRootIno, "p")->ino, q);
  EXPECT_EQ(core_->Lookup(kRoot, kRootIno, "q")->ino, p);
  // Exchange a file with a directory across parents.
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "p", d1.ino, "sub", 2).ok());
  EXPECT_EQ(core_->Lookup(kRoot, kRootIno, "p")->ino, d2.ino);
  EXPECT_EQ(Attr(d2.ino).parent, kRootIno);
  EXPECT_EQ(Attr(d1.ino).nlink, 3u);
  // Onto a hard link of the same inode: nothing happens.
  ASSERT_TRUE(core_->Link(Req(), kRoot, p, kRootIno, "plink").ok());
  ASSERT_TRUE(core_->Rename(Req(), kRoot, kRootIno, "q", kRootIno, "plink", 0).ok());
  EXPECT_TRUE(core_->Lookup(kRoot, kRootIno, "q").ok());
  EXPECT_EQ(Attr(p).nlink, 2u);
}

TEST_F(MdsCoreTest, ReaddirCookiesStayValid) {
  Inode d = MustMkdir(kRootIno, "d");
  for (int i = 0; i < 10; ++i) MustCreate(d.ino, "f" + std::to_string(i));
  auto first = core_->Readdir(kRoot, d.ino, 0, 4, true);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->entries.size(), 4u);
  EXPECT_FALSE(first->eof);
  ASSERT_TRUE(first->entries[0].inode.has_value());
  uint64_t cookie = first->entries.back().cookie;
  // Remove an already-read and a not-yet-read entry, add new ones.
  ASSERT_TRUE(core_->Remove(Req(), kRoot, d.ino, "f1", false).ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, d.ino, "f6", false).ok());
  MustCreate(d.ino, "new1");
  std::vector<std::string> rest;
  while (true) {
    auto r = core_->Readdir(kRoot, d.ino, cookie, 4, false);
    ASSERT_TRUE(r.ok());
    for (auto& e : r->entries) {
      rest.push_back(e.name);
      cookie = e.cookie;
    }
    if (r->eof) break;
  }
  std::vector<std::string> want = {"f4", "f5", "f7", "f8", "f9", "new1"};
  EXPECT_EQ(rest, want);
  EXPECT_EQ(List(d.ino).size(), 9u);
}

TEST_F(MdsCoreTest, UnlinkWhileOpenKeepsInodeUntilRelease) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  const StripeObject obj = c->inode.layout.objects[0];
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  EXPECT_EQ(Err(core_->Lookup(kRoot, kRootIno, "f")), ENOENT);
  auto a = core_->GetAttr(c->inode.ino);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->nlink, 0u);
  ASSERT_TRUE(core_->UpdateSize(Req(), kRoot, c->inode.ino, 100, std::nullopt, false).ok());
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_TRUE(osts_->Exists(obj.ost, obj.oid));
  ASSERT_TRUE(core_->Release(Req(), c->handle).ok());
  EXPECT_EQ(Err(core_->GetAttr(c->inode.ino)), ENOENT);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_FALSE(osts_->Exists(obj.ost, obj.oid));
}

TEST_F(MdsCoreTest, RestartReclaimsOrphansAndKeepsNamespace) {
  Inode d = MustMkdir(kRootIno, "d");
  MustCreate(d.ino, "keep");
  ASSERT_TRUE(core_->SetXattr(Req(), kRoot, d.ino, "user.k", "v", 0).ok());
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  uint64_t inodes = core_->InodeCount();
  Restart();  // the handle dies with the old instance
  EXPECT_EQ(Err(core_->GetAttr(c->inode.ino)), ENOENT);
  EXPECT_EQ(core_->InodeCount(), inodes - 1);
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  auto reopened = core_->Open(Req(), kRoot, d.ino, O_RDONLY);
  ASSERT_TRUE(reopened.ok());
  EXPECT_GT(reopened->handle, c->handle);  // handle ids are not reused
  EXPECT_TRUE(core_->Lookup(kRoot, d.ino, "keep").ok());
  EXPECT_EQ(*core_->GetXattr(kRoot, d.ino, "user.k"), "v");
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  const StripeObject obj = c->inode.layout.objects[0];
  EXPECT_FALSE(osts_->Exists(obj.ost, obj.oid));
}

// Controlled failover: after a clean stop the handles wait for their
// clients; an unlinked-while-open file survives the restart with its
// objects; its owner reopens the same handle, another client cannot.
TEST_F(MdsCoreTest, KeptHandlesAreReopenedByTheirOwner) {
  auto c = core_->Create({7, ++xid_}, kRoot, kRootIno, "f", 0644,
                         O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  auto o = core_->Create({8, ++xid_}, kRoot, kRootIno, "g", 0644,
                         O_CREAT | O_RDWR);
  ASSERT_TRUE(o.ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  ASSERT_TRUE(core_->UpdateSize(Req(), kRoot, c->inode.ino, 4096,
                                std::nullopt, false)
                  .ok());
  const StripeObject obj = c->inode.layout.objects[0];
  Restart({.keep_open_handles = true});
  EXPECT_EQ(core_->OpenHandleCount(), 2u);
  EXPECT_EQ(core_->PendingReopenCount(), 2u);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_TRUE(osts_->Exists(obj.ost, obj.oid));
  // Client 8 cannot take client 7's handle; a wrong inode is refused too.
  EXPECT_EQ(Err(core_->Reopen({8, ++xid_}, c->handle, c->inode.ino)), ESTALE);
  EXPECT_EQ(Err(core_->Reopen({7, ++xid_}, c->handle, o->inode.ino)), ESTALE);
  EXPECT_EQ(Err(core_->Reopen({7, ++xid_}, c->handle + 1000, c->inode.ino)),
            ESTALE);
  auto r = core_->Reopen({7, ++xid_}, c->handle, c->inode.ino);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->handle, c->handle);
  EXPECT_EQ(r->inode.size, 4096u);
  EXPECT_EQ(r->inode.nlink, 0u);
  // Repeated (a resent reopen): same answer.
  ASSERT_TRUE(core_->Reopen({7, ++xid_}, c->handle, c->inode.ino).ok());
  EXPECT_EQ(core_->PendingReopenCount(), 1u);
  // The window ends: g's handle (not reopened) goes, f's stays.
  auto expired = core_->ExpireReopenWindow();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  EXPECT_EQ(Err(core_->Reopen({8, ++xid_}, o->handle, o->inode.ino)), ESTALE);
  EXPECT_EQ(Err(core_->Release({8, ++xid_}, o->handle)), EBADF);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_TRUE(osts_->Exists(obj.ost, obj.oid));
  // A new open gets a handle never used before.
  auto fresh = core_->Open(Req(), kRoot, o->inode.ino, O_RDONLY);
  ASSERT_TRUE(fresh.ok());
  EXPECT_GT(fresh->handle, o->handle);
  // The last release of the reopened handle reclaims the orphan.
  ASSERT_TRUE(core_->Release({7, ++xid_}, c->handle).ok());
  EXPECT_EQ(Err(core_->GetAttr(c->inode.ino)), ENOENT);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_FALSE(osts_->Exists(obj.ost, obj.oid));
}

TEST_F(MdsCoreTest, ExpiredWindowReclaimsOrphansNotReopened) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  const StripeObject obj = c->inode.layout.objects[0];
  Restart({.keep_open_handles = true});
  EXPECT_TRUE(core_->GetAttr(c->inode.ino).ok());
  auto expired = core_->ExpireReopenWindow();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 1u);
  EXPECT_EQ(Err(core_->GetAttr(c->inode.ino)), ENOENT);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_FALSE(osts_->Exists(obj.ost, obj.oid));
  // The discard is persisted: a later clean restart keeps nothing.
  Restart({.keep_open_handles = true});
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  EXPECT_EQ(Err(core_->Reopen(Req(), c->handle, c->inode.ino)), ESTALE);
}

// A forced start (keep_open_handles false) discards the handles: their
// reopen is ESTALE while new opens work.
TEST_F(MdsCoreTest, DiscardedHandlesAreStale) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  Restart({.keep_open_handles = false});
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  auto r = core_->Reopen(Req(), c->handle, c->inode.ino);
  EXPECT_EQ(Err(r), ESTALE);
  EXPECT_NE(std::string(r.status().message()).find("opened again"),
            std::string::npos);
  auto n = core_->Open(Req(), kRoot, c->inode.ino, O_RDWR);
  ASSERT_TRUE(n.ok());
  EXPECT_GT(n->handle, c->handle);
}

TEST_F(MdsCoreTest, DestroyRetriesAfterOstFailure) {
  Inode f = MustCreate(kRootIno, "f");
  const StripeObject obj = f.layout.objects[0];
  osts_->SetFailing(obj.ost, true);
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  EXPECT_FALSE(core_->DrainDestroyQueue().ok());
  EXPECT_TRUE(osts_->Exists(obj.ost, obj.oid));
  osts_->SetFailing(obj.ost, false);
  ASSERT_TRUE(core_->DrainDestroyQueue().ok());
  EXPECT_FALSE(osts_->Exists(obj.ost, obj.oid));
}

TEST_F(MdsCoreTest, Xattrs) {
  Inode f = MustCreate(kRootIno, "f");
  EXPECT_EQ(Err(core_->GetXattr(kRoot, f.ino, "user.a")), ENODATA);
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, f.ino, "user.a", "1", kXattrReplace)), ENODATA);
  ASSERT_TRUE(core_->SetXattr(Req(), kRoot, f.ino, "user.a", "1", kXattrCreate).ok());
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, f.ino, "user.a", "2", kXattrCreate)), EEXIST);
  ASSERT_TRUE(core_->SetXattr(Req(), kRoot, f.ino, "user.a", "2", kXattrReplace).ok());
  EXPECT_EQ(*core_->GetXattr(kRoot, f.ino, "user.a"), "2");
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, f.ino, "user.big", std::string(65537, 'x'), 0)), E2BIG);
  EXPECT_TRUE(core_->SetXattr(Req(), kRoot, f.ino, "user.max", std::string(65536, 'x'), 0).ok());
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, f.ino, "user." + std::string(251, 'n'), "v", 0)), ERANGE);
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, f.ino, "system.x", "v", 0)), EOPNOTSUPP);
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, f.ino, "weird", "v", 0)), EOPNOTSUPP);
  ASSERT_TRUE(core_->SetXattr(Req(), kRoot, f.ino, "trusted.t", "v", 0).ok());
  ASSERT_TRUE(core_->SetXattr(Req(), kRoot, f.ino, "security.s", "v", 0).ok());
  auto all = core_->ListXattr(kRoot, f.ino);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  // Non-root: trusted.* is invisible and unwritable.
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, f.ino, {.valid = kSetMode, .mode = 0666}).ok());
  auto alice = core_->ListXattr(kAlice, f.ino);
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->size(), 3u);
  EXPECT_EQ(Err(core_->SetXattr(Req(), kAlice, f.ino, "trusted.x", "v", 0)), EPERM);
  EXPECT_EQ(Err(core_->GetXattr(kAlice, f.ino, "trusted.t")), ENODATA);
  EXPECT_TRUE(core_->SetXattr(Req(), kAlice, f.ino, "user.alice", "v", 0).ok());
  ASSERT_TRUE(core_->RemoveXattr(Req(), kRoot, f.ino, "user.a").ok());
  EXPECT_EQ(Err(core_->RemoveXattr(Req(), kRoot, f.ino, "user.a")), ENODATA);
  // user.* only on files and directories.
  auto fifo = core_->Mknod(Req(), kRoot, kRootIno, "p", S_IFIFO | 0666, 0);
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(Err(core_->SetXattr(Req(), kRoot, fifo->ino, "user.a", "v", 0)), EPERM);
  // Read permission needed for user.* values.
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, f.ino, {.valid = kSetMode, .mode = 0600}).ok());
  EXPECT_EQ(Err(core_->GetXattr(kAlice, f.ino, "user.alice")), EACCES);
}

TEST_F(MdsCoreTest, PermissionsOnDirectories) {
  Inode pub = MustMkdir(kRootIno, "pub", 0777);
  Inode priv = MustMkdir(kRootIno, "priv", 0700);
  EXPECT_EQ(Err(core_->Create(Req(), kAlice, priv.ino, "x", 0644, O_RDWR)), EACCES);
  EXPECT_EQ(Err(core_->Lookup(kAlice, priv.ino, "x")), EACCES);
  EXPECT_EQ(Err(core_->Readdir(kAlice, priv.ino, 0, 10, false)), EACCES);
  Inode af = MustCreate(pub.ino, "alice_file", 0644, kAlice);
  EXPECT_EQ(af.uid, 1000u);
  EXPECT_EQ(af.gid, 1000u);
  // Without sticky, bob may remove alice's file.
  MustCreate(pub.ino, "alice2", 0644, kAlice);
  EXPECT_TRUE(core_->Remove(Req(), kBob, pub.ino, "alice2", false).ok());
  // Sticky: only owners (or root) may remove or rename.
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, pub.ino, {.valid = kSetMode, .mode = 01777}).ok());
  EXPECT_EQ(Err(core_->Remove(Req(), kBob, pub.ino, "alice_file", false)), EPERM);
  EXPECT_EQ(Err(core_->Rename(Req(), kBob, pub.ino, "alice_file", pub.ino, "mine", 0)), EPERM);
  EXPECT_TRUE(core_->Rename(Req(), kAlice, pub.ino, "alice_file", pub.ino, "renamed", 0).ok());
  EXPECT_TRUE(core_->Remove(Req(), kRoot, pub.ino, "renamed", false).ok());
}

TEST_F(MdsCoreTest, SetgidDirectoryInheritance) {
  Inode d = MustMkdir(kRootIno, "g", 0777);
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, d.ino,
                             {.valid = kSetMode | kSetGid, .mode = 02777, .gid = 50})
                  .ok());
  Inode f = MustCreate(d.ino, "f", 0644, kBob);
  EXPECT_EQ(f.gid, 50u);
  auto sub = core_->Mkdir(Req(), kBob, d.ino, "sub", 0755);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->gid, 50u);
  EXPECT_TRUE(sub->mode & S_ISGID);
}

TEST_F(MdsCoreTest, ChmodChownRules) {
  Inode pub = MustMkdir(kRootIno, "pub", 0777);
  Inode f = MustCreate(pub.ino, "f", 0644, kAlice);
  EXPECT_EQ(Err(core_->SetAttr(Req(), kBob, f.ino, {.valid = kSetMode, .mode = 0777})), EPERM);
  // Owner not in the file's group: chmod g+s is dropped.
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, f.ino, {.valid = kSetGid, .gid = 777}).ok());
  auto m = core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetMode, .mode = 06755});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->mode & 07777, 04755u);
  // chown only by root; chgrp by the owner to one of its groups.
  EXPECT_EQ(Err(core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetUid, .uid = 1001})), EPERM);
  EXPECT_EQ(Err(core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetGid, .gid = 1001})), EPERM);
  auto g = core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetGid, .gid = 50});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->gid, 50u);
  EXPECT_EQ(g->mode & S_ISUID, 0u);  // chown by non-root clears suid
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, f.ino, {.valid = kSetMode, .mode = 06755}).ok());
  auto r = core_->SetAttr(Req(), kRoot, f.ino, {.valid = kSetUid, .uid = 1001});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uid, 1001u);
  EXPECT_EQ(r->mode & 07777, 0755u);  // root chown of group-exec file too
}

TEST_F(MdsCoreTest, TimesAndTruncatePermissions) {
  Inode pub = MustMkdir(kRootIno, "pub", 0777);
  Inode f = MustCreate(pub.ino, "f", 0644, kAlice);
  SetAttrArgs explicit_times{.valid = kSetAtime | kSetMtime};
  explicit_times.atime = {1000, 5};
  explicit_times.mtime = {2000, 123456789};
  EXPECT_EQ(Err(core_->SetAttr(Req(), kBob, f.ino, explicit_times)), EPERM);
  auto t = core_->SetAttr(Req(), kAlice, f.ino, explicit_times);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->mtime, (Timespec{2000, 123456789}));
  EXPECT_EQ(t->atime, (Timespec{1000, 5}));
  EXPECT_EQ(Err(core_->SetAttr(Req(), kBob, f.ino, {.valid = kSetAtimeNow | kSetMtimeNow})), EACCES);
  ASSERT_TRUE(core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetMode, .mode = 0666}).ok());
  auto now = core_->SetAttr(Req(), kBob, f.ino, {.valid = kSetAtimeNow | kSetMtimeNow});
  ASSERT_TRUE(now.ok());
  EXPECT_GT(now->mtime.sec, 1600000000);
  // Truncate needs write permission, or a writable handle.
  ASSERT_TRUE(core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetMode, .mode = 0644}).ok());
  EXPECT_EQ(Err(core_->SetAttr(Req(), kBob, f.ino, {.valid = kSetSize, .size = 5})), EACCES);
  auto sz = core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetSize, .size = 5});
  ASSERT_TRUE(sz.ok());
  EXPECT_EQ(sz->size, 5u);
  EXPECT_EQ(Err(core_->SetAttr(Req(), kAlice, f.ino, {.valid = kSetSize, .size = ~0ULL})), EFBIG);
  auto ro = core_->Open(Req(), kAlice, f.ino, O_RDONLY);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(Err(core_->SetAttr(Req(), kAlice, f.ino,
                               {.valid = kSetSize, .size = 0, .handle = ro->handle})),
            EINVAL);
  ASSERT_TRUE(core_->Release(Req(), ro->handle).ok());
  EXPECT_EQ(Err(core_->SetAttr(Req(), kRoot, pub.ino, {.valid = kSetSize, .size = 0})), EISDIR);
}

TEST_F(MdsCoreTest, OpenChecksAccessAndTruncates) {
  Inode pub = MustMkdir(kRootIno, "pub", 0777);
  Inode f = MustCreate(pub.ino, "f", 0640, kAlice);
  ASSERT_TRUE(core_->UpdateSize(Req(), kAlice, f.ino, 4096, std::nullopt, false).ok());
  EXPECT_EQ(Err(core_->Open(Req(), kBob, f.ino, O_RDONLY)), EACCES);
  Cred alice_group_member{1002, 1002, {1000}};
  EXPECT_TRUE(core_->Open(Req(), alice_group_member, f.ino, O_RDONLY).ok());
  EXPECT_EQ(Err(core_->Open(Req(), alice_group_member, f.ino, O_WRONLY)), EACCES);
  EXPECT_EQ(Err(core_->Open(Req(), alice_group_member, f.ino, O_RDONLY | O_TRUNC)), EACCES);
  auto tr = core_->Open(Req(), kAlice, f.ino, O_WRONLY | O_TRUNC);
  ASSERT_TRUE(tr.ok());
  EXPECT_TRUE(tr->truncated);
  EXPECT_EQ(tr->inode.size, 0u);
  EXPECT_EQ(Attr(f.ino).size, 0u);
  EXPECT_EQ(Err(core_->Open(Req(), kRoot, pub.ino, O_RDWR)), EISDIR);
  // Root may not execute a file without x bits.
  EXPECT_EQ(Err(core_->Access(kRoot, f.ino, X_OK)), EACCES);
  EXPECT_TRUE(core_->Access(kRoot, f.ino, R_OK | W_OK).ok());
  EXPECT_TRUE(core_->Access(kBob, f.ino, F_OK).ok());
  EXPECT_EQ(Err(core_->Access(kBob, f.ino, R_OK)), EACCES);
}

TEST_F(MdsCoreTest, UpdateSizeGrowsOnlyAndKillsPriv) {
  Inode f = MustCreate(kRootIno, "f", 06775);
  auto a = core_->UpdateSize(Req(), kRoot, f.ino, 1000, Timespec{5000, 7}, false);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size, 1000u);
  EXPECT_EQ(a->mtime, (Timespec{5000, 7}));
  auto b = core_->UpdateSize(Req(), kRoot, f.ino, 10, std::nullopt, true);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size, 1000u);
  EXPECT_EQ(b->mode & 07777, 0775u);
  EXPECT_EQ(Err(core_->UpdateSize(Req(), kRoot, f.ino, 1ULL << 63, std::nullopt, false)), EFBIG);
  EXPECT_EQ(Err(core_->UpdateSize(Req(), kRoot, kRootIno, 1, std::nullopt, false)), EISDIR);
}

TEST_F(MdsCoreTest, StatfsSumsOsts) {
  MustCreate(kRootIno, "f");
  auto s = core_->Statfs();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->blocks, 4 * ((1ULL << 30) / 4096));
  EXPECT_EQ(s->bfree, 4 * ((1ULL << 29) / 4096));
  EXPECT_EQ(s->files - s->ffree, 2u);
  EXPECT_EQ(s->namelen, 255u);
}

TEST_F(MdsCoreTest, ConcurrentCreatesWithBackgroundThreads) {
  MdsOptions opts;
  core_.reset();
  opts.precreate_batch = 32;
  opts.precreate_low_water = 16;
  opts.destroy_batch_delay = absl::Milliseconds(10);
  core_ = std::make_unique<MdsCore>(store_.get(), osts_.get(), RealClock(), opts);
  ASSERT_TRUE(core_->Start().ok());
  std::vector<std::thread> threads;
  std::vector<std::vector<StripeObject>> objs(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        auto r = core_->Create({uint64_t(t), uint64_t(i)}, kRoot, kRootIno,
                               "t" + std::to_string(t) + "_" + std::to_string(i),
                               0644, O_CREAT | O_EXCL | O_RDWR);
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_TRUE(core_->Release({uint64_t(t), 1000u + i}, r->handle).ok());
        objs[t].push_back(r->inode.layout.objects[0]);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::pair<uint32_t, uint64_t>> all;
  for (auto& v : objs) {
    for (auto& o : v) all.insert({o.ost, o.oid});
  }
  EXPECT_EQ(all.size(), 600u);  // no object handed out twice
  EXPECT_EQ(List(kRootIno).size(), 600u);
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 150; ++i) {
      ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno,
                                "t" + std::to_string(t) + "_" + std::to_string(i),
                                false)
                      .ok());
    }
  }
  // The destroy thread removes every object without being asked.
  size_t destroyed = 0;
  for (int i = 0; i < 100 && destroyed < 600; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    destroyed = 0;
    for (uint32_t o = 0; o < 4; ++o) destroyed += osts_->destroyed(o).size();
  }
  EXPECT_EQ(destroyed, 600u);
  EXPECT_EQ(core_->InodeCount(), 1u);
  EXPECT_EQ(List(kRootIno).size(), 0u);
}

}  // namespace
}  // namespace stripefs::mds
