#include "fuse-client/file_io.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <map>
#include <random>

#include "absl/synchronization/mutex.h"
#include "common/errors.h"
#include "common/limits.h"
#include "fuse-client/stripe_map.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

constexpr uint64_t kSS = 64 * 1024;

// An in-memory OST set: sparse objects as strings.
class FakeObjects : public ObjectIo {
 public:
  absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid, uint64_t offset,
                                   uint32_t len,
                                   const InterruptFn& intr) override {
    Arrive();
    absl::MutexLock lock(&mu_);
    ++reads_;
    if (ost == failing_ost_) return Errno(EIO, "fake OST down");
    const std::string& o = objects_[{ost, oid}];
    if (offset >= o.size()) return std::string();
    return o.substr(offset, std::min<uint64_t>(len, o.size() - offset));
  }
  absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                     const char* data, size_t len,
                     const InterruptFn& intr) override {
    Arrive();
    absl::MutexLock lock(&mu_);
    if (ost == failing_ost_) return Errno(EIO, "fake OST down");
    std::string& o = objects_[{ost, oid}];
    if (o.size() < offset + len) o.resize(offset + len, '\0');
    o.replace(offset, len, data, len);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                        const InterruptFn& intr) override {
    absl::MutexLock lock(&mu_);
    if (ost == failing_ost_) return Errno(EIO, "fake OST down");
    objects_[{ost, oid}].resize(size, '\0');
    return absl::OkStatus();
  }
  absl::Status Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                    const InterruptFn& intr) override {
    absl::MutexLock lock(&mu_);
    synced_[ost].insert(synced_[ost].end(), oids.begin(), oids.end());
    return absl::OkStatus();
  }

  uint64_t Size(uint32_t ost, uint64_t oid) {
    absl::MutexLock lock(&mu_);
    return objects_[{ost, oid}].size();
  }
  // Next `n` Read/Write callers each wait until all n have arrived (or 2 s).
  void ExpectConcurrent(int n) {
    absl::MutexLock lock(&mu_);
    barrier_ = n;
    arrived_ = 0;
    met_ = false;
  }
  bool met() {
    absl::MutexLock lock(&mu_);
    return met_;
  }

  absl::Mutex mu_;
  std::map<std::pair<uint32_t, uint64_t>, std::string> objects_
      ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::vector<uint64_t>> synced_ ABSL_GUARDED_BY(mu_);
  uint32_t failing_ost_ ABSL_GUARDED_BY(mu_) = UINT32_MAX;
  int reads_ ABSL_GUARDED_BY(mu_) = 0;

 private:
  void Arrive() {
    absl::MutexLock lock(&mu_);
    if (barrier_ == 0) return;
    ++arrived_;
    auto all = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return arrived_ >= barrier_;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(2))) {
      met_ = true;
    }
  }
  int barrier_ ABSL_GUARDED_BY(mu_) = 0;
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  bool met_ ABSL_GUARDED_BY(mu_) = false;
};

FileLayout MakeLayout(uint64_t ss, uint32_t count) {
  FileLayout l;
  l.stripe_size = ss;
  for (uint32_t i = 0; i < count; ++i) l.objects.push_back({i, 100 + i});
  return l;
}

class FileIoTest : public ::testing::Test {
 protected:
  FakeObjects fake_;
  ThreadPool pool_{4};
  FileIo io_{&fake_, &pool_};
};

