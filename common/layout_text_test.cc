#include "common/layout_text.h"

#include <cerrno>
#include <string>
#include <vector>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs {
namespace {

// The forms the CLI reads and writes (were cli_test's LayoutTest).

TEST(LayoutTest, ParsesFileLayout) {
  absl::StatusOr<Layout> l = ParseLayout(
      "stripe_size=1048576 stripe_count=4 stripe_offset=-1 "
      "objects=0:17,1:17,2:18,3:19");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->stripe_size, 1048576u);
  EXPECT_EQ(l->stripe_count, 4);
  EXPECT_EQ(l->stripe_offset, -1);
  ASSERT_EQ(l->objects.size(), 4u);
  EXPECT_EQ(l->objects[2], (StripeObject{2, 18}));
  EXPECT_EQ(FormatLayout(*l),
            "stripe_size=1048576 stripe_count=4 stripe_offset=-1 "
            "objects=0:17,1:17,2:18,3:19");
}

TEST(LayoutTest, ParsesDirectoryDefaultAndIgnoresUnknownKeys) {
  absl::StatusOr<Layout> l =
      ParseLayout("stripe_size=65536 stripe_count=-1 pool=fast\n");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->stripe_size, 65536u);
  EXPECT_EQ(l->stripe_count, -1);
  EXPECT_EQ(l->stripe_offset, -1);
  EXPECT_TRUE(l->objects.empty());
  std::string with_nul("stripe_size=65536 stripe_count=2", 32);
  with_nul.push_back('\0');
  EXPECT_TRUE(ParseLayout(with_nul).ok());
}

TEST(LayoutTest, RejectsBadLayouts) {
  EXPECT_FALSE(ParseLayout("").ok());
  EXPECT_FALSE(ParseLayout("stripe_size=1M stripe_count=1").ok());
  EXPECT_FALSE(ParseLayout("stripe_size=65536").ok());
  EXPECT_FALSE(
      ParseLayout("stripe_size=65536 stripe_count=1 objects=0-1").ok());
}

TEST(LayoutTest, SettingValidationAndSetText) {
  LayoutSetting r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(LayoutSetText(r), "");
  r.stripe_count = 4;
  EXPECT_EQ(LayoutSetText(r), "stripe_count=4");
  r.stripe_size = 1 << 20;
  r.stripe_offset = 2;
  EXPECT_TRUE(ValidateLayoutSetting(r).ok());
  EXPECT_EQ(LayoutSetText(r),
            "stripe_size=1048576 stripe_count=4 stripe_offset=2");
  r.stripe_size = 1000;
  EXPECT_FALSE(ValidateLayoutSetting(r).ok());
  r.stripe_size = 0;
  EXPECT_FALSE(ValidateLayoutSetting(r).ok());
  r.stripe_size = 65536;
  r.stripe_count = -2;
  EXPECT_FALSE(ValidateLayoutSetting(r).ok());
  r.stripe_count = -1;
  r.stripe_offset = -5;
  EXPECT_FALSE(ValidateLayoutSetting(r).ok());
}

// The forms the client reads and writes (were client_test's
// LayoutTextTest).

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

// Both ends together.

TEST(LayoutTextTest, AcceptsTheSizesTheCliAccepts) {
  for (const char* text : {"stripe_size=64K", "stripe_size=64k",
                           "stripe_size=1MiB", "stripe_size=2MB"}) {
    auto s = ParseLayoutSetting(text);
    ASSERT_TRUE(s.ok()) << text << ": " << s.status();
  }
  EXPECT_EQ(ParseLayoutSetting("stripe_size=1MiB")->stripe_size, 1u << 20);
  for (const char* bad : {"stripe_size=1T", "stripe_size=1.5M",
                          "stripe_size=", "stripe_count=2147483648",
                          "stripe_offset=2147483648"}) {
    auto s = ParseLayoutSetting(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(ToErrno(s.status()), EINVAL) << bad;
  }
}

TEST(LayoutTextTest, WhatTheCliWritesTheClientReads) {
  LayoutSetting w;
  w.stripe_size = 4 << 20;
  w.stripe_count = -1;
  w.stripe_offset = 3;
  ASSERT_TRUE(ValidateLayoutSetting(w).ok());
  auto r = ParseLayoutSetting(LayoutSetText(w));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stripe_size, w.stripe_size);
  EXPECT_EQ(r->stripe_count, w.stripe_count);
  EXPECT_EQ(r->stripe_offset, w.stripe_offset);
}

TEST(LayoutTextTest, WhatTheClientFormatsTheCliParses) {
  Layout file{1 << 20, 2, -1, {{0, 17}, {3, 9}}};
  EXPECT_EQ(ParseLayout(FormatLayout(file)).value(), file);
  Layout dir{65536, -1, 2, {}};
  EXPECT_EQ(FormatLayout(dir),
            "stripe_size=65536 stripe_count=-1 stripe_offset=2");
  EXPECT_EQ(ParseLayout(FormatLayout(dir)).value(), dir);

  absl::StatusOr<std::vector<DfTarget>> df =
      ParseDf(FormatDf(10, 90, {{0, 100, 60, 50, 3}, {2, 200, 150, 140, 4}}));
  ASSERT_TRUE(df.ok()) << df.status();
  ASSERT_EQ(df->size(), 3u);
  EXPECT_EQ((*df)[0], (DfTarget{"mdt0", true, 10, 90, 0, 0, 0, 0}));
  EXPECT_EQ((*df)[2], (DfTarget{"ost2", false, 0, 0, 200, 150, 140, 4}));
  EXPECT_EQ(CountOsts(*df), 2);
}

TEST(LayoutTextTest, ParsesDf) {
  absl::StatusOr<std::vector<DfTarget>> df = ParseDf(
      "mdt0 files=1000 ffree=900\n"
      "ost0 total=1000 free=500 avail=400 objects=3\n"
      "ost1 total=3000 free=1500 avail=1400 objects=5 future=1\n");
  ASSERT_TRUE(df.ok()) << df.status();
  ASSERT_EQ(df->size(), 3u);
  EXPECT_TRUE((*df)[0].is_mdt);
  EXPECT_EQ((*df)[0].files, 1000u);
  EXPECT_EQ((*df)[2].avail, 1400u);
  EXPECT_EQ(CountOsts(*df), 2);
  EXPECT_FALSE(ParseDf("").ok());
  EXPECT_FALSE(ParseDf("disk0 total=1").ok());
  EXPECT_FALSE(ParseDf("ost0 total=x").ok());
}

}  // namespace
}  // namespace stripefs
