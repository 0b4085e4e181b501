// The same suite runs against the in-memory fake and real RocksDB.
#include <cerrno>
#include <filesystem>

#include "common/errors.h"
#include "gtest/gtest.h"
#include "storage/kv.h"

namespace stripefs::storage {
namespace {

class KvTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      dir_ = std::filesystem::temp_directory_path() /
             ("kv_test_" + std::to_string(::getpid()));
      std::filesystem::remove_all(dir_);
      auto kv = OpenRocksKv(dir_.string());
      ASSERT_TRUE(kv.ok()) << kv.status();
      kv_ = std::move(*kv);
    } else {
      kv_ = NewMemKv();
    }
  }
  void TearDown() override {
    kv_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<KvStore> kv_;
};

TEST_P(KvTest, PutGetDelete) {
  WriteBatch b;
  b.Put("a", "1");
  b.Put("b", "2");
  ASSERT_TRUE(kv_->Write(b).ok());
  auto v = kv_->Get("a");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ(**v, "1");
  WriteBatch d;
  d.Delete("a");
  ASSERT_TRUE(kv_->Write(d).ok());
  v = kv_->Get("a");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
}

TEST_P(KvTest, IteratesInOrder) {
  WriteBatch b;
  for (uint64_t i : {5, 1, 300, 2}) {
    std::string k = "k";
    AppendBE64(&k, i);
    b.Put(k, std::to_string(i));
  }
  b.Put("z", "end");
  ASSERT_TRUE(kv_->Write(b).ok());
  auto it = kv_->NewIterator();
  std::vector<uint64_t> seen;
  for (it->Seek("k"); it->Valid() && it->key()[0] == 'k'; it->Next()) {
    seen.push_back(DecodeBE64(it->key().substr(1)));
  }
  EXPECT_TRUE(it->status().ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 5, 300}));
}

TEST_P(KvTest, ReadOnlyRefusesWrites) {
  kv_->SetReadOnly(true);
  WriteBatch b;
  b.Put("a", "1");
  absl::Status s = kv_->Write(b);
  EXPECT_EQ(ToErrno(s), EROFS);
  kv_->SetReadOnly(false);
  EXPECT_TRUE(kv_->Write(b).ok());
}

INSTANTIATE_TEST_SUITE_P(MemAndRocks, KvTest, ::testing::Values(false, true));

TEST(KeyTest, BigEndianRoundTrip) {
  std::string s;
  AppendBE64(&s, 0x0102030405060708ull);
  AppendBE32(&s, 0xA0B0C0D0u);
  EXPECT_EQ(DecodeBE64(s), 0x0102030405060708ull);
  EXPECT_EQ(DecodeBE32(std::string_view(s).substr(8)), 0xA0B0C0D0u);
}

}  // namespace
}  // namespace stripefs::storage
