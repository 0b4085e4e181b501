#include "fuse-client/md_cache.h"

#include <memory>

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

rpc::Entry EntryOf(uint64_t ino, uint32_t mode) {
  rpc::Entry e;
  e.mutable_attr()->set_ino(ino);
  e.mutable_attr()->set_mode(mode);
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
  cache.PutAttr(5, EntryOf(5, 0100644));
  cache.PutAttr(6, EntryOf(6, 040755));
  cache.PutDentry(6, "gone", 0);
  cache.PutDentry(6, "here", 5);
  rpc::DirEntry de;
  de.set_name("listed");
  de.set_ino(7);
  de.mutable_entry()->mutable_attr()->set_ino(7);
  cache.PutListing(6, {de});

  ASSERT_TRUE(cache.GetAttr(5).has_value());
  EXPECT_EQ(cache.GetAttr(5)->attr().mode(), 0100644u);
  EXPECT_EQ(cache.GetDentry(6, "gone"), std::optional<uint64_t>(0));
  EXPECT_EQ(cache.GetDentry(6, "here"), std::optional<uint64_t>(5));
  EXPECT_EQ(cache.GetDentry(6, "listed"), std::optional<uint64_t>(7));
  EXPECT_FALSE(cache.GetDentry(6, "unknown").has_value());
  auto listing = cache.GetListing(6);
  ASSERT_NE(listing, nullptr);
  ASSERT_EQ(listing->size(), 1u);
  EXPECT_FALSE((*listing)[0].has_entry());  // attributes are not listed

  // An extent lock on the same name is not a metadata lock.
  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kExtent), false);
  EXPECT_TRUE(cache.GetAttr(6).has_value());

  cache.OnBlocking(LockOn("ino:6", dlm::LockType::kIbits), false);
  EXPECT_FALSE(cache.GetAttr(6).has_value());
  EXPECT_FALSE(cache.GetDentry(6, "gone").has_value());
  EXPECT_FALSE(cache.GetDentry(6, "here").has_value());
  EXPECT_EQ(cache.GetListing(6), nullptr);
  EXPECT_TRUE(cache.GetAttr(5).has_value());

  cache.OnBlocking(LockOn("ino:5", dlm::LockType::kIbits), /*lost=*/true);
  EXPECT_FALSE(cache.GetAttr(5).has_value());
  dlm->Close(/*cancel_locks=*/false);
}

}  // namespace
}  // namespace stripefs::client
