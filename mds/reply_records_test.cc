// Exactly-once modifying requests: reply records of MdsCore (a resent
// request with the same (client_id, xid) is answered from its record, never
// executed again), their encoding, their survival across a restart and
// their pruning. In-memory store, fake OSTs, fake clock.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "common/fault_points.h"
#include "gtest/gtest.h"
#include "mds/core_test_util.h"
#include "mds/mds_core.h"
#include "mds/records.h"

namespace stripefs::mds {
namespace {

constexpr uint64_t kClient = 0x1234;

class ReplyRecordTest : public CoreTestBase {
 protected:
  ReplyRecordTest() : CoreTestBase(2) {}

  ReqId Req() { return {kClient, ++xid_}; }
};

TEST(ReplyRecordEncoding, RoundTripsAndRefusesGarbage) {
  ReplyRec r;
  r.commit_sec = 1'700'000'123;
  r.ino = 42;
  r.handle = 7;
  r.truncated = true;
  r.has_inode = true;
  r.inode.ino = 42;
  r.inode.mode = S_IFREG | 0600;
  r.inode.layout.objects = {{1, 99}};
  auto d = DecodeReply(EncodeReply(r));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->commit_sec, r.commit_sec);
  EXPECT_EQ(d->ino, 42u);
  EXPECT_EQ(d->handle, 7u);
  EXPECT_TRUE(d->truncated);
  ASSERT_TRUE(d->has_inode);
  EXPECT_EQ(d->inode.mode, S_IFREG | 0600u);
  EXPECT_EQ(d->inode.layout.objects, r.inode.layout.objects);

  ReplyRec bare;  // a status-only reply (Rename, Remove, ...)
  d = DecodeReply(EncodeReply(bare));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ino, 0u);
  EXPECT_FALSE(d->has_inode);

  std::string v = EncodeReply(r);
  EXPECT_EQ(Err(DecodeReply(v.substr(0, 10))), EIO);
  EXPECT_EQ(Err(DecodeReply(EncodeReply(bare) + "x")), EIO);
  EXPECT_EQ(Err(DecodeReply("")), EIO);
  // Index keys sort by time first, so pruning reads a prefix range.
  EXPECT_LT(ReplyTimeKey(5, ~0ULL, ~0ULL), ReplyTimeKey(6, 0, 0));
  EXPECT_EQ(ReplyTimeKey(5, 1, 2).size(), kReplyTimeKeySize);
}

TEST_F(ReplyRecordTest, MkdirResentAnswersTheSameAndMakesOneDirectory) {
  const ReqId req = Req();
  auto first = core_->Mkdir(req, kRoot, kRootIno, "d", 0755);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint64_t inodes = core_->InodeCount();
  auto again = core_->Mkdir(req, kRoot, kRootIno, "d", 0755);
  ASSERT_TRUE(again.ok()) << again.status();  // not EEXIST
  EXPECT_EQ(again->ino, first->ino);
  EXPECT_EQ(again->mode, S_IFDIR | 0755u);
  EXPECT_EQ(core_->InodeCount(), inodes);
  EXPECT_EQ(Attr(kRootIno).nlink, 3u);
  EXPECT_EQ(List(kRootIno), std::vector<std::string>{"d"});
  // A new request for the same name is executed: EEXIST.
  EXPECT_EQ(Err(core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755)), EEXIST);
}

TEST_F(ReplyRecordTest, CreateResentReturnsTheSameHandleAndInode) {
  const ReqId req = Req();
  const uint32_t flags = O_CREAT | O_EXCL | O_RDWR;
  auto first = core_->Create(req, kRoot, kRootIno, "f", 0644, flags);
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = core_->Create(req, kRoot, kRootIno, "f", 0644, flags);
  ASSERT_TRUE(again.ok()) << again.status();  // not EEXIST
  EXPECT_EQ(again->handle, first->handle);
  EXPECT_EQ(again->inode.ino, first->inode.ino);
  EXPECT_EQ(again->inode.layout.objects, first->inode.layout.objects);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  const ReqId rel = Req();
  ASSERT_TRUE(core_->Release(rel, first->handle).ok());
  EXPECT_TRUE(core_->Release(rel, first->handle).ok());  // not EBADF
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  EXPECT_EQ(Err(core_->Release(Req(), first->handle)), EBADF);
}

