// Crash recovery of the mount's MDS state (TargetClient::SetRecovery /
// Recover, Keepalive): a request that finds a new MDS instance after a
// resend waits until the open files are re-established there, the
// re-establishing is done once per instance however many requests find it,
// the recovery's own requests never wait on themselves (also behind a closed
// gate), and an idle mount's keepalive finds the new instance by itself;
// the keepalive hears of this mount's eviction once and fails the open files
// it dropped at once (Fs::Evicted), and the lease is doubted after half its
// length without a Ping. The review fixes: a lost lock after another path
// recovered, the keepalive's Ping behind a closed gate, ConfirmLease's
// resends, fsync of a mount in doubt, an open under way during a recovery.
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
#include "common/fake_clock.h"
#include "fuse-client/failover.h"
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
    if (req->reopen_handle() != 0) {
      absl::MutexLock l(&mu);
      reopened.push_back(req->reopen_handle());
      reply->set_handle(req->reopen_handle());
    } else {
      if (block_open.exchange(false)) {
        // Held while the test runs a recovery on the client.
        open_arrived.Notify();
        open_release.WaitForNotificationWithTimeout(absl::Seconds(20));
      }
      reply->set_handle(next_handle.fetch_add(1));
    }
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
    // A restart: the next `status_fail` Status calls are cut, then the
    // server answers as instance `next_instance`.
    if (status_fail.load() > 0) {
      if (status_fail.fetch_sub(1) == 1) instance = next_instance.load();
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection reset");
    }
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
    reply->set_evicted_below_handle(evicted_below.load());
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
  std::atomic<uint64_t> evicted_below{0};  // StatusReply.evicted_below_handle
  std::atomic<int> status_fail{0};
  std::atomic<bool> block_open{false};  // hold the next (non-reopen) Open
  absl::Notification open_arrived;
  absl::Notification open_release;
  std::atomic<uint64_t> last_ack{0};  // StatusRequest.evicted_ack last seen
  std::atomic<uint64_t> lease_ms{0};
  std::atomic<bool> ignore_ack{false};  // as if acknowledgements were lost
  std::atomic<bool> proto1{false};
  std::atomic<uint64_t> next_handle{1};
  absl::Mutex mu;
  std::vector<uint64_t> served ABSL_GUARDED_BY(mu);  // GetAttr inos, in order
  std::vector<uint64_t> reopened ABSL_GUARDED_BY(mu);  // Open reopen_handles
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
  mds_->SetEvictedHandler([&](uint64_t) { evictions.fetch_add(1); });
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
// is asked: there is none here); a file opened afterwards works. (An MDS
// that does not say which handles it dropped, evicted_below_handle 0:
// every open file counts as lost.)
TEST_F(RecoveryTest, KeepaliveEvictionFailsEveryOpenFileAtOnce) {
  fake_.proto1 = true;
  ASSERT_TRUE(mds_->Reconnect().ok());
  ASSERT_EQ(mds_->proto(), 1u);
  OstSet osts;
  Fs fs(mds_.get(), &osts, FsOptions{});
  mds_->SetEvictedHandler([&fs](uint64_t below) { fs.Evicted(below); });
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
  FakeClock clock(absl::FromUnixSeconds(1000));
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


// The mount missed the stopping MDS's callback (its gate
// stayed open), so the keepalive found the new instance first and
// re-established the files without the eviction pass; the watch's later
// resume with a lost lock still applies it (evicted=true) on that instance.
// A lost lock with no recovery since the last resume (the MDS kept
// running), or a clean resume, runs nothing more.
TEST_F(RecoveryTest, LostLockAfterTheKeepaliveRecoveredStillAppliesTheEviction) {
  fake_.instance = 3;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(recoveries_.load(), 1);
  EXPECT_FALSE(last_evicted_.load());
  EXPECT_EQ(mds_->state_instance(), 3u);

  MountFailover::Pause(*mds_);
  absl::Status s = MountFailover::ResumeMds(*mds_, /*lost=*/true);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(recoveries_.load(), 2);
  EXPECT_TRUE(last_evicted_.load());
  EXPECT_FALSE(mds_->gate().closed());

  // Lost again, same instance, nothing moved since: the handles are there.
  MountFailover::Pause(*mds_);
  ASSERT_TRUE(MountFailover::ResumeMds(*mds_, true).ok());
  EXPECT_EQ(recoveries_.load(), 2);

  // A plain recovery then a clean resume: that resume clears it.
  fake_.instance = 4;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(recoveries_.load(), 3);
  MountFailover::Pause(*mds_);
  ASSERT_TRUE(MountFailover::ResumeMds(*mds_, false).ok());
  MountFailover::Pause(*mds_);
  ASSERT_TRUE(MountFailover::ResumeMds(*mds_, true).ok());
  EXPECT_EQ(recoveries_.load(), 3);
  EXPECT_FALSE(last_evicted_.load());
  EXPECT_TRUE(GetAttr(8).ok());
}

// While a controlled failover holds the gate closed the
// keepalive still sends Status with the client id (the lease is renewed),
// but leaves the reconnect and the recovery to the failover.
TEST_F(RecoveryTest, KeepalivePingsWhileTheGateIsClosed) {
  mds_->gate().Close();
  fake_.instance = 3;
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fake_.status_client_id.load(), 4242u);
  EXPECT_EQ(mds_->instance(), 1u);  // no reconnect
  EXPECT_EQ(recoveries_.load(), 0);
  mds_->gate().Reopen();
}

