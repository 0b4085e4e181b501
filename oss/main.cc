// stripefs-oss: serves one object storage target over gRPC until SIGTERM or
// SIGINT, then finishes in-flight calls, closes the store, records a clean
// stop and exits 0. SIGUSR2: controlled stop, which first takes EX on
// active:<target> through the DLM (--dlm) so that clients drain and wait.
// SIGUSR1: forced failover (seed 002): no more replies, object store
// read-only, exit 0 without recording a clean stop.
// Refuses to start (exit 3) when the start-up check fails, unless --force.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/fault_points.h"
#include "common/logging.h"
#include "common/version.h"
#include "dlm/dlm_client.h"
#include "oss/object_locks.h"
#include "oss/object_store.h"
#include "oss/oss_service.h"
#include "rpc/server_lifecycle.h"
#include "spdlog/spdlog.h"
#include "storage/on_disk_features.h"

namespace {

// How long in-flight calls may take to finish at shutdown.
constexpr auto kShutdownGrace = std::chrono::seconds(10);

// The open-file cache and RocksDB need more than the default 1024 fds.
void RaiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      spdlog::warn("cannot raise the open-file limit");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stripefs object storage server"};
  std::string target;
  std::string listen;
  std::string data;
  std::string log_level = "info";
  size_t max_open_files = 512;
  app.add_option("--target", target, "target name, e.g. ost0")->required();
  app.add_option("--listen", listen, "HOST:PORT to serve on")->required();
  app.add_option("--data", data, "data directory")->required();
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--max-open-files", max_open_files,
                 "open object files kept cached")
      ->check(CLI::Range(16, 1 << 20));
  std::string dlm_address;
  app.add_option("--dlm", dlm_address,
                 "HOST:PORT of the lock service: lock objects before "
                 "truncate, punch and destroy");
  bool force = false;
  app.add_flag("--force", force,
               "start even when the start-up check refuses (the previous "
               "instance of another release did not stop cleanly)");
  std::vector<std::string> enable_features;
#if STRIPEFS_PROTO_MAX >= 2
  app.add_option("--enable-feature", enable_features,
                 "turn on an on-disk feature (wide_dirs); an incompatible "
                 "one makes a downgrade to release 1.0.0 impossible");
