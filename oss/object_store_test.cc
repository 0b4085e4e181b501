// Unit tests of ObjectStore on a real temp directory.
#include "oss/object_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/errors.h"
#include "common/fault_points.h"
#include "gtest/gtest.h"

namespace stripefs::oss {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/oss_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Reopen(size_t max_open_files = 512) {
    if (store_) {
      ASSERT_TRUE(store_->Close().ok());
    }
    store_.reset();
    auto s = ObjectStore::Open(
        {.data_dir = dir_ + "/ost", .max_open_files = max_open_files});
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  uint64_t NewObject() {
    auto first = store_->Precreate(1);
    EXPECT_TRUE(first.ok()) << first.status();
    return first.value_or(0);
  }
  std::string ReadAll(uint64_t oid, uint64_t off, uint64_t len,
                      uint64_t* size = nullptr) {
    std::string out;
    auto sz = store_->Read(oid, off, len, &out);
    EXPECT_TRUE(sz.ok()) << sz.status();
    if (size != nullptr) *size = sz.value_or(0);
    return out;
  }

  std::string dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, NewObjectIsEmpty) {
  uint64_t oid = NewObject();
  uint64_t size = 99;
  EXPECT_EQ(ReadAll(oid, 0, 4096, &size), "");
  EXPECT_EQ(size, 0u);
  auto attr = store_->GetAttr(oid);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, 0u);
}

TEST_F(ObjectStoreTest, HolesReadAsZeros) {
  uint64_t oid = NewObject();
  auto size = store_->Write(oid, 1 << 20, "abc", false);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, (1u << 20) + 3);
  uint64_t got_size = 0;
  std::string data = ReadAll(oid, 0, (1 << 20) + 100, &got_size);
  EXPECT_EQ(got_size, (1u << 20) + 3);
  ASSERT_EQ(data.size(), (1u << 20) + 3);  // short only at the object's end
  EXPECT_EQ(data.substr(0, 1 << 20), std::string(1 << 20, '\0'));
  EXPECT_EQ(data.substr(1 << 20), "abc");
  EXPECT_EQ(ReadAll(oid, (1 << 20) + 3, 10), "");   // at the end
  EXPECT_EQ(ReadAll(oid, 10 * kGiB, 10), "");       // far past the end
}

TEST_F(ObjectStoreTest, SparseWritePast4GiB) {
  uint64_t oid = NewObject();
  const uint64_t off = 5 * kGiB + 123;
  std::string payload(64 << 10, 'z');
  payload[0] = 'A';
  auto size = store_->Write(oid, off, payload, false);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, off + payload.size());
  EXPECT_EQ(ReadAll(oid, off, payload.size()), payload);
  EXPECT_EQ(ReadAll(oid, 4 * kGiB, 4096), std::string(4096, '\0'));
  auto attr = store_->GetAttr(oid);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, off + payload.size());
  EXPECT_LT(attr->blocks * 512, uint64_t{4} << 20);  // sparse, not 5 GiB
}

TEST_F(ObjectStoreTest, TruncateShrinksAndGrows) {
  uint64_t oid = NewObject();
  ASSERT_TRUE(store_->Write(oid, 0, std::string(100, 'x'), false).ok());
  ASSERT_TRUE(store_->Truncate(oid, 10).ok());
  EXPECT_EQ(ReadAll(oid, 0, 100), std::string(10, 'x'));
  ASSERT_TRUE(store_->Truncate(oid, 50).ok());
  EXPECT_EQ(ReadAll(oid, 0, 100), std::string(10, 'x') + std::string(40, '\0'));
  // Truncating a never-written object creates its size.
  uint64_t other = NewObject();
  ASSERT_TRUE(store_->Truncate(other, 4096).ok());
  EXPECT_EQ(store_->GetAttr(other)->size, 4096u);
  EXPECT_EQ(ReadAll(other, 0, 8192), std::string(4096, '\0'));
}

