// Crash recovery of the mount's MDS state (TargetClient::SetRecovery /
// Recover, Keepalive): a request that finds a new MDS instance after a
// resend waits until the open files are re-established there, the
// re-establishing is done once per instance however many requests find it,
// the recovery's own requests never wait on themselves (also behind a closed
// gate), and an idle mount's keepalive finds the new instance by itself.
// A fake MDS over real gRPC whose instance the test changes.
#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/errors.h"
#include "fuse-client/keepalive.h"
#include "fuse-client/target_client.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rpc/handshake.h"
#include "rpc/status.h"

namespace stripefs::client {
namespace {

// The inode the recovery function asks for, to tell its requests apart.
constexpr uint64_t kRecoveryIno = 999;

class FakeMds final : public rpc::Mds::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*, const rpc::ConnectRequest* req,
                       rpc::ConnectReply* reply) override {
    auto r = rpc::AnswerConnect(*req, "mdt0", instance.load());
    if (r.ok()) *reply = *r;
    return rpc::ToGrpc(r.status());
  }
  grpc::Status Status(grpc::ServerContext*, const rpc::StatusRequest* req,
                      rpc::StatusReply* reply) override {
    status_client_id = req->client_id();
    reply->set_target("mdt0");
    reply->set_instance(instance.load());
    return grpc::Status::OK;
  }
  grpc::Status GetAttr(grpc::ServerContext*, const rpc::GetAttrRequest* req,
                       rpc::Entry* reply) override {
    // A "crash": the next `fail` requests are cut (UNAVAILABLE) and the
    // server comes back as a new instance.
    if (fail.load() > 0 && req->ino() != kRecoveryIno) {
      if (fail.fetch_sub(1) == 1) instance = next_instance.load();
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection reset");
    }
    absl::MutexLock l(&mu);
    served.push_back(req->ino());
    reply->mutable_attr()->set_ino(req->ino());
    return grpc::Status::OK;
  }

  std::atomic<uint64_t> instance{1};
  std::atomic<uint64_t> next_instance{2};
  std::atomic<int> fail{0};
  std::atomic<uint64_t> status_client_id{0};
  absl::Mutex mu;
  std::vector<uint64_t> served ABSL_GUARDED_BY(mu);  // GetAttr inos, in order
};

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(&fake_);
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr && port_ != 0);
    TargetOptions o;
    o.client_id = 4242;
    o.deadline = absl::Seconds(5);
    o.retry_window = absl::Seconds(10);
    mds_ = std::make_unique<MdsClient>(absl::StrCat("127.0.0.1:", port_), o);
    ASSERT_TRUE(mds_->Connect().ok());
    // The recovery function re-establishes "open files" with requests of
    // its own, as Fs::ReopenAll does.
    mds_->SetRecovery([this](bool evicted) -> absl::Status {
      recoveries_.fetch_add(1);
      last_evicted_ = evicted;
      if (absl::Status s = fail_recovery_.exchange(absl::OkStatus());
          !s.ok()) {
        return s;
      }
      absl::SleepFor(absl::Milliseconds(100));  // let other requests queue
      return GetAttr(kRecoveryIno);
    });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  absl::Status GetAttr(uint64_t ino) {
    rpc::Entry e;
    return mds_->Call(
        &rpc::Mds::Stub::GetAttr, "GetAttr", {},
        [ino](rpc::GetAttrRequest& r) { r.set_ino(ino); }, &e);
  }
  std::vector<uint64_t> Served() {
    absl::MutexLock l(&fake_.mu);
    return fake_.served;
  }

  FakeMds fake_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MdsClient> mds_;
  std::atomic<int> recoveries_{0};
  std::atomic<bool> last_evicted_{false};
  struct AtomicStatus {
    absl::Mutex mu;
    absl::Status s;
    absl::Status exchange(absl::Status n) {
      absl::MutexLock l(&mu);
      std::swap(s, n);
      return n;
    }
  } fail_recovery_;
};

