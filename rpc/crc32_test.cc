#include "rpc/crc32.h"

#include <random>
#include <string>

#include "gtest/gtest.h"
#include "rpc/wire_v2.h"

namespace stripefs::rpc {
namespace {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Crc32Test, SameAsZlibForEveryLengthAndAlignment) {
  const std::string data = RandomBytes(4096 + 64, 1);
  for (size_t off = 0; off < 16; ++off) {
    for (size_t len = 0; len <= 1200; ++len) {
      ASSERT_EQ(Crc32(0, data.data() + off, len),
                Crc32Zlib(0, data.data() + off, len))
          << "offset " << off << " length " << len;
    }
  }
  for (size_t len : {4096u, 4096u + 17, 4096u + 63}) {
    EXPECT_EQ(Crc32(0, data.data(), len), Crc32Zlib(0, data.data(), len));
  }
}

TEST(Crc32Test, ContinuesACrcLikeZlib) {
  const std::string data = RandomBytes(1 << 20, 2);
  const uint32_t whole = Crc32Zlib(0, data.data(), data.size());
  EXPECT_EQ(Crc32(0, data.data(), data.size()), whole);
  for (size_t cut : {1u, 255u, 256u, 1000u, 65536u, 999999u}) {
    uint32_t c = Crc32(0, data.data(), cut);
    EXPECT_EQ(Crc32(c, data.data() + cut, data.size() - cut), whole) << cut;
  }
  // All-ones and all-zero data (carry-less edge cases).
  const std::string ones(777, '\xff'), zeros(777, '\0');
  EXPECT_EQ(Crc32(0, ones.data(), ones.size()),
            Crc32Zlib(0, ones.data(), ones.size()));
  EXPECT_EQ(Crc32(0, zeros.data(), zeros.size()),
            Crc32Zlib(0, zeros.data(), zeros.size()));
}

TEST(Crc32Test, WriteChecksumIsTheFastOneOnX86) {
  const std::string data = RandomBytes(1 << 20, 3);
  EXPECT_EQ(DataCrc32(data.data(), data.size()),
            Crc32Zlib(0, data.data(), data.size()));
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("pclmul")) GTEST_SKIP() << "no PCLMULQDQ";
  EXPECT_TRUE(Crc32Accelerated());
#endif
}

}  // namespace
}  // namespace stripefs::rpc