TEST_F(ObjectStoreTest, PunchMakesZerosKeepsSize) {
  uint64_t oid = NewObject();
  const size_t k64 = 64 << 10;
  ASSERT_TRUE(store_->Write(oid, 0, std::string(3 * k64, 'a'), true).ok());
  uint64_t blocks_before = store_->GetAttr(oid)->blocks;
  ASSERT_TRUE(store_->Punch(oid, k64, k64).ok());
  std::string data = ReadAll(oid, 0, 3 * k64);
  ASSERT_EQ(data.size(), 3 * k64);
  EXPECT_EQ(data.substr(0, k64), std::string(k64, 'a'));
  EXPECT_EQ(data.substr(k64, k64), std::string(k64, '\0'));
  EXPECT_EQ(data.substr(2 * k64), std::string(k64, 'a'));
  auto attr = store_->GetAttr(oid);
  EXPECT_EQ(attr->size, 3 * k64);
  EXPECT_LT(attr->blocks, blocks_before);
  // Punching past the end or with length 0 is harmless.
  EXPECT_TRUE(store_->Punch(oid, 100 * k64, k64).ok());
  EXPECT_TRUE(store_->Punch(oid, 0, 0).ok());
  EXPECT_EQ(ToErrno(store_->Punch(oid, UINT64_MAX - 5, 10)), EINVAL);
}

TEST_F(ObjectStoreTest, DestroyThenEnoent) {
  uint64_t oid = NewObject();
  ASSERT_TRUE(store_->Write(oid, 0, "data", false).ok());
  const uint64_t count = store_->object_count();
  ASSERT_TRUE(store_->Destroy({oid}).ok());
  EXPECT_EQ(store_->object_count(), count - 1);
  std::string out;
  EXPECT_EQ(ToErrno(store_->Read(oid, 0, 4, &out).status()), ENOENT);
  EXPECT_EQ(ToErrno(store_->Write(oid, 0, "x", false).status()), ENOENT);
  EXPECT_EQ(ToErrno(store_->GetAttr(oid).status()), ENOENT);
  EXPECT_EQ(ToErrno(store_->Truncate(oid, 0)), ENOENT);
  EXPECT_EQ(ToErrno(store_->Punch(oid, 0, 1)), ENOENT);
  // The file is gone, and destroy is idempotent.
  struct stat st;
  char path[64];
  snprintf(path, sizeof(path), "/ost/objects/%02x/%lu",
           static_cast<unsigned>(oid % 256), static_cast<unsigned long>(oid));
  EXPECT_NE(stat((dir_ + path).c_str(), &st), 0);
  EXPECT_TRUE(store_->Destroy({oid, oid, 987654}).ok());
  EXPECT_EQ(store_->object_count(), count - 1);
  // Still gone after a restart; ids are not reused.
  Reopen();
  EXPECT_EQ(ToErrno(store_->GetAttr(oid).status()), ENOENT);
  EXPECT_GT(NewObject(), oid);
}

TEST_F(ObjectStoreTest, UnknownObjectIsEnoent) {
  std::string out;
  EXPECT_EQ(ToErrno(store_->Read(42, 0, 1, &out).status()), ENOENT);
  EXPECT_EQ(ToErrno(store_->Write(42, 0, "x", false).status()), ENOENT);
  EXPECT_EQ(ToErrno(store_->Sync({42})), ENOENT);
  EXPECT_EQ(ToErrno(store_->GetAttr(0).status()), ENOENT);
}

TEST_F(ObjectStoreTest, BadRangesAreRefused) {
  uint64_t oid = NewObject();
  std::string out;
  EXPECT_EQ(ToErrno(store_->Write(oid, UINT64_MAX - 1, "abc", false).status()),
            EINVAL);
  EXPECT_EQ(ToErrno(store_->Write(oid, kMaxObjectSize, "a", false).status()),
            EFBIG);
  EXPECT_EQ(ToErrno(store_->Write(oid, 0, std::string(kMaxIoBytes + 1, 'a'),
                                  false)
                        .status()),
            EINVAL);
  EXPECT_EQ(ToErrno(store_->Read(oid, 0, kMaxIoBytes + 1, &out).status()),
            EINVAL);
  EXPECT_EQ(ToErrno(store_->Read(oid, UINT64_MAX - 1, 10, &out).status()),
            EINVAL);
  EXPECT_EQ(ToErrno(store_->Truncate(oid, kMaxObjectSize + 1)), EFBIG);
  EXPECT_EQ(ToErrno(store_->Precreate(0).status()), EINVAL);
  EXPECT_EQ(ToErrno(store_->Precreate(kMaxPrecreate + 1).status()), EINVAL);
  // The object is untouched.
  EXPECT_EQ(store_->GetAttr(oid)->size, 0u);
}

