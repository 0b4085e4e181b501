#include "fuse-client/write_behind.h"

#include <cerrno>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::client {
namespace {

// In-memory objects whose writes can be held back or made to fail.
class FakeObjects : public ObjectIo {
 public:
  absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid, uint64_t offset,
                                   uint32_t len,
                                   const InterruptFn& intr) override {
    absl::MutexLock lock(&mu_);
    const std::string& o = objects_[{ost, oid}];
    if (offset >= o.size()) return std::string();
    return o.substr(offset, std::min<uint64_t>(len, o.size() - offset));
  }
  absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                     const char* data, size_t len,
                     const InterruptFn& intr) override {
    absl::MutexLock lock(&mu_);
    auto open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !hold_;
    };
    mu_.Await(absl::Condition(&open));
    ++writes_;
    if (fail_) return Errno(EIO, "fake OST write failed");
    std::string& o = objects_[{ost, oid}];
    if (o.size() < offset + len) o.resize(offset + len, '\0');
    o.replace(offset, len, data, len);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                        const InterruptFn& intr) override {
    absl::MutexLock lock(&mu_);
    objects_[{ost, oid}].resize(size, '\0');
    return absl::OkStatus();
  }
  absl::Status Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                    const InterruptFn& intr) override {
    return absl::OkStatus();
  }

  std::string Object(uint32_t ost, uint64_t oid) {
    absl::MutexLock lock(&mu_);
    return objects_[{ost, oid}];
  }
  int writes() {
    absl::MutexLock lock(&mu_);
    return writes_;
  }
  void Hold(bool h) {
    absl::MutexLock lock(&mu_);
    hold_ = h;
  }
  void Fail(bool f) {
    absl::MutexLock lock(&mu_);
    fail_ = f;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<uint32_t, uint64_t>, std::string> objects_
      ABSL_GUARDED_BY(mu_);
  int writes_ ABSL_GUARDED_BY(mu_) = 0;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
};

WriteBehindOptions Lazy() {
  WriteBehindOptions o;
  o.max_age = absl::Hours(1);  // nothing goes before someone asks
  return o;
}

TEST(WriteBehindTest, WriteReturnsBeforeTheOstHasItAndCloseSendsIt) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  fake.Hold(true);  // the OST would block every write
  ASSERT_TRUE(wb.Write(0, 7, 0, "hello", 5, nullptr).ok());
  ASSERT_TRUE(wb.Write(0, 7, 5, " world", 6, nullptr).ok());
  EXPECT_EQ(fake.Object(0, 7), "");
  EXPECT_EQ(wb.dirty_bytes(), 11u);
  fake.Hold(false);
  ASSERT_TRUE(wb.Flush({{0, 7}}, nullptr).ok());
  EXPECT_EQ(fake.Object(0, 7), "hello world");
  EXPECT_EQ(fake.writes(), 1);  // adjacent writes coalesced into one RPC
  EXPECT_EQ(wb.dirty_bytes(), 0u);
}

TEST(WriteBehindTest, BigAdjacentWritesGoAsTheyAreAndLandInOrder) {
  FakeObjects fake;
  WriteBehindOptions o = Lazy();
  o.flush_chunk = 1024;
  WriteBehind wb(&fake, o);
  fake.Hold(true);
  const std::string a(1024, 'a'), b(1024, 'b');
  ASSERT_TRUE(wb.Write(0, 4, 0, a.data(), a.size(), nullptr).ok());
  ASSERT_TRUE(wb.Write(0, 4, 1024, b.data(), b.size(), nullptr).ok());
  ASSERT_TRUE(wb.Write(0, 4, 2048, "tail", 4, nullptr).ok());
  fake.Hold(false);
  ASSERT_TRUE(wb.Flush({{0, 4}}, nullptr).ok());
  EXPECT_EQ(fake.Object(0, 4), a + b + "tail");
  EXPECT_EQ(fake.writes(), 3);
}

TEST(WriteBehindTest, OverlappingWritesKeepTheLastBytes) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  ASSERT_TRUE(wb.Write(1, 1, 10, "aaaaaaaaaa", 10, nullptr).ok());
  ASSERT_TRUE(wb.Write(1, 1, 0, "bbbbbbbbbbbbbbb", 15, nullptr).ok());
  ASSERT_TRUE(wb.Write(1, 1, 18, "cc", 2, nullptr).ok());
  ASSERT_TRUE(wb.Write(1, 1, 12, "d", 1, nullptr).ok());
  EXPECT_EQ(wb.dirty_bytes(), 20u);
  ASSERT_TRUE(wb.Flush({{1, 1}}, nullptr).ok());
  EXPECT_EQ(fake.Object(1, 1), std::string("bbbbbbbbbbbbdbbaaacc"));
}

TEST(WriteBehindTest, BlockingCallbackWritesBackOnlyThatObject) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  ASSERT_TRUE(wb.Write(0, 1, 0, "one", 3, nullptr).ok());
  ASSERT_TRUE(wb.Write(0, 2, 0, "two", 3, nullptr).ok());
  wb.WriteBack(0, 1);
  EXPECT_EQ(fake.Object(0, 1), "one");
  EXPECT_EQ(fake.Object(0, 2), "");
  EXPECT_EQ(wb.dirty_bytes(), 3u);
}