TEST_F(ReplyRecordTest, OpenWithTruncateResentKeepsItsAnswer) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core_->UpdateSize(Req(), kRoot, c->inode.ino, 100, std::nullopt,
                                false)
                  .ok());
  const ReqId req = Req();
  auto first = core_->Open(req, kRoot, c->inode.ino, O_RDWR | O_TRUNC);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->truncated);
  auto again = core_->Open(req, kRoot, c->inode.ino, O_RDWR | O_TRUNC);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->handle, first->handle);
  EXPECT_TRUE(again->truncated);  // executed again it would say false
  EXPECT_EQ(core_->OpenHandleCount(), 2u);
}

TEST_F(ReplyRecordTest, RenameRemoveAndLinkResentAreAppliedOnce) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "a", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core_->Release(Req(), c->handle).ok());
  const ReqId ren = Req();
  ASSERT_TRUE(core_->Rename(ren, kRoot, kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_TRUE(
      core_->Rename(ren, kRoot, kRootIno, "a", kRootIno, "b", 0).ok());  // !ENOENT
  EXPECT_EQ(List(kRootIno), std::vector<std::string>{"b"});

  const ReqId link = Req();
  auto l1 = core_->Link(link, kRoot, c->inode.ino, kRootIno, "c");
  ASSERT_TRUE(l1.ok());
  EXPECT_EQ(l1->nlink, 2u);
  auto l2 = core_->Link(link, kRoot, c->inode.ino, kRootIno, "c");
  ASSERT_TRUE(l2.ok()) << l2.status();  // not EEXIST
  EXPECT_EQ(l2->nlink, 2u);
  EXPECT_EQ(Attr(c->inode.ino).nlink, 2u);

  const ReqId rm = Req();
  ASSERT_TRUE(core_->Remove(rm, kRoot, kRootIno, "c", false).ok());
  EXPECT_TRUE(core_->Remove(rm, kRoot, kRootIno, "c", false).ok());  // !ENOENT
  EXPECT_EQ(Attr(c->inode.ino).nlink, 1u);
  EXPECT_EQ(List(kRootIno), std::vector<std::string>{"b"});
  // Resent after the inode is gone: the committed answer.
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "b", false).ok());
  auto l3 = core_->Link(link, kRoot, c->inode.ino, kRootIno, "c");
  ASSERT_TRUE(l3.ok()) << l3.status();
  EXPECT_EQ(l3->ino, c->inode.ino);
  EXPECT_TRUE(List(kRootIno).empty());
}

TEST_F(ReplyRecordTest, AttributeChangesResentAnswerTheCurrentInode) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  const uint64_t ino = c->inode.ino;

  const ReqId set = Req();
  SetAttrArgs a;
  a.valid = kSetMode;
  a.mode = 0600;
  ASSERT_TRUE(core_->SetAttr(set, kRoot, ino, a).ok());
  const ReqId xc = Req();
  ASSERT_TRUE(core_->SetXattr(xc, kRoot, ino, "user.k", "1", kXattrCreate).ok());
  EXPECT_TRUE(
      core_->SetXattr(xc, kRoot, ino, "user.k", "1", kXattrCreate).ok());  // !EEXIST
  const ReqId xr = Req();
  ASSERT_TRUE(core_->RemoveXattr(xr, kRoot, ino, "user.k").ok());
  EXPECT_TRUE(core_->RemoveXattr(xr, kRoot, ino, "user.k").ok());  // !ENODATA
  EXPECT_EQ(Err(core_->GetXattr(kRoot, ino, "user.k")), ENODATA);

  const ReqId grow = Req();
  ASSERT_TRUE(
      core_->UpdateSize(grow, kRoot, ino, 4096, std::nullopt, false).ok());
  SetAttrArgs t;
  t.valid = kSetSize;
  t.size = 10;
  ASSERT_TRUE(core_->SetAttr(Req(), kRoot, ino, t).ok());
  auto g = core_->UpdateSize(grow, kRoot, ino, 4096, std::nullopt, false);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->size, 10u);  // not grown again: current attributes
  auto s = core_->SetAttr(set, kRoot, ino, a);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->mode, S_IFREG | 0600u);
  EXPECT_EQ(s->size, 10u);

  auto d = core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755);
  ASSERT_TRUE(d.ok());
  const ReqId lay = Req();
  auto l1 = core_->SetLayout(lay, kRoot, d->ino, 1 << 20, 2, std::nullopt);
  ASSERT_TRUE(l1.ok()) << l1.status();
  auto l2 = core_->SetLayout(lay, kRoot, d->ino, 1 << 20, 2, std::nullopt);
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2->stripe_count, 2);
}

