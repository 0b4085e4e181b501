#include "storage/on_disk_features.h"

#include <cerrno>
#include <optional>

#include "common/errors.h"
#include "common/version.h"
#include "gtest/gtest.h"

namespace stripefs::storage {
namespace {

#if STRIPEFS_PROTO_MAX >= 2
TEST(OnDiskFeaturesTest, ReleaseNPlusOneKeepsAReleaseHistoryEverywhere) {
  for (const char* role : {"mds", "oss", "dlm"}) {
    FeatureSet f = BuildFeatures(role);
    EXPECT_EQ(f.default_compat, kCompatReleaseHistory) << role;
    auto d = CheckStartup(std::nullopt, role, "t", "1.1.0", f, false);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->record.compat, kCompatReleaseHistory);
    EXPECT_EQ(d->record.incompat, 0u) << "never on by itself";
    EXPECT_EQ(d->record.feature_names, "compat:0x1=release_history");
  }
}

TEST(OnDiskFeaturesTest, HistoryAppendsEveryStartBounded) {
  auto kv = NewMemKv();
  ServerRecord r{.role = "mds", .target = "mdt0", .release = "1.1.0",
                 .compat = kCompatReleaseHistory};
  for (uint64_t i = 1; i <= kMaxHistory + 5; ++i) {
    r.instance = i;
    auto h = NoteStart(*kv, r, i % 2 == 0);
    ASSERT_TRUE(h.ok()) << h.status();
  }
  auto v = kv->Get(kReleaseHistoryKey);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->rfind("instance=6 release=1.1.0 previous_clean=1\n", 0), 0u)
      << **v;
  EXPECT_NE((*v)->find("instance=37 release=1.1.0 previous_clean=0"),
            std::string::npos);
  // Without the feature in the record: nothing written.
  auto other = NewMemKv();
  r.compat = 0;
  auto h = NoteStart(*other, r, true);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "");
  EXPECT_FALSE(other->Get(kReleaseHistoryKey)->has_value());
}

TEST(OnDiskFeaturesTest, WideDirsOnlyOnRequestAndOnlyForTheOss) {
  auto d = CheckStartup(std::nullopt, "oss", "ost0", "1.1.0",
                        BuildFeatures("oss"), false);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(EnableFeatures({"wide_dirs"}, "oss", &d->record).ok());
  EXPECT_EQ(d->record.incompat, kIncompatWideDirs);
  EXPECT_NE(d->record.feature_names.find("incompat:0x1=wide_dirs"),
            std::string::npos);
  ServerRecord mds;
  absl::Status s = EnableFeatures({"wide_dirs"}, "mds", &mds);
  EXPECT_EQ(ToErrno(s), EINVAL);
  EXPECT_NE(s.message().find("offers: none"), absl::string_view::npos) << s;
  s = EnableFeatures({"nonsense"}, "oss", &mds);
  EXPECT_NE(s.message().find("offers: wide_dirs"), absl::string_view::npos)
      << s;
}

TEST(OnDiskFeaturesTest, ReleaseNRefusesWideDirsNamingIt) {
  // What release N+1 stored...
  auto d = CheckStartup(std::nullopt, "oss", "ost0", "1.1.0",
                        BuildFeatures("oss"), false);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(EnableFeatures({"wide_dirs"}, "oss", &d->record).ok());
  d->record.clean = true;
  auto stored = DecodeServerRecord(EncodeServerRecord(d->record));
  ASSERT_TRUE(stored.ok());
  // ...as release N (knowing no feature) sees it: refused, even forced.
  auto n = CheckStartup(*stored, "oss", "ost0", "1.0.0", FeatureSet{}, true);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("incompat:0x1=wide_dirs"),
            absl::string_view::npos)
      << n.status();
  EXPECT_NE(n.status().message().find("1.1.0"), absl::string_view::npos);
  // Without it, release N starts on the store and keeps the compat bit and
  // its name.
  stored->incompat = 0;
  n = CheckStartup(*stored, "oss", "ost0", "1.0.0", FeatureSet{}, false);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->record.compat, kCompatReleaseHistory);
  EXPECT_EQ(n->record.feature_names, "compat:0x1=release_history");
}
#else
TEST(OnDiskFeaturesTest, ReleaseNKnowsNoFeatureAndOffersNone) {
  FeatureSet f = BuildFeatures("oss");
  EXPECT_EQ(f.compat | f.incompat | f.ro_compat | f.default_compat, 0u);
  ServerRecord r;
  EXPECT_EQ(ToErrno(EnableFeatures({"wide_dirs"}, "oss", &r)), EINVAL);
  EXPECT_TRUE(EnableFeatures({}, "oss", &r).ok());
}
#endif

}  // namespace
}  // namespace stripefs::storage
