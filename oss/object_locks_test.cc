// ObjectLocks against a real in-process DLM: the OSS's locks before a
// truncate, punch or destroy take back exactly the client locks (and so the
// cached pages) they overlap.
#include "oss/object_locks.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "dlm/dlm_client.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
#include "gtest/gtest.h"
#include "storage/kv.h"

namespace stripefs::oss {
namespace {

using dlm::LockMode;
using dlm::LockSpec;
using dlm::LockType;

// Records the ranges asked back from a "mount".
class Recorder : public dlm::LockHandler {
 public:
  void OnBlocking(const dlm::LockInfo& lock, bool) override {
    absl::MutexLock l(&mu_);
    asked_.insert(lock.spec.start);
  }
  std::set<uint64_t> asked() {
    absl::MutexLock l(&mu_);
    return asked_;
  }

 private:
  absl::Mutex mu_;
  std::set<uint64_t> asked_;  // start of each lock asked back
};

class ObjectLocksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = storage::NewMemKv();
    auto m = dlm::LockManager::Open(kv_.get(), RealClock(), {});
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
    service_ = std::make_unique<dlm::DlmService>(
        dlm::DlmServiceOptions{.target = "dlm", .instance = 1},
        manager_.get());
    auto s = dlm::StartDlmServer(service_.get(), "127.0.0.1:0", &port_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    mount_ = Client("mount");
    mount_->RegisterHandler("obj:", &recorder_);
    oss_ = Client("ost3");
  }
  void TearDown() override {
    mount_.reset();
    oss_.reset();
    service_->SetStopping();
    ASSERT_TRUE(manager_->Close().ok());
    server_->Shutdown();
    server_.reset();
  }
  std::unique_ptr<dlm::DlmClient> Client(const std::string& name) {
    auto c = dlm::DlmClient::Start(
        {.address = "127.0.0.1:" + std::to_string(port_), .name = name});
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }
  // The mount caches an exact PR lock over [start, end] of obj:3:42.
  void MountCaches(uint64_t start, uint64_t end) {
    LockSpec spec{{"obj:3:42", LockType::kExtent}, LockMode::kPR, 0, start,
                  end};
    dlm::LockOptions opts;
    opts.exact = true;
    auto l = mount_->Lock(spec, opts);
    ASSERT_TRUE(l.ok()) << l.status();
    mount_->Release(l->handle);  // cached, not in use
  }

  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<dlm::LockManager> manager_;
  std::unique_ptr<dlm::DlmService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  Recorder recorder_;
  std::unique_ptr<dlm::DlmClient> mount_;
  std::unique_ptr<dlm::DlmClient> oss_;
};

TEST_F(ObjectLocksTest, ResourceNamesTheOstAndObject) {
  ObjectLocks locks(oss_.get(), 3);
  EXPECT_EQ(locks.Resource(42), "obj:3:42");
}

TEST_F(ObjectLocksTest, TruncateTakesBackOnlyLocksBeyondTheCut) {
  MountCaches(0, 4095);
  MountCaches(4096, 8191);
  MountCaches(8192, 1 << 20);
  ObjectLocks locks(oss_.get(), 3);
  {
    auto held = locks.ForTruncate(42, 6000);
    ASSERT_TRUE(held.ok()) << held.status();
    // Granted only once the mount gave back what lies beyond 6000.
    EXPECT_EQ(recorder_.asked(), (std::set<uint64_t>{4096, 8192}));
  }
  // The OSS does not keep it: the mount may lock there again at once.
  dlm::LockOptions opts;
  opts.no_wait = true;
  auto again = mount_->Lock(
      {{"obj:3:42", LockType::kExtent}, LockMode::kPW, 0, 6000, 9000}, opts);
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) mount_->Release(again->handle);
}

TEST_F(ObjectLocksTest, PunchTakesBackTheRangeAndDestroyEverything) {
  MountCaches(0, 4095);
  MountCaches(4096, 8191);
  ObjectLocks locks(oss_.get(), 3);
  {
    auto held = locks.ForPunch(42, 5000, 100);
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_EQ(recorder_.asked(), (std::set<uint64_t>{4096}));
  }
  {
    auto held = locks.ForDestroy(42);
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_EQ(recorder_.asked(), (std::set<uint64_t>{0, 4096}));
  }
}

TEST(ObjectLocksNoDlm, EveryCallIsANoOp) {
  ObjectLocks locks(nullptr, 0);
  EXPECT_FALSE(locks.enabled());
  EXPECT_TRUE(locks.ForTruncate(1, 0).ok());
  EXPECT_TRUE(locks.ForPunch(1, 0, 10).ok());
  EXPECT_TRUE(locks.ForDestroy(1).ok());
}

}  // namespace
}  // namespace stripefs::oss
