// The object ranges that data locks cover (pure arithmetic of
// data_locks.h; the locking itself is covered end to end by
// tests/e2e/test_extent_locks.py and test_coherence_data.py).
#include "fuse-client/data_locks.h"

#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

FileLayout Layout(uint64_t stripe_size, int count) {
  FileLayout l;
  l.stripe_size = stripe_size;
  for (int i = 0; i < count; ++i) {
    l.objects.push_back({static_cast<uint32_t>(i), 100u + i});
  }
  return l;
}

TEST(ObjectResourceTest, NamesOstAndObject) {
  EXPECT_EQ(ObjResource(3, 17), "obj:3:17");
}

TEST(ObjectExtentsTest, OneObjectIsTheFileRange) {
  auto e = ObjectExtents(Layout(1 << 20, 1), 5000, 10000);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].stripe, 0u);
  EXPECT_EQ(e[0].start, 5000u);
  EXPECT_EQ(e[0].end, 14999u);
}

TEST(ObjectExtentsTest, StripedRangeCoversEachObjectOnce) {
  // 64 KiB units over 4 objects; [60 KiB, 60 KiB + 300 KiB) touches units
  // 0..5: object 0 units 0 and 4, object 1 units 1 and 5, objects 2, 3.
  const uint64_t k = 1024;
  auto e = ObjectExtents(Layout(64 * k, 4), 60 * k, 300 * k);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].start, 60 * k);  // unit 0 from 60 KiB
  EXPECT_EQ(e[0].end, 128 * k - 1);  // through unit 4 (object bytes 64..128K)
  EXPECT_EQ(e[1].start, 0u);
  EXPECT_EQ(e[1].end, 64 * k + (360 - 320) * k - 1);  // unit 5 up to 360 KiB
  EXPECT_EQ(e[2].start, 0u);
  EXPECT_EQ(e[2].end, 64 * k - 1);
  EXPECT_EQ(e[3].end, 64 * k - 1);
}

TEST(ObjectExtentsTest, EmptyRangeOrLayoutTouchesNothing) {
  EXPECT_TRUE(ObjectExtents(Layout(1 << 20, 2), 100, 0).empty());
  EXPECT_TRUE(ObjectExtents(FileLayout{}, 0, 100).empty());
}

TEST(ContendedChunkTest, AboutOneMebibyteOfFilePerChunk) {
  const uint64_t k = 1024;
  EXPECT_EQ(ContendedChunk(Layout(1 << 20, 1)), 1u << 20);
  EXPECT_EQ(ContendedChunk(Layout(64 * k, 4)), 256 * k);  // 1 MiB of file
  EXPECT_EQ(ContendedChunk(Layout(1 << 20, 4)), 1u << 20);  // a whole unit
  EXPECT_EQ(ContendedChunk(Layout(4 << 20, 1)), 4u << 20);
}

}  // namespace
}  // namespace stripefs::client
