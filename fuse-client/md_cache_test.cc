#include "fuse-client/md_cache.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/fake_clock.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

// A DlmClient that never reaches a server: enough for the cache's maps and
// its blocking-callback handler.
std::unique_ptr<dlm::DlmClient> OfflineDlm() {
  dlm::DlmClientOptions o;
  o.address = "127.0.0.1:1";
  o.name = "md_cache_test";
  auto c = dlm::DlmClient::Start(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

Entry EntryOf(uint64_t ino, uint32_t mode) {
  Entry e;
  e.attr.ino = ino;
  e.attr.mode = mode;
  return e;
}

dlm::LockInfo LockOn(const std::string& name, dlm::LockType type) {
  dlm::LockInfo l;
  l.spec.resource = {name, type};
  l.spec.mode = dlm::LockMode::kPR;
  l.spec.bits = kMdBits;
  l.granted = true;
  return l;
}

TEST(MdCacheTest, BlockingCallbackDropsOnlyThatInode) {
  auto dlm = OfflineDlm();
  MdCache cache(dlm.get());
  constexpr uint64_t kAny = MdCache::kAnyGen;
  cache.PutAttr(5, EntryOf(5, 0100644), kAny);
  cache.PutAttr(6, EntryOf(6, 040755), kAny);
  cache.PutDentry(6, "gone", 0, kAny);
  cache.PutDentry(6, "here", 5, kAny);
  DirEntry de;
  de.name = "listed";
  de.ino = 7;
  de.entry = EntryOf(7, 0100644);
  cache.PutListing(6, {de}, kAny);

  ASSERT_TRUE(cache.GetAttr(5).has_value());
  EXPECT_EQ(cache.GetAttr(5)->attr.mode, 0100644u);
  EXPECT_EQ(cache.GetDentry(6, "gone"), std::optional<uint64_t>(0));
  EXPECT_EQ(cache.GetDentry(6, "here"), std::optional<uint64_t>(5));
  EXPECT_EQ(cache.GetDentry(6, "listed"), std::optional<uint64_t>(7));
  // A whole listing makes the directory complete: unknown = absent.
  EXPECT_EQ(cache.GetDentry(6, "unknown"), std::optional<uint64_t>(0));
  auto listing = cache.GetListing(6);
  ASSERT_NE(listing, nullptr);
  ASSERT_EQ(listing->size(), 1u);
  EXPECT_FALSE((*listing)[0].entry.has_value());  // attributes are not listed

  // An extent lock on the same name is not a metadata lock.
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kExtent), false);
  EXPECT_TRUE(cache.GetAttr(6).has_value());

  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  EXPECT_FALSE(cache.GetAttr(6).has_value());
  EXPECT_FALSE(cache.GetDentry(6, "gone").has_value());
  EXPECT_FALSE(cache.GetDentry(6, "here").has_value());
  EXPECT_FALSE(cache.GetDentry(6, "unknown").has_value());
  EXPECT_EQ(cache.GetListing(6), nullptr);
  EXPECT_TRUE(cache.GetAttr(5).has_value());

  cache.OnBlocking(LockOn("ino:5", dlm::LockType::kIbits), /*lost=*/true);
  EXPECT_FALSE(cache.GetAttr(5).has_value());
  dlm->Close(/*cancel_locks=*/false);
}

// Takes and quickly loses the lock on ino `times` times.
void QuickRevokes(MdCache& cache, uint64_t ino, int times) {
  for (int i = 0; i < times; ++i) {
    cache.NoteTaken(ino);
    cache.OnBlocking(LockOn(absl::StrCat("ino:", ino), dlm::LockType::kIbits),
                     false);
  }
}

TEST(MdCacheTest, LockAskedBackSoonAfterTakenBypassesWithGrowingWindow) {
  auto dlm = OfflineDlm();
  FakeClock clock;
  MdCache cache(dlm.get(), &clock);
  EXPECT_FALSE(cache.Bypassed(6));
  // A few quick revokes keep the cache in use.
  QuickRevokes(cache, 6, MdCache::kContendedRevokes - 1);
  EXPECT_FALSE(cache.Bypassed(6));
  cache.NoteTaken(6);
  clock.Advance(absl::Milliseconds(100));
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  EXPECT_TRUE(cache.Bypassed(6));
  EXPECT_FALSE(cache.Bypassed(7));
  // A child looked up through the bypassed directory follows it.
  cache.InheritBypass(6, 9);
  EXPECT_TRUE(cache.Bypassed(9));
  clock.Advance(MdCache::kBypassMin + absl::Milliseconds(1));
  EXPECT_FALSE(cache.Bypassed(6));
  EXPECT_FALSE(cache.Bypassed(9));
  // Contended again right after re-taking: a window twice as long.
  cache.NoteTaken(6);
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  clock.Advance(MdCache::kBypassMin + absl::Milliseconds(500));
  EXPECT_TRUE(cache.Bypassed(6));
  clock.Advance(MdCache::kBypassMin);
  EXPECT_FALSE(cache.Bypassed(6));
  EXPECT_EQ(cache.BypassCount(), 3u);
  dlm->Close(/*cancel_locks=*/false);
}

