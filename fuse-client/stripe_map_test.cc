#include "fuse-client/stripe_map.h"

#include <map>
#include <random>

#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// Reference: byte-at-a-time formula from docs/internals.md.
void ByteLocation(uint64_t ss, uint32_t sc, uint64_t off, uint32_t* obj,
                  uint64_t* obj_off) {
  uint64_t u = off / ss;
  *obj = u % sc;
  *obj_off = (u / sc) * ss + off % ss;
}

// Every byte of the range must be covered once, in order, at the place the
// formula says.
void CheckCover(uint64_t ss, uint32_t sc, uint64_t off, uint64_t len) {
  std::vector<StripePiece> pieces = MapRange(ss, sc, off, len);
  uint64_t buf = 0;
  for (const StripePiece& p : pieces) {
    ASSERT_EQ(p.buf_offset, buf);
    ASSERT_GT(p.length, 0u);
    ASSERT_LT(p.stripe, sc);
    // check first and last byte of each piece
    for (uint64_t b : {uint64_t{0}, p.length - 1}) {
      uint32_t o;
      uint64_t oo;
      ByteLocation(ss, sc, off + p.buf_offset + b, &o, &oo);
      ASSERT_EQ(o, p.stripe);
      ASSERT_EQ(oo, p.obj_offset + b);
    }
    buf += p.length;
  }
  ASSERT_EQ(buf, len);
}

TEST(StripeMapTest, EmptyRangeHasNoPieces) {
  EXPECT_TRUE(MapRange(kMiB, 4, 123, 0).empty());
}

TEST(StripeMapTest, WithinOneUnit) {
  auto p = MapRange(kMiB, 4, 100, 200);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (StripePiece{0, 100, 200, 0}));
}

TEST(StripeMapTest, SecondUnitGoesToSecondObject) {
  auto p = MapRange(kMiB, 4, kMiB + 5, 10);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (StripePiece{1, 5, 10, 0}));
}

TEST(StripeMapTest, CrossingOneBoundary) {
  auto p = MapRange(kMiB, 2, kMiB - 10, 30);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], (StripePiece{0, kMiB - 10, 10, 0}));
  EXPECT_EQ(p[1], (StripePiece{1, 0, 20, 10}));
}

TEST(StripeMapTest, WrapsToSecondRowOfObjects) {
  // unit 4 with 4 objects: object 0, second unit on it.
  auto p = MapRange(kMiB, 4, 4 * kMiB + 7, 1);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (StripePiece{0, kMiB + 7, 1, 0}));
}

TEST(StripeMapTest, ManyStripesInFileOrder) {
  uint64_t ss = 64 * 1024;
  auto p = MapRange(ss, 3, 10, 10 * ss);
  ASSERT_EQ(p.size(), 11u);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_EQ(p[i].stripe, i % 3);
  CheckCover(ss, 3, 10, 10 * ss);
}

TEST(StripeMapTest, StripeCountOneIsOnePiece) {
  auto p = MapRange(kMiB, 1, kMiB / 2, 5 * kMiB);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], (StripePiece{0, kMiB / 2, 5 * kMiB, 0}));
}

TEST(StripeMapTest, OffsetsPastFourGiB) {
  uint64_t off = (5ull << 30) + 12345;  // 5 GiB + a bit
  auto p = MapRange(kMiB, 4, off, 3 * kMiB);
  CheckCover(kMiB, 4, off, 3 * kMiB);
  ASSERT_FALSE(p.empty());
  // 5 GiB = unit 5120 -> object 0, row 1280.
  EXPECT_EQ(p[0].stripe, 0u);
  EXPECT_EQ(p[0].obj_offset, 1280 * kMiB + 12345);
  // An object offset past 4 GiB with one stripe.
  auto q = MapRange(kMiB, 1, 9ull << 30, 10);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].obj_offset, 9ull << 30);
}

TEST(StripeMapTest, RandomRangesCoverExactly) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    uint64_t ss = (1 + rng() % 32) * 64 * 1024;
    uint32_t sc = 1 + rng() % 8;
    uint64_t off = rng() % (1ull << 36);
    uint64_t len = 1 + rng() % (4 * kMiB);
    CheckCover(ss, sc, off, len);
  }
}

uint64_t BruteObjectSize(uint64_t ss, uint32_t sc, uint64_t size,
                         uint32_t stripe) {
  // The object's size is one past its last byte below size.
  uint64_t best = 0;
  for (uint64_t u = 0; u * ss < size; ++u) {
    if (u % sc != stripe) continue;
    uint64_t end = std::min(size, (u + 1) * ss);
    best = (u / sc) * ss + (end - u * ss);
  }
  return best;
}

TEST(StripeMapTest, ObjectSizesForFileSize) {
  uint64_t ss = 64 * 1024;
  for (uint32_t sc : {1u, 2u, 3u, 4u}) {
    for (uint64_t size : {uint64_t{0}, uint64_t{1}, ss - 1, ss, ss + 1, 3 * ss,
                          3 * ss + 7, 7 * ss + 100, 17 * ss}) {
      uint64_t total = 0;
      for (uint32_t k = 0; k < sc; ++k) {
        uint64_t got = ObjectSizeForFileSize(ss, sc, size, k);
        EXPECT_EQ(got, BruteObjectSize(ss, sc, size, k))
            << "sc=" << sc << " size=" << size << " k=" << k;
        total += got;
      }
      // Object bytes add up to the file size for a dense file.
      EXPECT_EQ(total, size);
    }
  }
}

TEST(StripeMapTest, ObjectSizeOfMultiGiBFile) {
  uint64_t size = (6ull << 30) + 3;  // 6 GiB + 3 bytes, 4 x 1 MiB stripes
  EXPECT_EQ(ObjectSizeForFileSize(kMiB, 4, size, 0), (1536ull << 20) + 3);
  EXPECT_EQ(ObjectSizeForFileSize(kMiB, 4, size, 1), 1536ull << 20);
  EXPECT_EQ(ObjectSizeForFileSize(kMiB, 1, size, 0), size);
}

}  // namespace
}  // namespace stripefs::client
