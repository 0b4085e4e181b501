// Crash recovery of the mount's MDS state (TargetClient::SetRecovery /
// Recover, Keepalive): a request that finds a new MDS instance after a
// resend waits until the open files are re-established there, the
// re-establishing is done once per instance however many requests find it,
// the recovery's own requests never wait on themselves (also behind a closed
// gate), and an idle mount's keepalive finds the new instance by itself;
// the keepalive hears of this mount's eviction once and fails its open files
// at once (Fs::Evicted), and the lease is doubted after half its length
// without a Ping.
// A fake MDS over real gRPC whose instance the test changes.
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/errors.h"
#include "dlm/fake_clock.h"
#include "fuse-client/fs.h"
#include "fuse-client/keepalive.h"
#include "fuse-client/ost_set.h"
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
    // Protocol 1, so Fs's opens come as Open (served below).
    if (r.ok() && proto1.load()) reply->set_proto(1);
    return rpc::ToGrpc(r.status());
  }
  grpc::Status Open(grpc::ServerContext*, const rpc::OpenRequest* req,
                    rpc::OpenReply* reply) override {
    reply->set_handle(next_handle.fetch_add(1));
    rpc::Attr* a = reply->mutable_entry()->mutable_attr();
    a->set_ino(req->ino());
    a->set_mode(S_IFREG | 0644);
    a->set_nlink(1);
    return grpc::Status::OK;
  }
  grpc::Status Release(grpc::ServerContext*, const rpc::ReleaseRequest*,
                       rpc::ReleaseReply*) override {
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext*, const rpc::StatusRequest* req,
                      rpc::StatusReply* reply) override {
    status_client_id = req->client_id();
    // An eviction is reported until acknowledged (like ClientLeases).
    last_ack = req->evicted_ack();
    uint64_t e = evicted.load();
    if (e != 0 && req->evicted_ack() == e && !ignore_ack.load() &&
        req->evicted_ack_instance() == instance.load()) {
      evicted.compare_exchange_strong(e, 0);
    }
    reply->set_target("mdt0");
    reply->set_instance(instance.load());
    reply->set_evicted(evicted.load());
    reply->set_client_lease_ms(lease_ms.load());
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
  std::atomic<uint64_t> evicted{0};   // unacknowledged eviction id
  std::atomic<uint64_t> last_ack{0};  // StatusRequest.evicted_ack last seen
  std::atomic<uint64_t> lease_ms{0};
  std::atomic<bool> ignore_ack{false};  // as if acknowledgements were lost
  std::atomic<bool> proto1{false};
  std::atomic<uint64_t> next_handle{1};
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

// The keepalive learns of an eviction once: the evicted handler (the
// mount's Fs::Evicted) runs at the round that first sees it, the next round
// acknowledges it, and a repeated report (the acknowledgement lost) does not
// run it again; a new eviction, or one reported by another instance, does.
TEST_F(RecoveryTest, KeepaliveReportsAnEvictionOnceAndAcknowledgesIt) {
  std::atomic<int> evictions{0};
  mds_->SetEvictedHandler([&] { evictions.fetch_add(1); });
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(evictions.load(), 0);
  EXPECT_EQ(fake_.last_ack.load(), 0u);

  fake_.evicted = 5;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(evictions.load(), 1);
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());  // acknowledges
  EXPECT_EQ(fake_.last_ack.load(), 5u);
  EXPECT_EQ(fake_.evicted.load(), 0u);
  EXPECT_EQ(evictions.load(), 1);
  // Reported again (the acknowledgement lost): nothing more.
  fake_.evicted = 5;
  fake_.ignore_ack = true;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(evictions.load(), 1);
  EXPECT_EQ(fake_.evicted.load(), 5u);
  fake_.ignore_ack = false;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fake_.evicted.load(), 0u);
  EXPECT_EQ(evictions.load(), 1);

  fake_.evicted = 6;  // evicted again
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(evictions.load(), 2);
  // A restarted MDS numbers its evictions afresh: the same id from the new
  // instance is a new eviction, and the acknowledgement naming the old
  // instance does not clear it.
  fake_.instance = 9;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(evictions.load(), 3);
  EXPECT_EQ(mds_->instance(), 9u);
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fake_.last_ack.load(), 6u);
  EXPECT_EQ(fake_.evicted.load(), 0u);
  EXPECT_EQ(evictions.load(), 3);
}

// The mount's side: the keepalive hears of the eviction and every file open
// at that moment fails with EIO at once, reads and writes included (no OST
// is asked: there is none here); a file opened afterwards works.
TEST_F(RecoveryTest, KeepaliveEvictionFailsEveryOpenFileAtOnce) {
  fake_.proto1 = true;
  ASSERT_TRUE(mds_->Reconnect().ok());
  ASSERT_EQ(mds_->proto(), 1u);
  OstSet osts;
  Fs fs(mds_.get(), &osts, FsOptions{});
  mds_->SetEvictedHandler([&fs] { fs.Evicted(); });
  const OpCtx ctx;
  absl::StatusOr<OpenFile*> a = fs.Open(ctx, 20, O_RDWR);
  absl::StatusOr<OpenFile*> b = fs.Open(ctx, 21, O_RDONLY);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(fs.Read(ctx, *a, 0, 4).ok());  // empty file: no OST needed
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fs.BrokenFiles(), 0u);

  fake_.evicted = 1;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fs.BrokenFiles(), 2u);
  EXPECT_EQ(ToErrno(fs.Read(ctx, *a, 0, 4).status()), EIO);
  EXPECT_EQ(ToErrno(fs.Write(ctx, *a, 0, "xx", 2).status()), EIO);
  EXPECT_EQ(ToErrno(fs.Read(ctx, *b, 0, 4).status()), EIO);
  EXPECT_EQ(ToErrno(fs.Fsync(ctx, *a)), EIO);

  absl::StatusOr<OpenFile*> c = fs.Open(ctx, 20, O_RDWR);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(fs.Read(ctx, *c, 0, 4).ok());
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());  // acknowledges: nothing more
  EXPECT_EQ(fs.BrokenFiles(), 2u);
  EXPECT_TRUE(fs.Release(ctx, *a).ok());
  EXPECT_TRUE(fs.Release(ctx, *b).ok());
  EXPECT_TRUE(fs.Release(ctx, *c).ok());
}

// The mount doubts its lease once no Ping succeeded for half the lease the
// MDS reported; a successful Ping clears the doubt. Without a lease (an MDS
// without leases, or release N) it never doubts.
TEST_F(RecoveryTest, LeaseInDoubtAfterHalfTheLeaseWithoutAPing) {
  dlm::FakeClock clock(absl::FromUnixSeconds(1000));
  TargetOptions o;
  o.client_id = 4343;
  o.deadline = absl::Seconds(5);
  o.clock = &clock;
  MdsClient mds(absl::StrCat("127.0.0.1:", port_), o);
  ASSERT_TRUE(mds.Connect().ok());
  ASSERT_TRUE(mds.Ping().ok());
  clock.Advance(absl::Hours(1));
  EXPECT_FALSE(mds.LeaseInDoubt());  // no lease reported

  fake_.lease_ms = 60000;
  ASSERT_TRUE(mds.Ping().ok());
  clock.Advance(absl::Seconds(30));
  EXPECT_FALSE(mds.LeaseInDoubt());
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(mds.LeaseInDoubt());
  ASSERT_TRUE(mds.Ping().ok());
  EXPECT_FALSE(mds.LeaseInDoubt());
}

}  // namespace
}  // namespace stripefs::client