TEST_F(ObjectStoreTest, PrecreateIdsMonotonicAcrossReopen) {
  auto a = store_->Precreate(10);
  ASSERT_TRUE(a.ok());
  auto b = store_->Precreate(5);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, *a + 10);
  EXPECT_EQ(store_->last_oid(), *b + 4);
  EXPECT_EQ(store_->object_count(), 15u);
  Reopen();
  EXPECT_EQ(store_->last_oid(), *b + 4);
  EXPECT_EQ(store_->object_count(), 15u);
  auto c = store_->Precreate(3);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, *b + 5);
  for (uint64_t oid = *a; oid < *c + 3; ++oid) {
    EXPECT_TRUE(store_->GetAttr(oid).ok()) << oid;
  }
}

TEST_F(ObjectStoreTest, DataPersistsAcrossReopen) {
  uint64_t oid = NewObject();
  uint64_t empty = NewObject();
  std::string payload(300000, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char(i * 7 + 1);
  ASSERT_TRUE(store_->Write(oid, 4096, payload, false).ok());
  ASSERT_TRUE(store_->Sync({oid, empty}).ok());
  ASSERT_TRUE(store_->Sync({}).ok());
  Reopen();
  EXPECT_EQ(ReadAll(oid, 4096, payload.size()), payload);
  EXPECT_EQ(store_->GetAttr(oid)->size, 4096 + payload.size());
  EXPECT_EQ(store_->GetAttr(empty)->size, 0u);
  auto st = store_->Statfs();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->objects, 2u);
  EXPECT_GT(st->total_bytes, 0u);
  EXPECT_GE(st->free_bytes, st->avail_bytes);
}