#endif
  CLI11_PARSE(app, argc, argv);
  // The OST index of the object resources is the number in "ostN".
  uint32_t ost_index = 0;
  if (!dlm_address.empty() &&
      (!absl::StartsWith(target, "ost") ||
       !absl::SimpleAtoi(absl::string_view(target).substr(3), &ost_index))) {
    fprintf(stderr, "stripefs-oss: --dlm needs a target named ostN, got '%s'\n",
            target.c_str());
    return 2;
  }
  if (listen.find(':') == std::string::npos) {
    fprintf(stderr, "stripefs-oss: --listen must be HOST:PORT, got '%s'\n",
            listen.c_str());
    return 2;
  }

  // Signals are taken synchronously by the main thread; block them before
  // any other thread exists so every thread inherits the mask.
  stripefs::rpc::StopSignals signals(/*forced_failover=*/true);

  stripefs::InitLogging(target, log_level);
  // Fault points for crash-recovery tests (logged with their seed if set).
  if (absl::Status s = stripefs::fault::ConfigureFromEnv(); !s.ok()) {
    fprintf(stderr, "stripefs-oss: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  RaiseFdLimit();

  auto store = stripefs::oss::ObjectStore::Open(
      {.data_dir = data, .max_open_files = max_open_files});
  if (!store.ok()) {
    fprintf(stderr, "stripefs-oss: cannot use data dir %s: %s\n", data.c_str(),
            store.status().ToString().c_str());
    return 1;
  }
  auto startup = stripefs::rpc::StartupCheck((*store)->kv(), "oss", target,
                                             force, enable_features);
  if (!startup.ok()) {
    fprintf(stderr, "stripefs-oss: %s\n",
            std::string(startup.status().message()).c_str());
    return stripefs::rpc::Refused(startup.status())
               ? stripefs::rpc::kExitRefused
               : 1;
  }
#if STRIPEFS_PROTO_MAX >= 2
  // On-disk layout features of the record (storage/on_disk_features.h).
  if (startup->record.incompat & stripefs::storage::kIncompatWideDirs) {
    if (absl::Status s = (*store)->UseWideDirs(); !s.ok()) {
      fprintf(stderr, "stripefs-oss: cannot move to wide_dirs in %s: %s\n",
              data.c_str(), s.ToString().c_str());
      return 1;
    }
  }
#endif
  // Closes the store and records the stop (after its last write): clean
  // after serving, as clean as the previous instance after a failed start.
  auto close_store = [&](bool served = false) -> bool {
    absl::Status s = (*store)->Close();
    if (!s.ok()) {
      spdlog::error("closing store: {}", s.ToString());
      return false;
    }
    s = served ? stripefs::rpc::RecordCleanStop((*store)->kv(),
                                                startup->record)
               : stripefs::rpc::RecordFailedStart((*store)->kv(), *startup);
    if (!s.ok()) {
      spdlog::error("recording the clean stop: {}", s.ToString());
      return false;
    }
    return true;
  };
  const uint64_t instance = static_cast<uint64_t>(
      absl::ToUnixNanos(stripefs::RealClock()->Now()));
  // The lock client connects (with reset, which releases the EX on
  // active:<target> a controlled stop of the previous instance left) only
  // once the server serves, so clients granted their PR again find it
  // ready.
  std::unique_ptr<stripefs::dlm::DlmClient> dlm;
  if (!dlm_address.empty()) {
    auto started = stripefs::dlm::DlmClient::Start(
        stripefs::rpc::ServerDlmOptions(dlm_address, "oss", target));
    if (!started.ok()) {
      fprintf(stderr, "stripefs-oss: cannot start the lock client for %s: %s\n",
              dlm_address.c_str(), started.status().ToString().c_str());
      close_store();
      return 1;
    }
    dlm = std::move(*started);
  }
  stripefs::oss::ObjectLocks locks(dlm.get(), ost_index);
  if (dlm) (*store)->set_object_locks(&locks);
  stripefs::oss::OssService service(
      {.target = target, .instance = instance}, store->get());
  auto server = stripefs::oss::StartOssServer(&service, listen);
  if (!server.ok()) {
    fprintf(stderr, "stripefs-oss: %s\n", server.status().ToString().c_str());
    if (dlm) dlm->Close(/*cancel_locks=*/true);
    close_store();
    return 1;
  }
  spdlog::info("{} release {} serving {} on {} (instance {})", target,
               stripefs::kRelease, data, listen, instance);
  if (dlm) dlm->StartConnecting();
  // A forced start: the old clients reconnect and start afresh with this
  // instance.
  stripefs::rpc::BounceIfForced(dlm.get(), target, startup->evict_clients);

  const stripefs::rpc::StopKind stop_kind = signals.Wait();
  if (stop_kind == stripefs::rpc::StopKind::kForcedFailover) {
    // Seed 002: no reply from now on (requests executing answer
    // UNAVAILABLE too), THEN the object store refuses changes (EROFS,
    // logged by the service); the clients resend their idempotent writes
    // to the next instance.
    service.BeginForcedFailover();
    (*store)->SetReadOnly(true);
    service.SetStopping();
    (*server)->Shutdown(std::chrono::system_clock::now() +
                        absl::ToChronoSeconds(
                            stripefs::rpc::kForcedFailoverGrace));
    (*server)->Wait();
    // Like a crash: the locks stay in the DLM until the next instance
    // resets them at its first connect (same client id).
    if (dlm) dlm->Close(/*cancel_locks=*/false);
    // Closes the files; no clean-stop record: the server record keeps
    // clean=0 and the next start recovers as after a crash.
    if (absl::Status s = (*store)->Close(); !s.ok()) {
      spdlog::warn("forced failover: closing the store: {}", s.ToString());
    }
    spdlog::warn(
        "forced failover: exited without a clean stop; the next instance "
        "recovers");
    return 0;
  }
  // The EX on active:<target> a controlled stop leaves in the DLM.
  const uint64_t active_lock =
      stripefs::rpc::ActiveLockForStop(dlm.get(), target, stop_kind);
  const bool keep_active_lock = active_lock != 0;
  service.SetStopping();
  (*server)->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  (*server)->Wait();
  // A controlled stop leaves its EX on active:<target> in the DLM for the
  // next instance to reset; every other lock it holds is cancelled.
  if (dlm) dlm->Close(/*cancel_locks=*/true, /*keep=*/active_lock);
  if (!close_store(/*served=*/true)) return 1;
  spdlog::info("{} stopped{}", target,
               keep_active_lock ? " (controlled)" : "");
  return 0;
}
