#include "server/runner.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/fault_points.h"
#include "common/logging.h"
#include "common/version.h"
#include "dlm/dlm_client.h"
#include "server/service_common.h"
#include "spdlog/spdlog.h"

namespace stripefs::server {
namespace {

// One process run: the state the steps below share.
class Run {
 public:
  Run(const RunnerOptions& o, ServerRole& role) : o_(o), role_(role) {}

  int Main();

 private:
  int Fail(int code, const std::string& msg) {
    std::fprintf(stderr, "stripefs-%s: %s\n", o_.role.c_str(), msg.c_str());
    return code;
  }
  // Steps 2 and 3 of runner.h; 0 when serving.
  int Start();
  // A start that failed after the start-up check: the core stops, the
  // store records the previous instance's clean flag.
  int FailedStart(const std::string& msg);
  int ForcedFailover();
  int Stop(StopKind kind);
  // Server shutdown after Status turned "stopping".
  void Shutdown(absl::Duration grace);

  const RunnerOptions& o_;
  ServerRole& role_;
  std::optional<storage::StartupDecision> startup_;
  std::unique_ptr<dlm::DlmClient> dlm_;
  std::unique_ptr<grpc::Server> server_;
};

int Run::Main() {
  // Blocked before any other thread exists, so every thread inherits it.
  StopSignals signals(o_.forced_failover);
  InitLogging(o_.target, o_.log_level);
  // Debian's abseil is built with deadlock detection on: every lock and
  // unlock updates a global lock-order graph (a few % of a busy server's
  // CPU, under one global lock). Servers run without it unless
  // STRIPEFS_MUTEX_CHECKS=1 (unit tests keep it: they do not pass here).
  if (const char* e = getenv("STRIPEFS_MUTEX_CHECKS"); e == nullptr ||
                                                       std::string(e) != "1") {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  // Fault points for crash-recovery tests (logged with their seed if set).
  if (absl::Status s = fault::ConfigureFromEnv(); !s.ok()) {
    return Fail(2, std::string(s.message()));
  }
  if (int code = Start(); code != 0) return code;

  const StopKind kind = signals.Wait();
  role_.StopAsked(kind);
  if (kind == StopKind::kForcedFailover) return ForcedFailover();
  return Stop(kind);
}

int Run::Start() {
  if (absl::Status s = role_.Open(); !s.ok()) {
    return Fail(1, absl::StrCat("cannot use data dir ", o_.data, ": ",
                                s.ToString()));
  }
  absl::StatusOr<storage::StartupDecision> startup = StartupCheck(
      role_.kv(), o_.role, o_.target, o_.force, o_.enable_features);
  if (!startup.ok()) {
    return Fail(Refused(startup.status()) ? kExitRefused : 1,
                std::string(startup.status().message()));
  }
  startup_ = std::move(*startup);
  // The lock client connects (with reset: it drops the EX on
  // active:<target> a controlled stop of the previous instance left) only
  // once the server serves, so that clients granted their PR again find
  // it ready.
  if (!o_.dlm_address.empty()) {
    auto started = dlm::DlmClient::Start(
        ServerDlmOptions(o_.dlm_address, o_.role, o_.target));
    if (!started.ok()) {
      return FailedStart(absl::StrCat("cannot start the lock client for ",
                                      o_.dlm_address, ": ",
                                      started.status().ToString()));
    }
    dlm_ = std::move(*started);
  }
  const uint64_t instance =
      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
      (static_cast<uint64_t>(getpid()) << 40);
  if (absl::Status s = role_.Start({.decision = &*startup_,
                                    .dlm = dlm_.get(),
                                    .instance = instance});
      !s.ok()) {
    return FailedStart(absl::StrCat("cannot start: ", s.ToString()));
  }
  auto server = BuildServer(
      o_.listen, [this](grpc::ServerBuilder& b) { role_.Register(b); });
  if (!server.ok()) return FailedStart(std::string(server.status().message()));
  server_ = std::move(*server);
  spdlog::info("stripefs-{} {} serving {} on {} (data {}, instance {:x}{}{})",
               o_.role, kRelease, o_.target, o_.listen, o_.data, instance,
               role_.Describe().empty() ? "" : ", ", role_.Describe());
  if (dlm_) dlm_->StartConnecting();
  role_.Serving(dlm_.get());
  // A forced start: the old clients must find out that their state is gone
  // (they reconnect and start afresh with this instance).
  BounceIfForced(dlm_.get(), o_.target, startup_->evict_clients);
  return 0;
}

int Run::FailedStart(const std::string& msg) {
  if (dlm_) dlm_->Close(/*cancel_locks=*/true);
  if (absl::Status s = role_.Finish(); !s.ok()) {
    spdlog::error("closing the store: {}", s.ToString());
  }
  if (absl::Status s = RecordFailedStart(role_.kv(), *startup_); !s.ok()) {
    spdlog::error("recording the failed start: {}", s.ToString());
  }
  return Fail(1, msg);
}

void Run::Shutdown(absl::Duration grace) {
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(grace));
  server_->Wait();
  role_.StoppedServing();
}

int Run::ForcedFailover() {
  // Seed 002: no reply from now on (requests executing answer UNAVAILABLE
  // too, whatever they did), THEN the store refuses writes, so that their
  // write errors never reach a client: they resend to the next instance.
  role_.BeginForcedFailover();
  role_.SetStopping();
  Shutdown(kForcedFailoverGrace);
  // Like a crash: the locks stay in the DLM until the next instance resets
  // them at its first connect (same client id).
  if (dlm_) dlm_->Close(/*cancel_locks=*/false);
  // No final sync, no clean-stop record: the server record keeps clean=0,
  // so the next start recovers as after a crash.
  role_.Abandon();
  spdlog::warn(
      "forced failover: exited without a clean stop; the next instance "
      "recovers");
  return 0;
}

int Run::Stop(StopKind kind) {
  // A controlled stop takes EX on active:<target> first (every client
  // holding PR drains and pauses) and leaves it in the DLM for the next
  // instance to reset; every other lock is cancelled so that no client
  // waits for a dead holder.
  const uint64_t active_lock =
      dlm_ ? ActiveLockForStop(dlm_.get(), o_.target, kind) : 0;
  role_.SetStopping();
  Shutdown(o_.shutdown_grace);
  if (dlm_) dlm_->Close(/*cancel_locks=*/true, /*keep=*/active_lock);
  if (absl::Status s = role_.Finish(); !s.ok()) {
    // Not recorded as clean: the next start recovers as after a crash.
    spdlog::error("final sync of the store: {}", s.ToString());
    return 1;
  }
  // After the store's last write.
  if (absl::Status s = RecordCleanStop(role_.kv(), startup_->record);
      !s.ok()) {
    spdlog::error("recording the clean stop: {}", s.ToString());
    return 1;
  }
  spdlog::info("{} stopped cleanly{}", o_.target,
               active_lock != 0 ? " (controlled)" : "");
  return 0;
}

}  // namespace

int RunServer(const RunnerOptions& options, ServerRole& role) {
  return Run(options, role).Main();
}

}  // namespace stripefs::server
