// The object ranges that data locks cover (pure arithmetic of
// data_locks.h; the locking itself is covered end to end by
// tests/e2e/test_extent_locks.py and test_coherence_data.py).
#include "fuse-client/data_locks.h"

#include <map>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

FileLayout Layout(uint64_t stripe_size, int count) {
  FileLayout l;
  l.stripe_size = stripe_size;
  for (int i = 0; i < count; ++i) {
    l.objects.push_back({static_cast<uint32_t>(i), 100u + i});
  }
  return l;
}

TEST(ObjectResourceTest, ParsesBackWhatItNames) {
  uint32_t ost = 0;
  uint64_t oid = 0;
  ASSERT_TRUE(ParseObjResource(ObjResource(3, 12345), &ost, &oid));
  EXPECT_EQ(ost, 3u);
  EXPECT_EQ(oid, 12345u);
  EXPECT_FALSE(ParseObjResource("ino:5", &ost, &oid));
  EXPECT_FALSE(ParseObjResource("obj:5", &ost, &oid));
  EXPECT_FALSE(ParseObjResource("obj:x:5", &ost, &oid));
}

// Objects that record what reached them.
class RecordingObjects : public ObjectIo {
 public:
  absl::StatusOr<std::string> Read(uint32_t, uint64_t, uint64_t, uint32_t,
                                   const InterruptFn&) override {
    return std::string();
  }
  absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                     const char* data, size_t len,
                     const InterruptFn&) override {
    absl::MutexLock l(&mu_);
    got_[{ost, oid}].append(data, len);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint32_t, uint64_t, uint64_t,
                        const InterruptFn&) override {
    return absl::OkStatus();
  }
  absl::Status Sync(uint32_t, const std::vector<uint64_t>&,
                    const InterruptFn&) override {
    return absl::OkStatus();
  }
  std::string Got(uint32_t ost, uint64_t oid) {
    absl::MutexLock l(&mu_);
    return got_[{ost, oid}];
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<uint32_t, uint64_t>, std::string> got_
      ABSL_GUARDED_BY(mu_);
};

dlm::LockInfo ObjLock(uint32_t ost, uint64_t oid, dlm::LockMode mode) {
  dlm::LockInfo l;
  l.spec.resource = {ObjResource(ost, oid), dlm::LockType::kExtent};
  l.spec.mode = mode;
  l.spec.start = 0;
  l.spec.end = dlm::kExtentEof;
  l.granted = true;
  return l;
}

// The blocking callback of a PW lock sends the writes buffered under it
// before the lock goes; a lost lock drops them (the next fsync fails).
TEST(DataLocksWriteBehindTest, CallbackWritesBackBeforeTheLockGoes) {
  auto dlm = dlm::DlmClient::Start(
      {.address = "127.0.0.1:1", .defer_connect = true});
  ASSERT_TRUE(dlm.ok());
  RecordingObjects objects;
  WriteBehindOptions o;
  o.max_age = absl::Hours(1);
  WriteBehind wb(&objects, o);
  DataLocks locks(dlm->get());
  locks.set_write_behind(&wb);
  ASSERT_TRUE(wb.Write(1, 10, 0, "kept", 4, nullptr).ok());
  ASSERT_TRUE(wb.Write(1, 11, 0, "lost", 4, nullptr).ok());
  locks.OnBlocking(ObjLock(1, 10, dlm::LockMode::kPR), false);
  EXPECT_EQ(objects.Got(1, 10), "");  // a read lock covers no writes
  locks.OnBlocking(ObjLock(1, 10, dlm::LockMode::kPW), false);
  EXPECT_EQ(objects.Got(1, 10), "kept");
  locks.OnBlocking(ObjLock(1, 11, dlm::LockMode::kPW), true);
  EXPECT_EQ(wb.dirty_bytes(), 0u);
  EXPECT_EQ(objects.Got(1, 11), "");
  EXPECT_FALSE(wb.Sync(1, {11}, nullptr).ok());
}

TEST(ObjectResourceTest, NamesOstAndObject) {
  EXPECT_EQ(ObjResource(3, 17), "obj:3:17");
}

TEST(ObjectExtentsTest, OneObjectIsTheFileRange) {
  auto e = ObjectExtents(Layout(1 << 20, 1), 5000, 10000);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].stripe, 0u);
  EXPECT_EQ(e[0].start, 5000u);
  EXPECT_EQ(e[0].end, 14999u);
}

TEST(ObjectExtentsTest, StripedRangeCoversEachObjectOnce) {
  // 64 KiB units over 4 objects; [60 KiB, 60 KiB + 300 KiB) touches units
  // 0..5: object 0 units 0 and 4, object 1 units 1 and 5, objects 2, 3.
  const uint64_t k = 1024;
  auto e = ObjectExtents(Layout(64 * k, 4), 60 * k, 300 * k);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].start, 60 * k);  // unit 0 from 60 KiB
  EXPECT_EQ(e[0].end, 128 * k - 1);  // through unit 4 (object bytes 64..128K)
  EXPECT_EQ(e[1].start, 0u);
  EXPECT_EQ(e[1].end, 64 * k + (360 - 320) * k - 1);  // unit 5 up to 360 KiB
  EXPECT_EQ(e[2].start, 0u);
  EXPECT_EQ(e[2].end, 64 * k - 1);
  EXPECT_EQ(e[3].end, 64 * k - 1);
}

TEST(ObjectExtentsTest, EmptyRangeOrLayoutTouchesNothing) {
  EXPECT_TRUE(ObjectExtents(Layout(1 << 20, 2), 100, 0).empty());
  EXPECT_TRUE(ObjectExtents(FileLayout{}, 0, 100).empty());
}

TEST(ContendedChunkTest, AboutOneMebibyteOfFilePerChunk) {
  const uint64_t k = 1024;
  EXPECT_EQ(ContendedChunk(Layout(1 << 20, 1)), 1u << 20);
  EXPECT_EQ(ContendedChunk(Layout(64 * k, 4)), 256 * k);  // 1 MiB of file
  EXPECT_EQ(ContendedChunk(Layout(1 << 20, 4)), 1u << 20);  // a whole unit
  EXPECT_EQ(ContendedChunk(Layout(4 << 20, 1)), 4u << 20);
}

}  // namespace
}  // namespace stripefs::client
