// The server mains' start-up check over a store (server/lifecycle.h).
#include "server/lifecycle.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <optional>

#include "common/errors.h"
#include "gtest/gtest.h"
#include "rpc/handshake.h"

namespace stripefs::server {
namespace {

// The release this binary is not (N for N+1 and the other way round).
const char* OtherRelease() {
  return std::string(rpc::ThisBuild().release) == rpc::kReleaseN.release
             ? rpc::kReleaseN1.release
             : rpc::kReleaseN.release;
}

storage::ServerRecord Stored(storage::KvStore& kv) {
  auto r = storage::LoadServerRecord(kv);
  EXPECT_TRUE(r.ok() && r->has_value());
  return r.ok() && r->has_value() ? **r : storage::ServerRecord{};
}

// SIGUSR1 is the forced failover of the MDS and the OSS (they ask for it);
// the DLM leaves it alone (its default action, a crash).
TEST(ServerLifecycleTest, Usr1IsForcedFailoverOnlyWhenAsked) {
  sigset_t saved;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &saved), 0);
  {
    StopSignals plain;
    sigset_t cur;
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &cur), 0);
    EXPECT_TRUE(sigismember(&cur, SIGUSR2));
    EXPECT_FALSE(sigismember(&cur, SIGUSR1));
  }
  StopSignals signals(/*forced_failover=*/true);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);  // pending: blocked
  EXPECT_EQ(signals.Wait(), StopKind::kForcedFailover);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR2), 0);
  EXPECT_EQ(signals.Wait(), StopKind::kControlled);
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &saved, nullptr), 0);
}

// Once a forced failover began, every answer is UNAVAILABLE "failing over":
// never the result, never the error (which is only logged).
TEST(ServerLifecycleTest, FailoverGateAnswersUnavailableOnceBegun) {
  FailoverGate gate;
  EXPECT_FALSE(gate.failing());
  EXPECT_FALSE(gate.Answer("Write", absl::OkStatus()).has_value());
  EXPECT_FALSE(gate.Answer("Write", Errno(EROFS, "ro")).has_value());
  gate.Begin();
  EXPECT_TRUE(gate.failing());
  for (const absl::Status& s :
       {absl::OkStatus(), Errno(EROFS, "store is read-only"),
        Errno(ENOENT, "no such object")}) {
    std::optional<grpc::Status> g = gate.Answer("Write", s, 7, 9);
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(g->error_message(), kFailingOverMessage);
  }
}

TEST(ServerLifecycleTest, RecordsUncleanWhileRunningAndCleanAfterStop) {
  auto kv = storage::NewMemKv();
  auto d = StartupCheck(*kv, "mds", "mdt0", /*force=*/false);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->evict_clients);
  EXPECT_FALSE(Stored(*kv).clean);
  EXPECT_EQ(Stored(*kv).release, rpc::ThisBuild().release);
  ASSERT_TRUE(RecordCleanStop(*kv, d->record).ok());
  EXPECT_TRUE(Stored(*kv).clean);
  // The next start sees a clean previous instance.
  auto again = StartupCheck(*kv, "mds", "mdt0", false);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->previous_clean);
  EXPECT_GT(again->record.instance, d->record.instance);
}

TEST(ServerLifecycleTest, FailedStartKeepsThePreviousCleanFlag) {
  auto kv = storage::NewMemKv();
  auto first = StartupCheck(*kv, "dlm", "dlm", false);
  ASSERT_TRUE(first.ok());
  // Crash: the record stays clean=0. A start of the same release that
  // fails before serving must not turn it into a clean one.
  auto second = StartupCheck(*kv, "dlm", "dlm", false);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->previous_clean);
  ASSERT_TRUE(RecordFailedStart(*kv, *second).ok());
  EXPECT_FALSE(Stored(*kv).clean);
  // After a clean stop, a failed start leaves it clean.
  ASSERT_TRUE(RecordCleanStop(*kv, second->record).ok());
  auto third = StartupCheck(*kv, "dlm", "dlm", false);
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(RecordFailedStart(*kv, *third).ok());
  EXPECT_TRUE(Stored(*kv).clean);
}

TEST(ServerLifecycleTest, UncleanOtherReleaseIsRefusedUnlessForced) {
  auto kv = storage::NewMemKv();
  storage::ServerRecord old;
  old.role = "oss";
  old.target = "ost0";
  old.release = OtherRelease();
  old.clean = false;
  old.instance = 4;
  ASSERT_TRUE(storage::StoreServerRecord(*kv, old).ok());
  auto d = StartupCheck(*kv, "oss", "ost0", false);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Refused(d.status()));
  const std::string msg(d.status().message());
  EXPECT_NE(msg.find(OtherRelease()), std::string::npos) << msg;
  EXPECT_NE(msg.find(rpc::ThisBuild().release), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  // A refusal changes nothing.
  EXPECT_EQ(Stored(*kv).release, OtherRelease());
  auto forced = StartupCheck(*kv, "oss", "ost0", /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_TRUE(forced->evict_clients);
  EXPECT_EQ(Stored(*kv).release, rpc::ThisBuild().release);
}

TEST(ServerLifecycleTest, StoreOfAnotherTargetIsRefusedEvenForced) {
  auto kv = storage::NewMemKv();
  ASSERT_TRUE(StartupCheck(*kv, "oss", "ost0", false).ok());
  auto d = StartupCheck(*kv, "oss", "ost1", true);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Refused(d.status()));
}

TEST(ServerLifecycleTest, ServerDlmOptionsAreStableAndDeferred) {
  dlm::DlmClientOptions a = ServerDlmOptions("127.0.0.1:1", "mds", "mdt0");
  dlm::DlmClientOptions b = ServerDlmOptions("127.0.0.1:2", "mds", "mdt0");
  EXPECT_EQ(a.client_id, b.client_id);
  EXPECT_NE(a.client_id, 0u);
  EXPECT_NE(a.client_id, ServerDlmOptions("x", "oss", "ost0").client_id);
  EXPECT_TRUE(a.reset_on_first_connect);
  EXPECT_TRUE(a.defer_connect);
}

}  // namespace
}  // namespace stripefs::server