// The MDS says which handles the eviction dropped
// (StatusReply.evicted_below_handle); a file opened after the eviction but
// before the keepalive heard of it keeps working.
TEST_F(RecoveryTest, EvictionFailsOnlyTheFilesItDropped) {
  fake_.proto1 = true;
  ASSERT_TRUE(mds_->Reconnect().ok());
  OstSet osts;
  Fs fs(mds_.get(), &osts, FsOptions{});
  mds_->SetEvictedHandler([&fs](uint64_t below) { fs.Evicted(below); });
  const OpCtx ctx;
  absl::StatusOr<OpenFile*> a = fs.Open(ctx, 20, O_RDWR);
  absl::StatusOr<OpenFile*> b = fs.Open(ctx, 21, O_RDONLY);
  ASSERT_TRUE(a.ok() && b.ok());
  // Evicted here: handles below the next one were dropped.
  fake_.evicted_below = fake_.next_handle.load();
  fake_.evicted = 1;
  absl::StatusOr<OpenFile*> c = fs.Open(ctx, 22, O_RDWR);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(Keepalive::Round(*mds_).ok());
  EXPECT_EQ(fs.BrokenFiles(), 2u);
  EXPECT_EQ(ToErrno(fs.Read(ctx, *a, 0, 4).status()), EIO);
  EXPECT_EQ(ToErrno(fs.Read(ctx, *b, 0, 4).status()), EIO);
  EXPECT_TRUE(fs.Read(ctx, *c, 0, 4).ok());
  EXPECT_TRUE(fs.Fsync(ctx, *c).ok());
  EXPECT_TRUE(fs.Release(ctx, *a).ok());
  EXPECT_TRUE(fs.Release(ctx, *b).ok());
  EXPECT_TRUE(fs.Release(ctx, *c).ok());
}