TEST(MdCacheTest, LongLivedOrLostLockDoesNotBypass) {
  auto dlm = OfflineDlm();
  FakeClock clock;
  MdCache cache(dlm.get(), &clock);
  cache.NoteTaken(6);
  clock.Advance(MdCache::kContendedLife + absl::Seconds(1));
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  EXPECT_FALSE(cache.Bypassed(6));
  // Lost (eviction): invalidated, but that is no contention.
  cache.NoteTaken(7);
  cache.OnBlocking(LockOn("ino:7", dlm::LockType::kIbits), true);
  EXPECT_FALSE(cache.Bypassed(7));
  // After a long-lived lock the count and the window start afresh.
  QuickRevokes(cache, 8, MdCache::kContendedRevokes + 1);
  clock.Advance(MdCache::kBypassMax);
  cache.NoteTaken(8);
  clock.Advance(MdCache::kContendedLife + absl::Seconds(1));
  cache.OnBlocking(LockOn("ino:8", dlm::LockType::kIbits), false);
  QuickRevokes(cache, 8, MdCache::kContendedRevokes - 1);
  EXPECT_FALSE(cache.Bypassed(8));
  QuickRevokes(cache, 8, 1);
  EXPECT_TRUE(cache.Bypassed(8));
  clock.Advance(MdCache::kBypassMin + absl::Milliseconds(1));
  EXPECT_FALSE(cache.Bypassed(8));
  dlm->Close(/*cancel_locks=*/false);
}


// The generation rule: a fill that read the MDS before a drop or an own
// change of the inode landed is refused (it would bring back stale state).
TEST(MdCacheTest, StaleFillLosesToDropAndOwnChange) {
  auto dlm = OfflineDlm();
  MdCache cache(dlm.get());
  const uint64_t g0 = cache.Gen(6);
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  EXPECT_FALSE(cache.PutAttr(6, EntryOf(6, 040755), g0));
  EXPECT_FALSE(cache.PutDentry(6, "a", 0, g0));
  EXPECT_FALSE(cache.GetAttr(6).has_value());
  EXPECT_FALSE(cache.GetDentry(6, "a").has_value());
  const uint64_t g1 = cache.Gen(6);
  EXPECT_TRUE(cache.PutDentry(6, "a", 0, g1));  // read after the drop: kept
  // An own create of "a" while a lookup that read "a" absent is in flight.
  cache.NoteTaken(6);  // this mount holds its lock on 6
  const uint64_t lookup_gen = cache.Gen(6);
  MdCache::Change c = cache.BeginChange(6);
  EXPECT_TRUE(c.held);
  // While the change is in flight nothing about 6 is served or filled.
  EXPECT_FALSE(cache.GetDentry(6, "a").has_value());
  EXPECT_FALSE(cache.PutAttr(6, EntryOf(6, 040755), cache.Gen(6)));
  cache.EndChange(c, /*ok=*/true, "a", 9, 0);
  EXPECT_EQ(cache.GetDentry(6, "a"), std::optional<uint64_t>(9));
  // The lookup's late reply (negative) must not win.
  EXPECT_FALSE(cache.PutDentry(6, "a", 0, lookup_gen));
  EXPECT_EQ(cache.GetDentry(6, "a"), std::optional<uint64_t>(9));
  dlm->Close(/*cancel_locks=*/false);
}