TEST_F(RecoveryTest, ResentRequestsWaitForOneRecoveryOnTheNewInstance) {
  ASSERT_TRUE(GetAttr(1).ok());
  EXPECT_EQ(mds_->state_instance(), 1u);
  constexpr int kThreads = 4;
  fake_.fail = kThreads;  // every thread's next request is cut
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = GetAttr(100 + i); });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(recoveries_.load(), 1);
  EXPECT_FALSE(last_evicted_.load());
  EXPECT_EQ(mds_->instance(), 2u);
  EXPECT_EQ(mds_->state_instance(), 2u);
  // Served: 1, then the recovery's own request, then the resent ones.
  std::vector<uint64_t> served = Served();
  ASSERT_EQ(served.size(), 2u + kThreads);
  EXPECT_EQ(served[0], 1u);
  EXPECT_EQ(served[1], kRecoveryIno);
  // Later requests on the same instance recover nothing more.
  ASSERT_TRUE(GetAttr(2).ok());
  EXPECT_EQ(recoveries_.load(), 1);
}

TEST_F(RecoveryTest, FailedRecoveryIsRetriedByTheNextRequest) {
  ASSERT_TRUE(fail_recovery_.exchange(Errno(EIO, "reopen failed")).ok());
  fake_.fail = 1;
  absl::Status s = GetAttr(5);
  EXPECT_EQ(ToErrno(s), EIO) << s;
  EXPECT_EQ(mds_->state_instance(), 1u);
  EXPECT_TRUE(GetAttr(6).ok());
  EXPECT_EQ(recoveries_.load(), 2);
  EXPECT_EQ(mds_->state_instance(), 2u);
  std::vector<uint64_t> served = Served();
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[0], kRecoveryIno);
  EXPECT_EQ(served[1], 6u);
}

TEST_F(RecoveryTest, KeepaliveFindsANewInstanceOfAnIdleMount) {
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fake_.status_client_id.load(), 4242u);
  EXPECT_EQ(recoveries_.load(), 0);
  fake_.instance = 7;  // restarted while this mount sent nothing
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(mds_->instance(), 7u);
  EXPECT_EQ(mds_->state_instance(), 7u);
  EXPECT_EQ(recoveries_.load(), 1);
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(recoveries_.load(), 1);
}

TEST_F(RecoveryTest, KeepaliveLeavesAClosedGateToTheControlledFailover) {
  mds_->gate().Close();
  fake_.instance = 3;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(recoveries_.load(), 0);
  // The failover's resume: reconnect and recover behind the closed gate;
  // the recovery's own request passes it.
  {
    GateBypass bypass;
    ASSERT_TRUE(mds_->Reconnect().ok());
  }
  absl::Status s = mds_->Recover({}, /*evicted=*/true);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(recoveries_.load(), 1);
  EXPECT_TRUE(last_evicted_.load());
  EXPECT_EQ(mds_->state_instance(), 3u);
  EXPECT_TRUE(mds_->gate().closed());
  mds_->gate().Reopen();
  EXPECT_TRUE(GetAttr(8).ok());
  EXPECT_EQ(recoveries_.load(), 1);
}

TEST_F(RecoveryTest, KeepaliveThreadStopsPromptly) {
  const absl::Time start = absl::Now();
  {
    Keepalive k(mds_.get(), absl::Seconds(30));
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(RecoveryTest, WaitForAnotherThreadsRecoveryIsInterruptible) {
  // The recovery function blocks until released; a second request waiting
  // for it gives up with EINTR when its syscall is interrupted.
  absl::Notification release;
  std::atomic<bool> in_recovery{false};
  mds_->SetRecovery([&](bool) -> absl::Status {
    in_recovery = true;
    release.WaitForNotificationWithTimeout(absl::Seconds(20));
    return absl::OkStatus();
  });
  fake_.instance = 5;
  {
    GateBypass bypass;
    ASSERT_TRUE(mds_->Connect().ok());
  }
  absl::Status first;
  std::thread t([&] { first = GetAttr(10); });
  for (int i = 0; i < 200 && !in_recovery.load(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(in_recovery.load());
  std::atomic<bool> interrupt{false};
  absl::Status second;
  std::thread u([&] {
    rpc::Entry e;
    second = mds_->Call(
        &rpc::Mds::Stub::GetAttr, "GetAttr", [&] { return interrupt.load(); },
        [](rpc::GetAttrRequest& r) { r.set_ino(11); }, &e);
  });
  absl::SleepFor(absl::Milliseconds(100));
  interrupt = true;
  u.join();
  EXPECT_EQ(ToErrno(second), EINTR) << second;
  release.Notify();
  t.join();
  EXPECT_TRUE(first.ok()) << first;
  std::vector<uint64_t> served = Served();
  ASSERT_EQ(served.size(), 1u);
  EXPECT_EQ(served[0], 10u);
}

}  // namespace
}  // namespace stripefs::client
