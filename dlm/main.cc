// stripefs-dlm: serves the lock service over gRPC until SIGTERM or SIGINT,
// then closes every session stream, finishes in-flight calls, records a
// clean shutdown in the lock table and exits 0.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/version.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
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
  CLI11_PARSE(app, argc, argv);
  if (listen.find(':') == std::string::npos) {
    fprintf(stderr, "stripefs-dlm: --listen must be HOST:PORT, got '%s'\n",
            listen.c_str());
    return 2;
  }

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  stripefs::InitLogging(target, log_level);

  auto kv = stripefs::storage::OpenRocksKv(data + "/db");
  if (!kv.ok()) {
    fprintf(stderr, "stripefs-dlm: cannot use data dir %s: %s\n", data.c_str(),
            kv.status().ToString().c_str());
    return 1;
  }
  stripefs::dlm::LockManagerOptions mopts;
  mopts.callback_timeout = absl::Seconds(callback_timeout_s);
  mopts.recovery_window = absl::Seconds(recovery_window_s);
  auto manager = stripefs::dlm::LockManager::Open(
      kv->get(), stripefs::RealClock(), mopts);
  if (!manager.ok()) {
    fprintf(stderr, "stripefs-dlm: cannot load lock table in %s: %s\n",
            data.c_str(), manager.status().ToString().c_str());
    return 1;
  }
  const uint64_t instance = static_cast<uint64_t>(
      absl::ToUnixNanos(stripefs::RealClock()->Now()));
  stripefs::dlm::DlmService service({.target = target, .instance = instance},
                                    manager->get());
  auto server = stripefs::dlm::StartDlmServer(&service, listen);
  if (!server.ok()) {
    fprintf(stderr, "stripefs-dlm: %s\n", server.status().ToString().c_str());
    return 1;
  }
  spdlog::info(
      "{} release {} serving {} on {} (instance {}, callback timeout {}s, "
      "recovery window {}s)",
      target, stripefs::kRelease, data, listen, instance, callback_timeout_s,
      recovery_window_s);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  spdlog::info("signal {}: shutting down", sig);
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
  kv->reset();
  spdlog::info("{} stopped", target);
  return 0;
}
