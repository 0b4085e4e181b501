// The client's rpc::Layout formatting; the text forms themselves are
// tested in common/layout_text_test.cc.
#include "fuse-client/layout_text.h"

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

TEST(LayoutTextTest, FileWithoutObjectsYetSaysSo) {
  rpc::Layout l;
  l.set_stripe_size(65536);
  l.set_stripe_count(1);
  l.set_stripe_offset(-1);
  EXPECT_EQ(FormatLayout(l, true),
            "stripe_size=65536 stripe_count=1 stripe_offset=-1 objects=");
}

}  // namespace
}  // namespace stripefs::client