TEST_F(ReplyRecordTest, SymlinkAndMknodResent) {
  const ReqId sl = Req();
  auto s1 = core_->Symlink(sl, kRoot, kRootIno, "l", "target");
  ASSERT_TRUE(s1.ok());
  auto s2 = core_->Symlink(sl, kRoot, kRootIno, "l", "target");
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_EQ(s2->ino, s1->ino);
  const ReqId mk = Req();
  auto m1 = core_->Mknod(mk, kRoot, kRootIno, "p", S_IFIFO | 0644, 0);
  ASSERT_TRUE(m1.ok());
  auto m2 = core_->Mknod(mk, kRoot, kRootIno, "p", S_IFIFO | 0644, 0);
  ASSERT_TRUE(m2.ok()) << m2.status();
  EXPECT_EQ(m2->ino, m1->ino);
  EXPECT_EQ(List(kRootIno), (std::vector<std::string>{"l", "p"}));
}

// Only successes commit, so a failed request leaves no record: its resend
// is executed again and fails the same way.
TEST_F(ReplyRecordTest, FailuresAndClientZeroLeaveNoRecord) {
  ASSERT_TRUE(core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755).ok());
  const ReqId req = Req();
  EXPECT_EQ(Err(core_->Mkdir(req, kRoot, kRootIno, "d", 0755)), EEXIST);
  EXPECT_EQ(Err(core_->Mkdir(req, kRoot, kRootIno, "d", 0755)), EEXIST);
  const ReqId anon{0, 77};
  ASSERT_TRUE(core_->Mkdir(anon, kRoot, kRootIno, "e", 0755).ok());
  EXPECT_EQ(Err(core_->Mkdir(anon, kRoot, kRootIno, "e", 0755)), EEXIST);
  // The same xid from another client is another request.
  const ReqId other{kClient + 1, req.xid};
  EXPECT_EQ(Err(core_->Mkdir(other, kRoot, kRootIno, "d", 0755)), EEXIST);
}

// mds.after_commit=drop: committed, reply lost as a cut connection would
// lose it; the resend gets the answer and the server's in-memory state is
// that of a sent reply (the handle is usable and released once).
TEST_F(ReplyRecordTest, DroppedReplyIsAnsweredFromTheRecord) {
  ASSERT_TRUE(fault::Configure("mds.after_commit=drop", 1).ok());
  const ReqId req = Req();
  auto lost = core_->Create(req, kRoot, kRootIno, "f", 0644,
                            O_CREAT | O_EXCL | O_RDWR);
  EXPECT_TRUE(absl::IsUnavailable(lost.status())) << lost.status();
  EXPECT_EQ(fault::Fired("mds.after_commit"), 1u);
  auto again = core_->Create(req, kRoot, kRootIno, "f", 0644,
                             O_CREAT | O_EXCL | O_RDWR);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  ASSERT_TRUE(core_->Release(Req(), again->handle).ok());
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  EXPECT_EQ(List(kRootIno), std::vector<std::string>{"f"});
}

