#include "dlm/lock_types.h"

#include "gtest/gtest.h"

namespace stripefs::dlm {
namespace {

constexpr LockMode kModes[] = {LockMode::kNL, LockMode::kCR, LockMode::kCW,
                               LockMode::kPR, LockMode::kPW, LockMode::kEX};

TEST(LockTypesTest, FullCompatibilityMatrix) {
  // The classic VMS matrix, row = held, column = requested.
  const char* kExpected[] = {
      "111111",  // NL
      "111110",  // CR
      "111000",  // CW
      "110100",  // PR
      "110000",  // PW
      "100000",  // EX
  };
  for (int a = 0; a < 6; ++a) {
    for (int b = 0; b < 6; ++b) {
      EXPECT_EQ(ModesCompatible(kModes[a], kModes[b]), kExpected[a][b] == '1')
          << ModeName(kModes[a]) << " vs " << ModeName(kModes[b]);
      // Symmetric.
      EXPECT_EQ(ModesCompatible(kModes[a], kModes[b]),
                ModesCompatible(kModes[b], kModes[a]));
    }
  }
}

LockSpec Plain(LockMode m) { return {{"config", LockType::kPlain}, m}; }
LockSpec Ibits(LockMode m, uint64_t bits) {
  return {{"ino:42", LockType::kIbits}, m, bits};
}
LockSpec Extent(LockMode m, uint64_t s, uint64_t e) {
  return {{"obj:ost0:7", LockType::kExtent}, m, 0, s, e};
}

TEST(LockTypesTest, PlainConflictsByModeOnly) {
  EXPECT_TRUE(Conflicts(Plain(LockMode::kEX), Plain(LockMode::kPR)));
  EXPECT_FALSE(Conflicts(Plain(LockMode::kPR), Plain(LockMode::kPR)));
  EXPECT_FALSE(Conflicts(Plain(LockMode::kCR), Plain(LockMode::kPW)));
}

TEST(LockTypesTest, IbitsConflictOnlyWhenBitsOverlap) {
  EXPECT_TRUE(Conflicts(Ibits(LockMode::kEX, kBitLookup | kBitUpdate),
                        Ibits(LockMode::kPR, kBitUpdate)));
  EXPECT_FALSE(Conflicts(Ibits(LockMode::kEX, kBitLookup),
                         Ibits(LockMode::kPR, kBitUpdate | kBitXattr)));
  // Overlapping bits but compatible modes.
  EXPECT_FALSE(Conflicts(Ibits(LockMode::kPR, kAllBits),
                         Ibits(LockMode::kPR, kAllBits)));
}

TEST(LockTypesTest, ExtentConflictOnlyWhenRangesOverlap) {
  EXPECT_TRUE(Conflicts(Extent(LockMode::kPW, 0, 4095),
                        Extent(LockMode::kPW, 4095, 8191)));
  EXPECT_FALSE(Conflicts(Extent(LockMode::kPW, 0, 4095),
                         Extent(LockMode::kPW, 4096, 8191)));
  EXPECT_FALSE(Conflicts(Extent(LockMode::kPR, 0, kExtentEof),
                         Extent(LockMode::kPR, 0, kExtentEof)));
}

TEST(LockTypesTest, CoversNeedsModeBitsAndRange) {
  EXPECT_TRUE(Covers(Extent(LockMode::kPW, 0, kExtentEof),
                     Extent(LockMode::kPR, 100, 200)));
  EXPECT_FALSE(Covers(Extent(LockMode::kPR, 0, kExtentEof),
                      Extent(LockMode::kPW, 100, 200)));
  EXPECT_FALSE(Covers(Extent(LockMode::kPW, 0, 150),
                      Extent(LockMode::kPW, 100, 200)));
  EXPECT_TRUE(Covers(Ibits(LockMode::kPR, kBitLookup | kBitUpdate),
                     Ibits(LockMode::kCR, kBitLookup)));
  EXPECT_FALSE(Covers(Ibits(LockMode::kPR, kBitLookup),
                      Ibits(LockMode::kPR, kBitLookup | kBitPerm)));
  EXPECT_FALSE(Covers(Plain(LockMode::kCW), Plain(LockMode::kPR)));
  EXPECT_TRUE(Covers(Plain(LockMode::kEX), Plain(LockMode::kCW)));
}

}  // namespace
}  // namespace stripefs::dlm
