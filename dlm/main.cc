// stripefs-dlm: serves the lock service over gRPC until SIGTERM, SIGINT or
// SIGUSR2 (controlled stop: the same here, the lock table being persisted),
// then closes every session stream, finishes in-flight calls, records a
// clean shutdown in the lock table and the server record and exits 0.
// Refuses to start (exit 3) when the start-up check fails, unless --force.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/fault_points.h"
#include "common/logging.h"
#include "common/version.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
#include "rpc/server_lifecycle.h"
#include "spdlog/spdlog.h"
#include "storage/kv.h"

namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(5);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stripefs lock service"};
  std::string target = "dlm";
  std::string listen;
  std::string data;
  std::string log_level = "info";
  double callback_timeout_s = 10;
  double recovery_window_s = 15;
  app.add_option("--target", target, "target name (default dlm)");
  app.add_option("--listen", listen, "HOST:PORT to serve on")->required();
  app.add_option("--data", data, "data directory")->required();
  app.add_option("--callback-timeout", callback_timeout_s,
                 "seconds a holder has to cancel after a blocking callback "
                 "(default 10; env STRIPEFS_DLM_CALLBACK_TIMEOUT, e.g. for "
                 "tests through `stripefs cluster up`)")
      ->envname("STRIPEFS_DLM_CALLBACK_TIMEOUT")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--recovery-window", recovery_window_s,
                 "seconds clients may replay locks after an unclean restart")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  bool force = false;
  app.add_flag("--force", force,
               "start even when the start-up check refuses (the previous "
               "instance of another release did not stop cleanly)");
  CLI11_PARSE(app, argc, argv);
  if (listen.find(':') == std::string::npos) {
    fprintf(stderr, "stripefs-dlm: --listen must be HOST:PORT, got '%s'\n",
            listen.c_str());
    return 2;
  }

  stripefs::rpc::StopSignals signals;

  stripefs::InitLogging(target, log_level);
  // Fault points for crash-recovery tests (logged with their seed if set).
  if (absl::Status s = stripefs::fault::ConfigureFromEnv(); !s.ok()) {
    fprintf(stderr, "stripefs-dlm: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  auto kv = stripefs::storage::OpenRocksKv(data + "/db");
  if (!kv.ok()) {
    fprintf(stderr, "stripefs-dlm: cannot use data dir %s: %s\n", data.c_str(),
            kv.status().ToString().c_str());
    return 1;
  }
  auto startup = stripefs::rpc::StartupCheck(**kv, "dlm", target, force);
  if (!startup.ok()) {
    fprintf(stderr, "stripefs-dlm: %s\n",
            std::string(startup.status().message()).c_str());
    return stripefs::rpc::Refused(startup.status())
               ? stripefs::rpc::kExitRefused
               : 1;
  }
  // Records the stop: clean after serving, as clean as the previous
  // instance after a failed start.
  auto stop_record = [&](bool served = false) -> bool {
    absl::Status s =
        served ? stripefs::rpc::RecordCleanStop(**kv, startup->record)
               : stripefs::rpc::RecordFailedStart(**kv, *startup);
    if (!s.ok()) spdlog::error("recording the clean stop: {}", s.ToString());
    return s.ok();
  };
  stripefs::dlm::LockManagerOptions mopts;
  mopts.callback_timeout = absl::Seconds(callback_timeout_s);
  mopts.recovery_window = absl::Seconds(recovery_window_s);
  auto manager = stripefs::dlm::LockManager::Open(
      kv->get(), stripefs::RealClock(), mopts);
  if (!manager.ok()) {
    fprintf(stderr, "stripefs-dlm: cannot load lock table in %s: %s\n",
            data.c_str(), manager.status().ToString().c_str());
    stop_record();
    return 1;
  }
  const uint64_t instance = static_cast<uint64_t>(
      absl::ToUnixNanos(stripefs::RealClock()->Now()));
  stripefs::dlm::DlmService service({.target = target, .instance = instance},
                                    manager->get());
  auto server = stripefs::dlm::StartDlmServer(&service, listen);
  if (!server.ok()) {
    fprintf(stderr, "stripefs-dlm: %s\n", server.status().ToString().c_str());
    if (!(*manager)->Close().ok()) return 1;
    stop_record();
    return 1;
  }
  spdlog::info(
      "{} release {} serving {} on {} (instance {}, callback timeout {}s, "
      "recovery window {}s)",
      target, stripefs::kRelease, data, listen, instance, callback_timeout_s,
      recovery_window_s);

  // A controlled stop is a clean stop here: clients hold their locks and
  // their new requests while the DLM is away, and the table is persisted.
  signals.Wait();
  service.SetStopping();
  // Closing the manager ends every Session stream, so Shutdown need not
  // wait for them; clients reconnect to the next instance.
  absl::Status s = (*manager)->Close();
  (*server)->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  (*server)->Wait();
  if (!s.ok()) {
    spdlog::error("recording clean shutdown: {}", s.ToString());
    return 1;
  }
  manager->reset();
  if (!stop_record(/*served=*/true)) return 1;
  kv->reset();
  spdlog::info("{} stopped", target);
  return 0;
}