TEST_F(FileIoTest, WriteThenReadAcrossStripes) {
  FileLayout l = MakeLayout(kSS, 4);
  std::string data(5 * kSS + 123, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(io_.Write(l, 1000, data.data(), data.size(), {}).ok());
  auto r = io_.Read(l, 1000 + data.size(), 1000, data.size(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->size, data.size());
  EXPECT_EQ(r->Flatten(), data);
  // The bytes landed where the striping formula says.
  EXPECT_EQ(fake_.Size(1, 101), kSS + 1123);  // unit 1 full, 1123 B of unit 5
}

TEST_F(FileIoTest, WritePastTheLargestObjectIsEfbigBeforeAnyObjectWrite) {
  FileLayout l = MakeLayout(kSS, 4);
  // Object offset of file offset 2^62 with 4 stripes: about 2^60, past the
  // 16 TiB object limit; a buffering ObjectIo would otherwise accept it.
  absl::Status s = io_.Write(l, uint64_t{1} << 62, "xyz", 3, {});
  EXPECT_EQ(ToErrno(s), EFBIG) << s;
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(fake_.Size(i, 100 + i), 0u);
  // One byte past it, exactly: refused too.
  const uint64_t units = kMaxObjectSize / kSS;  // units per full object
  EXPECT_EQ(ToErrno(io_.Write(l, units * 4 * kSS, "x", 1, {})), EFBIG);
}

TEST_F(FileIoTest, HolesAndShortObjectsReadAsZeros) {
  FileLayout l = MakeLayout(kSS, 2);
  ASSERT_TRUE(io_.Write(l, 3 * kSS, "xyz", 3, {}).ok());  // object 1 only
  uint64_t size = 3 * kSS + 3;
  auto r = io_.Read(l, size, 0, size, {});
  ASSERT_TRUE(r.ok());
  std::string got = r->Flatten();
  ASSERT_EQ(got.size(), size);
  EXPECT_EQ(got.substr(0, 3 * kSS), std::string(3 * kSS, '\0'));
  EXPECT_EQ(got.substr(3 * kSS), "xyz");
}

TEST_F(FileIoTest, ReadsAreClampedToFileSize) {
  FileLayout l = MakeLayout(kSS, 2);
  ASSERT_TRUE(io_.Write(l, 0, "hello world", 11, {}).ok());
  auto r = io_.Read(l, 5, 0, 4096, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Flatten(), "hello");
  r = io_.Read(l, 5, 5, 4096, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size, 0u);
  // The size (from the MDS) beyond the objects: zeros up to the size.
  r = io_.Read(l, 2 * kSS + 10, 2 * kSS, 100, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Flatten(), std::string(10, '\0'));
}

TEST_F(FileIoTest, TruncateSetsEachObjectToItsShare) {
  FileLayout l = MakeLayout(kSS, 3);
  std::string data(7 * kSS, 'a');
  ASSERT_TRUE(io_.Write(l, 0, data.data(), data.size(), {}).ok());
  uint64_t new_size = 4 * kSS + 10;
  ASSERT_TRUE(io_.Truncate(l, new_size, {}).ok());
  EXPECT_EQ(fake_.Size(0, 100), kSS + kSS);  // units 0, 3
  EXPECT_EQ(fake_.Size(1, 101), kSS + 10);   // units 1, 4 (partial)
  EXPECT_EQ(fake_.Size(2, 102), kSS);        // unit 2
  // Growing again shows zeros where the data was cut.
  auto r = io_.Read(l, 7 * kSS, 0, 7 * kSS, {});
  ASSERT_TRUE(r.ok());
  std::string got = r->Flatten();
  EXPECT_EQ(got.substr(0, new_size), std::string(new_size, 'a'));
  EXPECT_EQ(got.substr(new_size), std::string(7 * kSS - new_size, '\0'));
}

TEST_F(FileIoTest, SyncGroupsObjectsPerOst) {
  FileLayout l;
  l.stripe_size = kSS;
  l.objects = {{0, 1}, {1, 2}, {0, 3}};
  ASSERT_TRUE(io_.Sync(l, {}).ok());
  absl::MutexLock lock(&fake_.mu_);
  ASSERT_EQ(fake_.synced_.size(), 2u);
  EXPECT_EQ(fake_.synced_[0], (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(fake_.synced_[1], (std::vector<uint64_t>{2}));
}

TEST_F(FileIoTest, ErrorOfOnePieceFailsTheRequest) {
  FileLayout l = MakeLayout(kSS, 4);
  {
    absl::MutexLock lock(&fake_.mu_);
    fake_.failing_ost_ = 2;
  }
  std::string data(4 * kSS, 'q');
  absl::Status s = io_.Write(l, 0, data.data(), data.size(), {});
  EXPECT_EQ(ToErrno(s), EIO);
  auto r = io_.Read(l, 4 * kSS, 0, 4 * kSS, {});
  EXPECT_EQ(ToErrno(r.status()), EIO);
  // A request not touching the failed OST still works.
  EXPECT_TRUE(io_.Write(l, 0, "ok", 2, {}).ok());
}

TEST_F(FileIoTest, PiecesOfOneRequestRunInParallel) {
  FileLayout l = MakeLayout(kSS, 4);
  std::string data(4 * kSS, 'p');
  fake_.ExpectConcurrent(4);
  ASSERT_TRUE(io_.Write(l, 0, data.data(), data.size(), {}).ok());
  EXPECT_TRUE(fake_.met()) << "the four stripes were not sent concurrently";
}

TEST_F(FileIoTest, EmptyLayoutIsAnError) {
  FileLayout l;
  EXPECT_EQ(ToErrno(io_.Write(l, 0, "x", 1, {})), EIO);
}

void RandomAgainstModel(FileIo& io, const FileLayout& l, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string model;
  const uint64_t kMax = 3 * l.stripe_size * l.objects.size() + 777;
  for (int i = 0; i < 600; ++i) {
    int op = rng() % 10;
    if (op < 5) {
      uint64_t off = rng() % kMax;
      uint64_t len = 1 + rng() % (2 * l.stripe_size);
      std::string buf(len, '\0');
      for (char& c : buf) c = static_cast<char>('a' + rng() % 26);
      ASSERT_TRUE(io.Write(l, off, buf.data(), len, {}).ok());
      if (model.size() < off + len) model.resize(off + len, '\0');
      model.replace(off, len, buf);
    } else if (op < 6) {
      uint64_t size = rng() % kMax;
      if (size < model.size()) ASSERT_TRUE(io.Truncate(l, size, {}).ok());
      model.resize(size, '\0');
    } else {
      uint64_t off = rng() % (kMax + 10);
      uint64_t len = 1 + rng() % (3 * l.stripe_size);
      auto r = io.Read(l, model.size(), off, len, {});
      ASSERT_TRUE(r.ok());
      std::string want = off >= model.size() ? "" : model.substr(off, len);
      ASSERT_EQ(r->Flatten(), want) << "op " << i << " off " << off;
    }
  }
}

TEST_F(FileIoTest, RandomOpsMatchModelOneStripe) {
  RandomAgainstModel(io_, MakeLayout(kSS, 1), 1);
}

TEST_F(FileIoTest, RandomOpsMatchModelFourStripes) {
  RandomAgainstModel(io_, MakeLayout(kSS, 4), 2);
}

}  // namespace
}  // namespace stripefs::client