// Many threads on more objects than the fd cache holds: evictions while
// reads and writes are in flight never mix data up.
TEST_F(ObjectStoreTest, ParallelIoWithSmallFdCache) {
  Reopen(/*max_open_files=*/16);
  auto first = store_->Precreate(64);
  ASSERT_TRUE(first.ok());
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (uint64_t i = t; i < 64; i += kThreads) {
          uint64_t oid = *first + i;
          std::string block(4096, char('a' + (i + round) % 26));
          if (!store_->Write(oid, round * 4096, block, false).ok()) ++failures;
          std::string out;
          if (!store_->Read(oid, round * 4096, 4096, &out).ok() || out != block) {
            ++failures;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (uint64_t i = 0; i < 64; ++i) {
    EXPECT_EQ(store_->GetAttr(*first + i)->size, 20u * 4096);
  }
}

// On-disk feature wide_dirs: existing files move to the 4096 directories,
// data stays readable, new files land there, a repeated call (every start
// with the feature) is harmless, and a file left behind in an old
// directory (a move interrupted by a crash) is moved by the next call.
TEST_F(ObjectStoreTest, WideDirsMovesObjectFiles) {
  const std::string objects = dir_ + "/ost/objects";
  auto path_in = [&](const char* fmt, uint64_t fanout, uint64_t oid) {
    char sub[8];
    snprintf(sub, sizeof(sub), fmt,
             static_cast<unsigned long long>(oid % fanout));
    return objects + "/" + sub + "/" + std::to_string(oid);
  };
  auto old_path = [&](uint64_t oid) { return path_in("%02llx", 256, oid); };
  auto wide_path = [&](uint64_t oid) { return path_in("%03llx", 4096, oid); };
  struct stat st;

  std::vector<uint64_t> oids;
  for (int i = 0; i < 300; ++i) oids.push_back(NewObject());
  for (uint64_t oid : oids) {
    ASSERT_TRUE(store_->Write(oid, 0, "obj" + std::to_string(oid), false).ok());
  }
  ASSERT_EQ(stat(old_path(oids.back()).c_str(), &st), 0);
  EXPECT_FALSE(store_->wide_dirs());
  ASSERT_TRUE(store_->UseWideDirs().ok());
  EXPECT_TRUE(store_->wide_dirs());
  for (uint64_t oid : oids) {
    ASSERT_EQ(stat(wide_path(oid).c_str(), &st), 0) << oid;
    ASSERT_NE(stat(old_path(oid).c_str(), &st), 0) << oid;
    EXPECT_EQ(ReadAll(oid, 0, 100), "obj" + std::to_string(oid));
  }
  const uint64_t fresh = NewObject();
  ASSERT_TRUE(store_->Write(fresh, 0, "new", true).ok());
  EXPECT_EQ(stat(wide_path(fresh).c_str(), &st), 0);

  // Reopen (the caller calls UseWideDirs again at every start) after "a
  // crash" left one file in its old directory.
  Reopen();
  std::filesystem::rename(wide_path(oids[5]), old_path(oids[5]));
  ASSERT_TRUE(store_->UseWideDirs().ok());
  for (uint64_t oid : {oids[0], oids[5], oids.back(), fresh}) {
    EXPECT_EQ(stat(wide_path(oid).c_str(), &st), 0) << oid;
  }
  EXPECT_EQ(ReadAll(oids[5], 0, 100), "obj" + std::to_string(oids[5]));
  EXPECT_EQ(ReadAll(fresh, 0, 100), "new");
  ASSERT_TRUE(store_->Destroy({fresh}).ok());
  EXPECT_NE(stat(wide_path(fresh).c_str(), &st), 0);
}

TEST_F(ObjectStoreTest, UnusableDataDirIsRefused) {
  // A regular file where the data dir should be.
  std::string file = dir_ + "/not-a-dir";
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  EXPECT_FALSE(ObjectStore::Open({.data_dir = file}).ok());
  EXPECT_FALSE(ObjectStore::Open({.data_dir = dir_ + "/missing/parent"}).ok());
  // A second store on the same dir is refused (RocksDB lock).
  EXPECT_FALSE(ObjectStore::Open({.data_dir = dir_ + "/ost"}).ok());
}

// oss.before_write fails with nothing written; oss.mid_write leaves the
// first half of the data (a torn write) and fails; oss.before_sync fails a
// synced write after the data went out; a resend then completes the object.
TEST_F(ObjectStoreTest, WriteFaultPoints) {
  uint64_t oid = NewObject();
  ASSERT_TRUE(fault::Configure("oss.before_write=error", 1).ok());
  EXPECT_EQ(ToErrno(store_->Write(oid, 0, "abcdefgh", false).status()), EIO);
  EXPECT_EQ(ReadAll(oid, 0, 100), "");
  ASSERT_TRUE(fault::Configure("oss.mid_write=error", 1).ok());
  EXPECT_EQ(ToErrno(store_->Write(oid, 0, "abcdefgh", false).status()), EIO);
  EXPECT_EQ(fault::Fired("oss.mid_write"), 1u);
  EXPECT_EQ(ReadAll(oid, 0, 100), "abcd");
  ASSERT_TRUE(fault::Configure("oss.before_sync=error", 1).ok());
  EXPECT_EQ(ToErrno(store_->Write(oid, 0, "abcdefgh", true).status()), EIO);
  EXPECT_TRUE(store_->Sync({oid}).ok());  // count 1: fired already
  EXPECT_EQ(fault::Fired("oss.before_sync"), 1u);
  EXPECT_EQ(ReadAll(oid, 0, 100), "abcdefgh");
  auto size = store_->Write(oid, 0, "ABCDEFGH", true);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 8u);
  EXPECT_EQ(ReadAll(oid, 0, 100), "ABCDEFGH");
  ASSERT_TRUE(fault::Configure("", 1).ok());
}

// oss.after_destroy: the objects are gone, the caller is told it failed, and
// its retry succeeds (destroy is idempotent).
TEST_F(ObjectStoreTest, DestroyFaultPointAfterTheEffect) {
  uint64_t oid = NewObject();
  ASSERT_TRUE(store_->Write(oid, 0, "data", false).ok());
  ASSERT_TRUE(fault::Configure("oss.after_destroy=error", 1).ok());
  EXPECT_EQ(ToErrno(store_->Destroy({oid})), EIO);
  EXPECT_EQ(ToErrno(store_->GetAttr(oid).status()), ENOENT);
  EXPECT_TRUE(store_->Destroy({oid}).ok());
  ASSERT_TRUE(fault::Configure("", 1).ok());
}

}  // namespace
}  // namespace stripefs::oss
