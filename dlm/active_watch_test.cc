// ActiveWatch against a real DlmService over gRPC on 127.0.0.1, in one
// process (the harness of dlm_component_test.cc): a "server" DlmClient takes
// EX on active:<target> the way a stopping server does.
#include "dlm/active_watch.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/errors.h"
#include "dlm/dlm_client.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
#include "gtest/gtest.h"
#include "storage/kv.h"

namespace stripefs::dlm {
namespace {

template <typename F>
bool Eventually(F cond, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

// What the watch asked its owner to do, in order.
class Owner {
 public:
  ActiveWatchHooks Hooks() {
    return {.pause =
                [this] {
                  {
                    absl::MutexLock l(&mu_);
                    ++pauses_;
                    paused_ = true;
                  }
                  // The owner's in-flight requests finish meanwhile.
                  absl::SleepFor(pause_for);
                  absl::MutexLock l(&mu_);
                  pause_done_ = absl::Now();
                },
            .resume = [this](bool lost) -> absl::Status {
              absl::MutexLock l(&mu_);
              if (fail_resumes_ > 0) {
                --fail_resumes_;
                return Errno(ECONNREFUSED, "server not up yet");
              }
              ++resumes_;
              lost_resumes_ += lost ? 1 : 0;
              paused_ = false;
              return absl::OkStatus();
            }};
  }
  int pauses() {
    absl::MutexLock l(&mu_);
    return pauses_;
  }
  int resumes() {
    absl::MutexLock l(&mu_);
    return resumes_;
  }
  int lost_resumes() {
    absl::MutexLock l(&mu_);
    return lost_resumes_;
  }
  bool paused() {
    absl::MutexLock l(&mu_);
    return paused_;
  }
  absl::Time pause_done() {
    absl::MutexLock l(&mu_);
    return pause_done_;
  }
  void FailNextResumes(int n) {
    absl::MutexLock l(&mu_);
    fail_resumes_ = n;
  }
  absl::Duration pause_for = absl::ZeroDuration();

 private:
  absl::Mutex mu_;
  int pauses_ ABSL_GUARDED_BY(mu_) = 0;
  int resumes_ ABSL_GUARDED_BY(mu_) = 0;
  int lost_resumes_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_resumes_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time pause_done_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

class ActiveWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("active_watch_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    StartServer(0);
  }
  void TearDown() override {
    watches_.clear();
    clients_.clear();
    StopServer();
    std::filesystem::remove_all(dir_);
  }

  void StartServer(int port) {
    auto kv = storage::OpenRocksKv((dir_ / "db").string());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
    auto m = LockManager::Open(kv_.get(), RealClock(),
                               {.callback_timeout = absl::Seconds(3),
                                .recovery_window = absl::Seconds(5)});
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
    service_ = std::make_unique<DlmService>(
        DlmServiceOptions{.target = "dlm",
                          .instance = ++instance_,
                          .glimpse_timeout = absl::Seconds(2),
                          .tick_period = absl::Milliseconds(100)},
        manager_.get());
    auto s = StartDlmServer(service_.get(), "127.0.0.1:" + std::to_string(port),
                            &port_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void StopServer() {
    if (server_ == nullptr) return;
    service_->SetStopping();
    ASSERT_TRUE(manager_->Close().ok());
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(500));
    server_->Wait();
    server_.reset();
    service_.reset();
    manager_.reset();
    kv_.reset();
  }

  DlmClient* NewClient(const std::string& name, uint64_t id = 0) {
    auto c = DlmClient::Start({.address = "127.0.0.1:" + std::to_string(port_),
                               .client_id = id,
                               .name = name,
                               .maintenance_period = absl::Milliseconds(200),
                               .backoff_min = absl::Milliseconds(20),
                               .backoff_max = absl::Milliseconds(200)});
    EXPECT_TRUE(c.ok()) << c.status();
    clients_.push_back(std::move(*c));
    return clients_.back().get();
  }

  ActiveWatch* Watch(DlmClient* c, const std::string& target, Owner* owner) {
    auto w = ActiveWatch::Start(c, target, owner->Hooks(),
                                {.retry_min = absl::Milliseconds(20),
                                 .retry_max = absl::Milliseconds(100)});
    EXPECT_TRUE(w.ok()) << w.status();
    watches_.push_back(std::move(*w));
    return watches_.back().get();
  }

  static LockSpec Ex(const std::string& target) {
    return {{ActiveResource(target), LockType::kPlain}, LockMode::kEX};
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<LockManager> manager_;
  std::unique_ptr<DlmService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  uint64_t instance_ = 0;
  std::vector<std::unique_ptr<DlmClient>> clients_;
  std::vector<std::unique_ptr<ActiveWatch>> watches_;
};

TEST_F(ActiveWatchTest, ControlledStopPausesThenResumesAfterTheExGoes) {
  Owner o1, o2;
  o1.pause_for = absl::Milliseconds(400);  // in-flight requests draining
  ActiveWatch* w1 = Watch(NewClient("mount1"), "mdt0", &o1);
  ActiveWatch* w2 = Watch(NewClient("mount2"), "mdt0", &o2);
  ASSERT_TRUE(w1->WaitActive(absl::Seconds(5)));
  ASSERT_TRUE(w2->WaitActive(absl::Seconds(5)));
  EXPECT_EQ(o1.resumes(), 1);  // the first grant resumes too
  EXPECT_EQ(o1.pauses(), 0);

  DlmClient* server = NewClient("server:mdt0");
  auto ex = server->Lock(Ex("mdt0"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  const absl::Time granted = absl::Now();
  // Both holders paused, and the EX came only after the slow one finished.
  EXPECT_EQ(o1.pauses(), 1);
  EXPECT_EQ(o2.pauses(), 1);
  EXPECT_GE(granted, o1.pause_done());
  EXPECT_FALSE(w1->active());
  // While the server holds EX the watches wait (their PR is queued).
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(o1.resumes(), 1);
  EXPECT_TRUE(o1.paused());
  // The (next) server drops the EX: both resume.
  ASSERT_TRUE(server->Cancel(ex->handle).ok());
  EXPECT_TRUE(
      Eventually([&] { return o1.resumes() == 2 && o2.resumes() == 2; }));
  EXPECT_TRUE(w1->active());
  EXPECT_EQ(o1.lost_resumes(), 0);
  // And a second controlled stop works the same way.
  auto ex2 = server->Lock(Ex("mdt0"));
  ASSERT_TRUE(ex2.ok()) << ex2.status();
  EXPECT_EQ(o1.pauses(), 2);
  ASSERT_TRUE(server->Cancel(ex2->handle).ok());
  EXPECT_TRUE(Eventually([&] { return o1.resumes() == 3; }));
}

TEST_F(ActiveWatchTest, OtherTargetsAreNotPaused) {
  Owner mdt, ost0, ost1;
  DlmClient* c = NewClient("mount");
  ActiveWatch* wm = Watch(c, "mdt0", &mdt);
  ActiveWatch* w0 = Watch(c, "ost0", &ost0);
  ActiveWatch* w1 = Watch(c, "ost1", &ost1);
  ASSERT_TRUE(wm->WaitActive(absl::Seconds(5)));
  ASSERT_TRUE(w0->WaitActive(absl::Seconds(5)));
  ASSERT_TRUE(w1->WaitActive(absl::Seconds(5)));
  DlmClient* server = NewClient("server:ost1");
  auto ex = server->Lock(Ex("ost1"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(ost1.pauses(), 1);
  EXPECT_EQ(ost0.pauses(), 0);
  EXPECT_EQ(mdt.pauses(), 0);
  EXPECT_TRUE(w0->active());
  ASSERT_TRUE(server->Cancel(ex->handle).ok());
  EXPECT_TRUE(Eventually([&] { return ost1.resumes() == 2; }));
}

TEST_F(ActiveWatchTest, NewWatchWaitsWhileTheServerHoldsEx) {
  DlmClient* server = NewClient("server:mdt0");
  auto ex = server->Lock(Ex("mdt0"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  Owner o;
  ActiveWatch* w = Watch(NewClient("late mount"), "mdt0", &o);
  EXPECT_FALSE(w->WaitActive(absl::Milliseconds(700)));
  EXPECT_EQ(o.resumes(), 0);
  ASSERT_TRUE(server->Cancel(ex->handle).ok());
  EXPECT_TRUE(w->WaitActive(absl::Seconds(5)));
  EXPECT_EQ(o.resumes(), 1);
}

TEST_F(ActiveWatchTest, ResumeIsRetriedUntilTheServerAnswers) {
  Owner o;
  ActiveWatch* w = Watch(NewClient("mount"), "ost0", &o);
  ASSERT_TRUE(w->WaitActive(absl::Seconds(5)));
  DlmClient* server = NewClient("server:ost0");
  auto ex = server->Lock(Ex("ost0"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  o.FailNextResumes(3);  // the new instance is not listening yet
  ASSERT_TRUE(server->Cancel(ex->handle).ok());
  EXPECT_TRUE(Eventually([&] { return o.resumes() == 2; }));
  EXPECT_TRUE(w->active());
}

TEST_F(ActiveWatchTest, SurvivesDlmRestartWithoutPausing) {
  Owner o;
  ActiveWatch* w = Watch(NewClient("mount"), "mdt0", &o);
  ASSERT_TRUE(w->WaitActive(absl::Seconds(5)));
  StopServer();
  absl::SleepFor(absl::Milliseconds(300));
  StartServer(port_);
  // The persisted PR is replayed: no pause, no resume.
  DlmClient* server = NewClient("server:mdt0");
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(o.pauses(), 0);
  EXPECT_EQ(o.resumes(), 1);
  // And it still answers a controlled stop.
  auto ex = server->Lock(Ex("mdt0"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(o.pauses(), 1);
  ASSERT_TRUE(server->Cancel(ex->handle).ok());
  EXPECT_TRUE(Eventually([&] { return o.resumes() == 2; }));
  EXPECT_EQ(o.lost_resumes(), 0);
}

TEST_F(ActiveWatchTest, NextServerInstanceResetsTheExLeftBehind) {
  Owner o;
  ActiveWatch* w = Watch(NewClient("mount"), "mdt0", &o);
  ASSERT_TRUE(w->WaitActive(absl::Seconds(5)));
  const uint64_t id = ServerDlmClientId("mdt0");
  {
    DlmClient* old_server = NewClient("server:mdt0 (old)", id);
    auto ex = old_server->Lock(Ex("mdt0"));
    ASSERT_TRUE(ex.ok()) << ex.status();
    old_server->Close(/*cancel_locks=*/false);  // exits holding EX
  }
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(o.resumes(), 1);
  auto next = DlmClient::Start({.address = "127.0.0.1:" + std::to_string(port_),
                                .client_id = id,
                                .name = "server:mdt0 (new)",
                                .reset_on_first_connect = true});
  ASSERT_TRUE(next.ok()) << next.status();
  clients_.push_back(std::move(*next));
  EXPECT_TRUE(Eventually([&] { return o.resumes() == 2; }));
}

TEST_F(ActiveWatchTest, HolderThatCannotAnswerIsEvictedAndResumesAsLost) {
  // A client that neither cancels nor Touches within the callback timeout
  // (as when its process is stopped) is evicted: the server gets its EX
  // and the watch resumes afterwards with lost=true.
  auto c = DlmClient::Start({.address = "127.0.0.1:" + std::to_string(port_),
                             .name = "frozen mount",
                             .maintenance_period = absl::Hours(1)});
  ASSERT_TRUE(c.ok()) << c.status();
  clients_.push_back(std::move(*c));
  Owner o;
  o.pause_for = absl::Seconds(5);  // longer than the callback timeout (3 s)
  ActiveWatch* w = Watch(clients_.back().get(), "mdt0", &o);
  ASSERT_TRUE(w->WaitActive(absl::Seconds(5)));
  DlmClient* server = NewClient("server:mdt0");
  const absl::Time t0 = absl::Now();
  auto ex = server->Lock(Ex("mdt0"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));  // by eviction, not cancel
  EXPECT_TRUE(Eventually([&] { return clients_[0]->Evictions() >= 1; }));
  ASSERT_TRUE(server->Cancel(ex->handle).ok());
  EXPECT_TRUE(Eventually([&] { return o.resumes() == 2; }, absl::Seconds(15)));
  EXPECT_EQ(o.lost_resumes(), 1);
  EXPECT_TRUE(w->active());
}

TEST_F(ActiveWatchTest, StopWhileWaitingForTheGrant) {
  DlmClient* server = NewClient("server:mdt0");
  auto ex = server->Lock(Ex("mdt0"));
  ASSERT_TRUE(ex.ok()) << ex.status();
  Owner o;
  auto w = ActiveWatch::Start(NewClient("mount"), "mdt0", o.Hooks());
  ASSERT_TRUE(w.ok());
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time t0 = absl::Now();
  (*w)->Stop();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
  EXPECT_EQ(o.resumes(), 0);
}

}  // namespace
}  // namespace stripefs::dlm
