// ObjectStore::ListObjects (object_store_list.cc): the objects of a target
// in id order with their sizes, a page at a time, for stripefs fsck.
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "oss/object_store.h"

namespace stripefs::oss {
namespace {

TEST(ObjectStoreListTest, ListsExistingObjectsWithSizesInPages) {
  const char* tmp = getenv("TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/oss_list.XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  {
    auto store = ObjectStore::Open({.data_dir = dir + "/ost"});
    ASSERT_TRUE(store.ok()) << store.status();
    ObjectStore& s = **store;
    auto first = s.Precreate(5);  // 1..5
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(*first, 1u);
    ASSERT_TRUE(s.Write(2, 0, "abc", false).ok());
    ASSERT_TRUE(s.Write(4, 1000, "x", false).ok());
    ASSERT_TRUE(s.Destroy({3}).ok());

    std::vector<std::pair<uint64_t, uint64_t>> seen;
    uint64_t after = 0;
    bool done = false;
    for (int page = 0; page < 10 && !done; ++page) {
      auto objects = s.ListObjects(after, 2, &done);
      ASSERT_TRUE(objects.ok()) << objects.status();
      EXPECT_LE(objects->size(), 2u);
      for (const auto& o : *objects) {
        seen.push_back({o.oid, o.size});
        after = o.oid;
      }
    }
    EXPECT_TRUE(done);
    EXPECT_EQ(seen, (std::vector<std::pair<uint64_t, uint64_t>>{
                        {1, 0}, {2, 3}, {4, 1001}, {5, 0}}));
    auto none = s.ListObjects(5, 10, &done);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
    EXPECT_TRUE(done);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace stripefs::oss
