#include "fuse-client/layout_text.h"

#include <cerrno>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

TEST(LayoutTextTest, FormatsFileLayoutWithObjects) {
  rpc::Layout l;
  l.set_stripe_size(1048576);
  l.set_stripe_count(4);
  l.set_stripe_offset(-1);
  for (uint32_t i = 0; i < 4; ++i) {
    auto* o = l.add_objects();
    o->set_ost(i);
    o->set_oid(17);
  }
  EXPECT_EQ(FormatLayout(l, true),
            "stripe_size=1048576 stripe_count=4 stripe_offset=-1 "
            "objects=0:17,1:17,2:17,3:17");
}

TEST(LayoutTextTest, FormatsDirectoryDefaultWithoutObjects) {
  rpc::Layout l;
  l.set_stripe_size(65536);
  l.set_stripe_count(-1);
  l.set_stripe_offset(2);
  EXPECT_EQ(FormatLayout(l, false),
            "stripe_size=65536 stripe_count=-1 stripe_offset=2");
}

TEST(LayoutTextTest, ParsesAnySubset) {
  auto s = ParseLayoutSetting("stripe_count=2");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stripe_count, 2);
  EXPECT_FALSE(s->stripe_size.has_value());
  EXPECT_FALSE(s->stripe_offset.has_value());

  s = ParseLayoutSetting("stripe_offset=1 stripe_size=131072\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stripe_size, 131072u);
  EXPECT_EQ(s->stripe_offset, 1);

  s = ParseLayoutSetting("stripe_size=2M,stripe_count=-1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stripe_size, 2u << 20);
  EXPECT_EQ(s->stripe_count, -1);
}

TEST(LayoutTextTest, ReadBackValueCanBeWrittenAgain) {
  auto s = ParseLayoutSetting(
      "stripe_size=1048576 stripe_count=4 stripe_offset=-1 objects=0:17,1:17");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stripe_size, 1048576u);
  EXPECT_EQ(s->stripe_count, 4);
  EXPECT_EQ(s->stripe_offset, -1);
}

TEST(LayoutTextTest, RejectsBadInputWithEinval) {
  for (const char* bad :
       {"", "   ", "stripe_size=0", "stripe_size=1000", "stripe_size=65537",
        "stripe_size=abc", "stripe_count=0", "stripe_count=-2",
        "stripe_offset=-5", "stripe_width=3", "stripe_count",
        "stripe_size=8G"}) {
    auto s = ParseLayoutSetting(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(ToErrno(s.status()), EINVAL) << bad;
  }
}

TEST(LayoutTextTest, FormatsDf) {
  EXPECT_EQ(FormatDf(10, 90, {{0, 100, 60, 50, 3}, {1, 200, 150, 140, 4}}),
            "mdt0 files=10 ffree=90\n"
            "ost0 total=100 free=60 avail=50 objects=3\n"
            "ost1 total=200 free=150 avail=140 objects=4\n");
}

}  // namespace
}  // namespace stripefs::client