// Records are in the store: a restarted server (a crash) answers a resend
// from them. A handle kept for reopening whose Create reply was lost is
// taken up by the resend.
TEST_F(ReplyRecordTest, RecordsSurviveARestart) {
  const ReqId mk = Req();
  auto d = core_->Mkdir(mk, kRoot, kRootIno, "d", 0755);
  ASSERT_TRUE(d.ok());
  const ReqId cr = Req();
  auto c = core_->Create(cr, kRoot, kRootIno, "f", 0644,
                         O_CREAT | O_EXCL | O_RDWR);
  ASSERT_TRUE(c.ok());
  Restart({.keep_open_handles = true});
  EXPECT_EQ(core_->PendingReopenCount(), 1u);
  auto d2 = core_->Mkdir(mk, kRoot, kRootIno, "d", 0755);
  ASSERT_TRUE(d2.ok()) << d2.status();
  EXPECT_EQ(d2->ino, d->ino);
  EXPECT_EQ(Attr(kRootIno).nlink, 3u);
  auto c2 = core_->Create(cr, kRoot, kRootIno, "f", 0644,
                          O_CREAT | O_EXCL | O_RDWR);
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->handle, c->handle);
  EXPECT_EQ(core_->PendingReopenCount(), 0u);  // in use again
  auto expired = core_->ExpireReopenWindow();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 0u);
  ASSERT_TRUE(core_->Release(Req(), c->handle).ok());
  // A forced start discards the handle: the resend says so instead of
  // handing out a handle that no longer exists.
  const ReqId cr2 = Req();
  auto g = core_->Create(cr2, kRoot, kRootIno, "g", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(g.ok());
  Restart({.keep_open_handles = false});
  EXPECT_EQ(Err(core_->Create(cr2, kRoot, kRootIno, "g", 0644,
                              O_CREAT | O_RDWR)),
            ESTALE);
}

TEST_F(ReplyRecordTest, OldRecordsArePrunedAndTheirResendsExecuted) {
  const ReqId old_req = Req();
  ASSERT_TRUE(core_->Mkdir(old_req, kRoot, kRootIno, "old", 0755).ok());
  clock_.Advance(absl::Minutes(6));
  const ReqId young_req = Req();
  ASSERT_TRUE(core_->Mkdir(young_req, kRoot, kRootIno, "young", 0755).ok());
  auto none = core_->PruneReplyRecords();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);  // both younger than 10 min
  clock_.Advance(absl::Minutes(5));
  auto pruned = core_->PruneReplyRecords();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 1u);
  // The old record is gone: its resend is executed (and finds the name).
  EXPECT_EQ(Err(core_->Mkdir(old_req, kRoot, kRootIno, "old", 0755)), EEXIST);
  EXPECT_TRUE(core_->Mkdir(young_req, kRoot, kRootIno, "young", 0755).ok());
  // Across a restart too, with a shorter retention, once the new instance
  // has run for the retention (before, a previous instance's record may be
  // younger than its wall-clock stamp says).
  Restart({.reply_retention = absl::Minutes(1)});
  pruned = core_->PruneReplyRecords();
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 0u);
  clock_.Advance(absl::Minutes(1));
  pruned = core_->PruneReplyRecords();
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 1u);
  EXPECT_EQ(Err(core_->Mkdir(young_req, kRoot, kRootIno, "young", 0755)),
            EEXIST);
  // Nothing of either key is left.
  auto it = store_->NewIterator();
  for (it->Seek(kReplyTimePrefix); it->Valid(); it->Next()) {
    EXPECT_NE(it->key()[0], 'r');
    break;
  }
  EXPECT_FALSE(store_->Get(ReplyKey(kClient, young_req.xid))->has_value());
}

// A forward step of the wall clock larger than the
// retention must not prune a record seconds old (its resend would run
// again); records age on the steady clock.
TEST_F(ReplyRecordTest, WallClockStepDoesNotPruneYoungRecords) {
  FakeClock steady{absl::FromUnixSeconds(5)};
  Restart({.steady_clock = &steady});
  steady.Advance(absl::Minutes(11));  // this instance ran past the retention
  clock_.Advance(absl::Minutes(11));
  const ReqId req = Req();
  ASSERT_TRUE(core_->Mkdir(req, kRoot, kRootIno, "d", 0755).ok());
  clock_.Advance(absl::Hours(2));  // the wall clock steps forward
  steady.Advance(absl::Seconds(5));
  auto pruned = core_->PruneReplyRecords();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 0u);
  // Answered from its record, not executed again (EEXIST).
  EXPECT_TRUE(core_->Mkdir(req, kRoot, kRootIno, "d", 0755).ok());
  // A real ten minutes later it goes.
  steady.Advance(absl::Minutes(10));
  pruned = core_->PruneReplyRecords();
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 1u);
  EXPECT_EQ(Err(core_->Mkdir(req, kRoot, kRootIno, "d", 0755)), EEXIST);
}

