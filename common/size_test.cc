#include "common/size.h"

#include <cerrno>
#include <string>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs {
namespace {

TEST(SizeTest, ParsesPlainAndSuffixed) {
  EXPECT_EQ(ParseSize("4096").value(), 4096u);
  EXPECT_EQ(ParseSize("64K").value(), 65536u);
  EXPECT_EQ(ParseSize("64k").value(), 65536u);
  EXPECT_EQ(ParseSize("1M").value(), 1048576u);
  EXPECT_EQ(ParseSize("1MiB").value(), 1048576u);
  EXPECT_EQ(ParseSize("2MB").value(), 2u << 20);
  EXPECT_EQ(ParseSize("3G").value(), 3ull << 30);
  EXPECT_EQ(ParseSize("1T").value(), 1ull << 40);
  EXPECT_EQ(ParseSize("0").value(), 0u);
  EXPECT_EQ(ParseSize("512B").value(), 512u);
}

TEST(SizeTest, RejectsGarbage) {
  for (const char* bad : {"", "M", "-1", "1X", "1.5M", "1MM", "abc", "1 M x",
                          "99999999999999999999", "20000000000T"}) {
    absl::StatusOr<uint64_t> s = ParseSize(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_EQ(ToErrno(s.status()), EINVAL) << bad;
    }
  }
}

TEST(SizeTest, FormatsHumanSizes) {
  EXPECT_EQ(FormatSize(512), "512");
  EXPECT_EQ(FormatSize(65536), "64K");
  EXPECT_EQ(FormatSize(1536 * 1024), "1.5M");
  EXPECT_EQ(FormatSize(4ull << 30), "4G");
}

TEST(SizeTest, StripeSizeMustBeMultipleOf64K) {
  EXPECT_TRUE(ValidateStripeSize(65536).ok());
  EXPECT_TRUE(ValidateStripeSize(4 << 20).ok());
  EXPECT_FALSE(ValidateStripeSize(0).ok());
  absl::Status s = ValidateStripeSize(100000);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("64K"), std::string::npos);
}

}  // namespace
}  // namespace stripefs