TEST(MdCacheTest, OwnChangeAppliesOnlyUnderALockHeldThroughout) {
  auto dlm = OfflineDlm();
  MdCache cache(dlm.get());
  constexpr uint64_t kAny = MdCache::kAnyGen;
  // No lock on 6 when the change began: dropped, not applied.
  MdCache::Change c = cache.BeginChange(6);
  EXPECT_FALSE(c.held);
  cache.NoteTaken(6);  // taken while the change was in flight
  cache.EndChange(c, true, "a", 9, 0);
  EXPECT_FALSE(cache.GetDentry(6, "a").has_value());
  // Held at the start but called back meanwhile: dropped.
  cache.PutDentry(6, "b", 5, kAny);
  c = cache.BeginChange(6);
  EXPECT_TRUE(c.held);
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  cache.NoteTaken(6);  // and taken again
  cache.EndChange(c, true, "a", 9, 0);
  EXPECT_FALSE(cache.GetDentry(6, "a").has_value());
  // Held throughout: the dentry is set (an unlink: negative), the other
  // names stay, the directory's attributes and listing go.
  cache.PutDentry(6, "b", 5, kAny);
  cache.PutAttr(6, EntryOf(6, 040755), kAny);
  cache.PutListing(6, {}, kAny);
  c = cache.BeginChange(6);
  cache.EndChange(c, true, "b", 0, 0);
  EXPECT_EQ(cache.GetDentry(6, "b"), std::optional<uint64_t>(0));
  EXPECT_FALSE(cache.GetAttr(6).has_value());
  EXPECT_EQ(cache.GetListing(6), nullptr);
  // With the directory's attributes from the reply: those are cached.
  Entry after = EntryOf(6, 040700);
  c = cache.BeginChange(6);
  cache.EndChange(c, true, "n", 13, 0, &after);
  ASSERT_TRUE(cache.GetAttr(6).has_value());
  EXPECT_EQ(cache.GetAttr(6)->attr.mode, 040700u);
  EXPECT_EQ(cache.GetDentry(6, "n"), std::optional<uint64_t>(13));
  // Two own changes in flight at once: nothing is served until both
  // ended; the later begun applies, the other (which saw it) drops.
  cache.PutDentry(6, "c", 5, kAny);
  MdCache::Change c1 = cache.BeginChange(6);
  MdCache::Change c2 = cache.BeginChange(6);
  cache.EndChange(c2, true, "x", 11, 0);
  EXPECT_FALSE(cache.GetDentry(6, "c").has_value());  // c1 in flight
  cache.EndChange(c1, true, "y", 12, 0);
  EXPECT_FALSE(cache.GetDentry(6, "c").has_value());
  EXPECT_FALSE(cache.GetDentry(6, "x").has_value());
  EXPECT_FALSE(cache.GetDentry(6, "y").has_value());
  // A failed change drops too (it may or may not have happened).
  cache.PutDentry(6, "d", 5, kAny);
  c = cache.BeginChange(6);
  cache.EndChange(c, false, "d", 0, 0);
  EXPECT_FALSE(cache.GetDentry(6, "d").has_value());
  dlm->Close(/*cancel_locks=*/false);
}

TEST(MdCacheTest, CompleteDirectoryAnswersMissingNamesUntilDropped) {
  auto dlm = OfflineDlm();
  MdCache cache(dlm.get());
  constexpr uint64_t kAny = MdCache::kAnyGen;
  cache.NoteTaken(6);
  EXPECT_TRUE(cache.WorthProbing(6));
  EXPECT_FALSE(cache.GetDentry(6, "new").has_value());
  // An empty directory listed whole: every name is known absent.
  cache.PutListing(6, {}, kAny);
  EXPECT_FALSE(cache.WorthProbing(6));
  EXPECT_EQ(cache.GetDentry(6, "new"), std::optional<uint64_t>(0));
  // Own changes keep it complete: the created name is there, others
  // still absent; an unlink makes the name absent again.
  MdCache::Change c = cache.BeginChange(6);
  EXPECT_FALSE(cache.GetDentry(6, "new").has_value());  // change in flight
  cache.EndChange(c, true, "new", 9, 0);
  EXPECT_EQ(cache.GetDentry(6, "new"), std::optional<uint64_t>(9));
  EXPECT_EQ(cache.GetDentry(6, "other"), std::optional<uint64_t>(0));
  c = cache.BeginChange(6);
  cache.EndChange(c, true, "new", 0, 9);
  EXPECT_EQ(cache.GetDentry(6, "new"), std::optional<uint64_t>(0));
  // A failed own change, a callback: no longer complete.
  c = cache.BeginChange(6);
  cache.EndChange(c, false, "x", 0, 0);
  EXPECT_FALSE(cache.GetDentry(6, "other").has_value());
  EXPECT_TRUE(cache.WorthProbing(6));
  cache.PutListing(6, {}, kAny);
  cache.Drop(6);  // as a callback or a lost lock does
  EXPECT_FALSE(cache.GetDentry(6, "other").has_value());
  // Too big to list: not probed again until dropped; a stale mark loses.
  const uint64_t gen = cache.Gen(6);
  cache.MarkBig(6, gen);
  EXPECT_FALSE(cache.WorthProbing(6));
  cache.Drop(6);
  EXPECT_TRUE(cache.WorthProbing(6));
  cache.MarkBig(6, gen);
  EXPECT_TRUE(cache.WorthProbing(6));
  // A lock asked back soon after it was taken twice in a row (renames'
  // early cancels): its listing would not last, not probed.
  QuickRevokes(cache, 6, 1);
  EXPECT_TRUE(cache.WorthProbing(6));
  QuickRevokes(cache, 6, 1);
  EXPECT_FALSE(cache.WorthProbing(6));
  dlm->Close(/*cancel_locks=*/false);
}

}  // namespace
}  // namespace stripefs::client
