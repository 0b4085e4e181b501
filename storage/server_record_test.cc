#include "storage/server_record.h"

#include <cerrno>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::storage {
namespace {

constexpr FeatureSet kOld{.compat = 0, .ro_compat = 0, .incompat = 0,
                          .default_compat = 0};
constexpr FeatureSet kNew{.compat = 1, .ro_compat = 0, .incompat = 1,
                          .default_compat = 1};

ServerRecord Prev(const char* release, bool clean, uint64_t incompat = 0) {
  ServerRecord r;
  r.role = "mds";
  r.target = "mdt0";
  r.release = release;
  r.clean = clean;
  r.instance = 4;
  r.compat = 1;
  r.incompat = incompat;
  return r;
}

TEST(ServerRecordTest, RoundTripsAndIgnoresUnknownLines) {
  ServerRecord r = Prev("1.1.0", true, 1);
  r.ro_compat = 0x10;
  std::string v = EncodeServerRecord(r) + "future_field=whatever\n";
  absl::StatusOr<ServerRecord> d = DecodeServerRecord(v);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->role, "mds");
  EXPECT_EQ(d->target, "mdt0");
  EXPECT_EQ(d->release, "1.1.0");
  EXPECT_TRUE(d->clean);
  EXPECT_EQ(d->instance, 4u);
  EXPECT_EQ(d->compat, 1u);
  EXPECT_EQ(d->ro_compat, 0x10u);
  EXPECT_EQ(d->incompat, 1u);
  EXPECT_FALSE(DecodeServerRecord("clean=1\n").ok());
  EXPECT_FALSE(DecodeServerRecord("release=1\ninstance=x\n").ok());
}

TEST(ServerRecordTest, StoreAndLoad) {
  auto kv = NewMemKv();
  auto none = LoadServerRecord(*kv);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(StoreServerRecord(*kv, Prev("1.0.0", false)).ok());
  auto got = LoadServerRecord(*kv);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->release, "1.0.0");
  EXPECT_FALSE((*got)->clean);
}

TEST(ServerRecordTest, FreshStoreStartsWithDefaults) {
  auto d = CheckStartup(std::nullopt, "mds", "mdt0", "1.1.0", kNew, false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.instance, 1u);
  EXPECT_EQ(d->record.compat, 1u);
  EXPECT_EQ(d->record.incompat, 0u);  // never turned on by itself
  EXPECT_FALSE(d->record.clean);
  EXPECT_FALSE(d->evict_clients);
}

TEST(ServerRecordTest, SameReleaseAfterCrashStarts) {
  auto d = CheckStartup(Prev("1.1.0", false), "mds", "mdt0", "1.1.0", kNew,
                        false);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->evict_clients);
  EXPECT_FALSE(d->previous_clean);
  EXPECT_EQ(d->record.instance, 5u);
}

TEST(ServerRecordTest, OtherReleaseAfterCleanShutdownStarts) {
  // Upgrade and downgrade both.
  auto up = CheckStartup(Prev("1.0.0", true), "mds", "mdt0", "1.1.0", kNew,
                         false);
  ASSERT_TRUE(up.ok());
  EXPECT_FALSE(up->evict_clients);
  auto down = CheckStartup(Prev("1.1.0", true), "mds", "mdt0", "1.0.0", kOld,
                           false);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->record.compat, 1u);  // a compat feature stays recorded
}

TEST(ServerRecordTest, OtherReleaseAfterUncleanShutdownNeedsForce) {
  auto d = CheckStartup(Prev("1.0.0", false), "mds", "mdt0", "1.1.0", kNew,
                        false);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(ToErrno(d.status()), EPERM);
  EXPECT_NE(d.status().message().find("did not shut down cleanly"),
            std::string::npos);
  EXPECT_NE(d.status().message().find("--force"), std::string::npos);
  auto forced = CheckStartup(Prev("1.0.0", false), "mds", "mdt0", "1.1.0",
                             kNew, true);
  ASSERT_TRUE(forced.ok());
  EXPECT_TRUE(forced->evict_clients);
}

TEST(ServerRecordTest, UnknownIncompatFeatureRefusedEvenForced) {
  for (bool force : {false, true}) {
    auto d = CheckStartup(Prev("1.1.0", true, 1), "mds", "mdt0", "1.0.0",
                          kOld, force);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.status().message().find("incompatible"), std::string::npos);
    EXPECT_NE(d.status().message().find("1.1.0"), std::string::npos);
  }
  // The release that knows the feature starts and keeps it on.
  auto d = CheckStartup(Prev("1.1.0", true, 1), "mds", "mdt0", "1.1.0", kNew,
                        false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->record.incompat, 1u);
}

TEST(ServerRecordTest, UnknownRoCompatRefused) {
  ServerRecord p = Prev("1.1.0", true);
  p.ro_compat = 4;
  EXPECT_FALSE(CheckStartup(p, "mds", "mdt0", "1.0.0", kOld, true).ok());
}

TEST(ServerRecordTest, StoreOfAnotherTargetRefused) {
  auto d = CheckStartup(Prev("1.1.0", true), "oss", "ost0", "1.1.0", kNew,
                        true);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("mdt0"), std::string::npos);
}

}  // namespace
}  // namespace stripefs::storage