TEST(WriteBehindTest, ReadOfTheObjectSeesTheBufferedWrite) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  ASSERT_TRUE(wb.Write(2, 9, 4, "data", 4, nullptr).ok());
  absl::StatusOr<std::string> r = wb.Read(2, 9, 0, 100, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::string("\0\0\0\0data", 8));
}

TEST(WriteBehindTest, TruncateCutsAfterTheBufferedWrite) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  ASSERT_TRUE(wb.Write(0, 3, 0, "0123456789", 10, nullptr).ok());
  ASSERT_TRUE(wb.Truncate(0, 3, 4, nullptr).ok());
  EXPECT_EQ(fake.Object(0, 3), "0123");
}

TEST(WriteBehindTest, FailedWriteBackSurfacesOnNextWriteAndOnceOnClose) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  fake.Fail(true);
  ASSERT_TRUE(wb.Write(0, 5, 0, "lost", 4, nullptr).ok());
  wb.WriteBack(0, 5);  // a blocking callback: the error stays pending
  fake.Fail(false);
  EXPECT_EQ(ToErrno(wb.Write(0, 5, 4, "more", 4, nullptr)), EIO);
  EXPECT_EQ(ToErrno(wb.Flush({{0, 5}}, nullptr)), EIO);   // close
  EXPECT_TRUE(wb.Sync(0, {5}, nullptr).ok());  // reported once
  ASSERT_TRUE(wb.Write(0, 5, 0, "ok", 2, nullptr).ok());
  EXPECT_TRUE(wb.Sync(0, {5}, nullptr).ok());
  EXPECT_EQ(fake.Object(0, 5), "ok");
}

TEST(WriteBehindTest, LostLockDropsTheDataAndFsyncFails) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  ASSERT_TRUE(wb.Write(0, 6, 0, "gone", 4, nullptr).ok());
  wb.Discard(0, 6);
  EXPECT_EQ(wb.dirty_bytes(), 0u);
  EXPECT_EQ(ToErrno(wb.Sync(0, {6}, nullptr)), EIO);
  EXPECT_EQ(fake.Object(0, 6), "");
}

TEST(WriteBehindTest, DirtyMemoryIsBoundedAndWritersWait) {
  FakeObjects fake;
  WriteBehindOptions o = Lazy();
  o.max_dirty = 64 * 1024;
  o.max_object_dirty = 64 * 1024;
  WriteBehind wb(&fake, o);
  fake.Hold(true);
  const std::string block(16 * 1024, 'x');
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        wb.Write(0, 8, i * block.size(), block.data(), block.size(), nullptr)
            .ok());
  }
  absl::Notification done;
  std::thread writer([&] {
    EXPECT_TRUE(
        wb.Write(0, 8, 4 * block.size(), block.data(), block.size(), nullptr)
            .ok());
    done.Notify();
  });
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  EXPECT_LE(wb.dirty_bytes(), o.max_dirty);
  fake.Hold(false);
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  writer.join();
  ASSERT_TRUE(wb.Flush({{0, 8}}, nullptr).ok());
  EXPECT_EQ(fake.Object(0, 8), std::string(5 * block.size(), 'x'));
}

TEST(WriteBehindTest, PausedOstGetsItsDataFirstAndWritesWaitForResume) {
  FakeObjects fake;
  WriteBehind wb(&fake, Lazy());
  ASSERT_TRUE(wb.Write(1, 2, 0, "before", 6, nullptr).ok());
  ASSERT_TRUE(wb.Write(0, 2, 0, "other", 5, nullptr).ok());
  wb.PauseOst(1);
  EXPECT_EQ(fake.Object(1, 2), "before");
  EXPECT_EQ(fake.Object(0, 2), "");  // another OST keeps its buffer
  ASSERT_TRUE(wb.Write(0, 3, 0, "free", 4, nullptr).ok());
  absl::Notification done;
  std::thread writer([&] {
    EXPECT_TRUE(wb.Write(1, 2, 6, "after", 5, nullptr).ok());
    done.Notify();
  });
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  wb.ResumeOst(1);
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  writer.join();
  ASSERT_TRUE(wb.Flush({{1, 2}}, nullptr).ok());
  EXPECT_EQ(fake.Object(1, 2), "beforeafter");
}

TEST(WriteBehindTest, FullChunkAndOldDataGoWithoutBeingAsked) {
  FakeObjects fake;
  WriteBehindOptions o;
  o.flush_chunk = 1024;
  o.max_age = absl::Milliseconds(100);
  WriteBehind wb(&fake, o);
  const std::string chunk(1024, 'c');
  ASSERT_TRUE(wb.Write(0, 1, 0, chunk.data(), chunk.size(), nullptr).ok());
  ASSERT_TRUE(wb.Write(0, 2, 0, "x", 1, nullptr).ok());
  for (int i = 0; i < 100 && wb.dirty_bytes() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(wb.dirty_bytes(), 0u);
  EXPECT_EQ(fake.Object(0, 1), chunk);
  EXPECT_EQ(fake.Object(0, 2), "x");
}

}  // namespace
}  // namespace stripefs::client