// ... nor a young record of the previous instance right after a restart,
// whatever the wall clock did while the MDS was down.
TEST_F(ReplyRecordTest, RestartKeepsPreviousRecordsForARetention) {
  const ReqId req = Req();
  ASSERT_TRUE(core_->Mkdir(req, kRoot, kRootIno, "d", 0755).ok());
  clock_.Advance(absl::Hours(1));  // stepped while down
  Restart();
  auto pruned = core_->PruneReplyRecords();
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 0u);
  EXPECT_TRUE(core_->Mkdir(req, kRoot, kRootIno, "d", 0755).ok());
}

// A resent O_TRUNC open must not tell the client to
// truncate the objects again once the file changed since (another mount
// wrote: it would zero those bytes).
TEST_F(ReplyRecordTest, OpenWithTruncateResentAfterAWriteDoesNotTruncate) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core_->UpdateSize(Req(), kRoot, c->inode.ino, 100, std::nullopt,
                                false)
                  .ok());
  const ReqId req = Req();
  auto first = core_->Open(req, kRoot, c->inode.ino, O_RDWR | O_TRUNC);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->truncated);
  // Another mount writes 50 bytes after the open committed.
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(core_->UpdateSize({0x999, 1}, kRoot, c->inode.ino, 50,
                                std::nullopt, false)
                  .ok());
  auto again = core_->Open(req, kRoot, c->inode.ino, O_RDWR | O_TRUNC);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->handle, first->handle);
  EXPECT_FALSE(again->truncated);
  EXPECT_EQ(again->inode.size, 50u);
}

// Handle ids are never handed out twice, across a crash
// too, and a handle answers only the client that owns it.
TEST_F(ReplyRecordTest, HandleIdsAreNotReusedAfterACrash) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  auto o = core_->Open(Req(), kRoot, c->inode.ino, O_RDWR);
  ASSERT_TRUE(o.ok());
  ASSERT_TRUE(core_->Release(Req(), o->handle).ok());
  ASSERT_TRUE(core_->Release(Req(), c->handle).ok());
  Restart({.keep_open_handles = true});  // a crash: no H key left
  auto o2 = core_->Open(Req(), kRoot, c->inode.ino, O_RDWR);
  ASSERT_TRUE(o2.ok());
  EXPECT_GT(o2->handle, o->handle);
}

TEST_F(ReplyRecordTest, OnlyTheOwnerReleasesOrTruncatesThroughAHandle) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  const ReqId other{0x777, 1};
  SetAttrArgs a;
  a.valid = kSetSize;
  a.size = 0;
  a.handle = c->handle;
  EXPECT_EQ(Err(core_->SetAttr(other, kRoot, c->inode.ino, a)), EBADF);
  EXPECT_EQ(Err(core_->Release(other, c->handle)), EBADF);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  // Owner unknown (client 0) keeps working, and the owner itself.
  EXPECT_TRUE(core_->SetAttr({}, kRoot, c->inode.ino, a).ok());
  EXPECT_TRUE(core_->Release(Req(), c->handle).ok());
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
}

// A mutation whose write fails leaves the inode count
// as it was, however often it is retried.
TEST_F(ReplyRecordTest, FailedWritesDoNotMiscountInodes) {
  auto c = core_->Create(Req(), kRoot, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(core_->Remove(Req(), kRoot, kRootIno, "f", false).ok());
  const uint64_t inodes = core_->InodeCount();  // the orphan still counts
  store_->SetReadOnly(true);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(core_->Release(Req(), c->handle).ok());
  }
  EXPECT_EQ(core_->InodeCount(), inodes);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(core_->Mkdir(Req(), kRoot, kRootIno, "d", 0755).ok());
  }
  EXPECT_EQ(core_->InodeCount(), inodes);
  store_->SetReadOnly(false);
  ASSERT_TRUE(core_->Release(Req(), c->handle).ok());  // reclaims it
  EXPECT_EQ(core_->InodeCount(), inodes - 1);
  Restart();
  EXPECT_EQ(core_->InodeCount(), inodes - 1);
}

}  // namespace
}  // namespace stripefs::mds
