// stripefs_oss_core on its own: this binary links only the core library
// (no stripefs_proto, no gRPC), and the generated headers are not on its
// include path. It also checks that ObjectStore takes the object locks of
// its truncates, punches and destroys itself (object_lock_taker.h).
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "oss/object_lock_taker.h"
#include "oss/object_store.h"

#if __has_include("rpc/proto/oss.pb.h")
#error "the generated protobuf headers must not be reachable from the OSS core"
#endif

namespace stripefs::oss {
namespace {

class RecordingLocks final : public ObjectLockTaker {
 public:
  absl::StatusOr<ObjectLock> ForTruncate(uint64_t oid,
                                         uint64_t size) override {
    return Take("truncate " + std::to_string(oid) + " " +
                std::to_string(size));
  }
  absl::StatusOr<ObjectLock> ForPunch(uint64_t oid, uint64_t offset,
                                      uint64_t length) override {
    return Take("punch " + std::to_string(oid) + " " +
                std::to_string(offset) + "+" + std::to_string(length));
  }
  absl::StatusOr<ObjectLock> ForDestroy(uint64_t oid) override {
    return Take("destroy " + std::to_string(oid));
  }
  std::vector<std::string> taken;
  int held = 0;

 private:
  absl::StatusOr<ObjectLock> Take(std::string what) {
    taken.push_back(std::move(what));
    ++held;
    return ObjectLock([this] { --held; });
  }
};

TEST(OssCoreBoundaryTest, ChangesTakeTheirObjectLocks) {
  char tmpl[] = "/tmp/stripefs-oss-core-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    auto store = ObjectStore::Open({.data_dir = dir + "/data"});
    ASSERT_TRUE(store.ok()) << store.status();
    RecordingLocks locks;
    (*store)->set_object_locks(&locks);
    auto first = (*store)->Precreate(4);
    ASSERT_TRUE(first.ok()) << first.status();
    const uint64_t oid = *first;
    ASSERT_TRUE((*store)->Write(oid, 0, std::string(8192, 'x'), false).ok());
    EXPECT_TRUE(locks.taken.empty());  // writes take none
    ASSERT_TRUE((*store)->Truncate(oid, 5000).ok());
    ASSERT_TRUE((*store)->Punch(oid, 0, 4096).ok());
    ASSERT_TRUE((*store)->Destroy({oid}).ok());
    const std::string o = std::to_string(oid);
    EXPECT_EQ(locks.taken,
              (std::vector<std::string>{"truncate " + o + " 5000",
                                        "punch " + o + " 0+4096",
                                        "destroy " + o}));
    EXPECT_EQ(locks.held, 0);  // each given back after its change
    // A bulk clean-up takes none.
    locks.taken.clear();
    std::vector<uint64_t> many(ObjectStore::kMaxLockedDestroy + 1);
    for (size_t i = 0; i < many.size(); ++i) many[i] = 1000 + i;
    ASSERT_TRUE((*store)->Destroy(many).ok());
    EXPECT_TRUE(locks.taken.empty());
    ASSERT_TRUE((*store)->Close().ok());
  }
  ASSERT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
}

}  // namespace
}  // namespace stripefs::oss