// A mount that doubts its lease asks the MDS like any
// request asks it: resending while it is unreachable (here a restart), and
// re-establishing the open files on the new instance that answers.
TEST_F(RecoveryTest, ConfirmLeaseResendsAndRecoversOnANewInstance) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  TargetOptions o;
  o.client_id = 4343;
  o.deadline = absl::Seconds(5);
  o.retry_window = absl::Seconds(30);
  o.clock = &clock;
  MdsClient mds(absl::StrCat("127.0.0.1:", port_), o);
  ASSERT_TRUE(mds.Connect().ok());
  std::atomic<int> recoveries{0};
  mds.SetRecovery([&](bool) {
    recoveries.fetch_add(1);
    return absl::OkStatus();
  });
  fake_.lease_ms = 60000;
  ASSERT_TRUE(mds.Ping().ok());
  clock.Advance(absl::Seconds(31));
  ASSERT_TRUE(mds.LeaseInDoubt());
  fake_.next_instance = 5;
  fake_.status_fail = 3;  // restarting: three Status calls cut
  absl::Status s = mds.ConfirmLease({});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(fake_.status_fail.load(), 0);
  EXPECT_EQ(mds.instance(), 5u);
  EXPECT_EQ(mds.state_instance(), 5u);
  EXPECT_EQ(recoveries.load(), 1);
  EXPECT_FALSE(mds.LeaseInDoubt());
}

// An fsync (and a write) of a mount that doubts its lease
// confirms it first; an eviction reported fails it with EIO before any OST
// is asked.
TEST_F(RecoveryTest, FsyncOfAMountInDoubtLearnsOfItsEvictionFirst) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  fake_.proto1 = true;
  TargetOptions o;
  o.client_id = 4343;
  o.deadline = absl::Seconds(5);
  o.clock = &clock;
  MdsClient mds(absl::StrCat("127.0.0.1:", port_), o);
  ASSERT_TRUE(mds.Connect().ok());
  OstSet osts;
  Fs fs(&mds, &osts, FsOptions{});
  mds.SetEvictedHandler([&fs](uint64_t below) { fs.Evicted(below); });
  const OpCtx ctx;
  absl::StatusOr<OpenFile*> a = fs.Open(ctx, 20, O_RDWR);
  ASSERT_TRUE(a.ok()) << a.status();
  fake_.lease_ms = 60000;
  ASSERT_TRUE(mds.Ping().ok());
  EXPECT_TRUE(fs.Fsync(ctx, *a).ok());  // lease not in doubt: no Status
  clock.Advance(absl::Seconds(31));     // e.g. the mount was stopped
  fake_.evicted = 1;
  EXPECT_EQ(ToErrno(fs.Fsync(ctx, *a)), EIO);
  EXPECT_EQ(fs.BrokenFiles(), 1u);
  EXPECT_EQ(ToErrno(fs.Write(ctx, *a, 0, "xx", 2).status()), EIO);
  EXPECT_TRUE(fs.Release(ctx, *a).ok());
}

// An open answered just before a recovery took its list
// of open files (the open is registered only after its reply) is
// re-established by the open itself.
TEST_F(RecoveryTest, OpenUnderWayDuringARecoveryIsReestablished) {
  fake_.proto1 = true;
  ASSERT_TRUE(mds_->Reconnect().ok());
  OstSet osts;
  Fs fs(mds_.get(), &osts, FsOptions{});
  mds_->SetRecovery([&fs](bool evicted) { return fs.ReopenAll(evicted); });
  const OpCtx ctx;
  fake_.block_open = true;
  absl::StatusOr<OpenFile*> opened = Errno(EIO, "not run");
  std::thread t([&] { opened = fs.Open(ctx, 30, O_RDWR); });
  ASSERT_TRUE(fake_.open_arrived.WaitForNotificationWithTimeout(
      absl::Seconds(10)));
  // The MDS restarts; another path (the keepalive) recovers meanwhile.
  fake_.instance = 2;
  ASSERT_TRUE(mds_->Reconnect().ok());
  ASSERT_TRUE(mds_->Recover({}).ok());
  EXPECT_EQ(mds_->state_instance(), 2u);
  fake_.open_release.Notify();
  t.join();
  ASSERT_TRUE(opened.ok()) << opened.status();
  {
    absl::MutexLock l(&fake_.mu);
    ASSERT_EQ(fake_.reopened.size(), 1u);
    EXPECT_EQ(fake_.reopened[0], (*opened)->handle);
  }
  EXPECT_EQ(fs.BrokenFiles(), 0u);
  EXPECT_TRUE(fs.Release(ctx, *opened).ok());
}

}  // namespace
}  // namespace stripefs::client
