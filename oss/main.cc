// stripefs-oss: serves one object storage target over gRPC until SIGTERM or
// SIGINT, then finishes in-flight calls, closes the store and exits 0.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/version.h"
#include "dlm/dlm_client.h"
#include "oss/object_locks.h"
#include "oss/object_store.h"
#include "oss/oss_service.h"
#include "spdlog/spdlog.h"

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
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  stripefs::InitLogging(target, log_level);
  RaiseFdLimit();

  auto store = stripefs::oss::ObjectStore::Open(
      {.data_dir = data, .max_open_files = max_open_files});
  if (!store.ok()) {
    fprintf(stderr, "stripefs-oss: cannot use data dir %s: %s\n", data.c_str(),
            store.status().ToString().c_str());
    return 1;
  }
  const uint64_t instance = static_cast<uint64_t>(
      absl::ToUnixNanos(stripefs::RealClock()->Now()));
  std::unique_ptr<stripefs::dlm::DlmClient> dlm;
  if (!dlm_address.empty()) {
    stripefs::dlm::DlmClientOptions dopts;
    dopts.address = dlm_address;
    dopts.kind = "oss";
    dopts.name = absl::StrCat(target, ":", getpid());
    auto started = stripefs::dlm::DlmClient::Start(dopts);
    if (!started.ok()) {
      fprintf(stderr, "stripefs-oss: cannot start the lock client for %s: %s\n",
              dlm_address.c_str(), started.status().ToString().c_str());
      return 1;
    }
    dlm = std::move(*started);
  }
  stripefs::oss::ObjectLocks locks(dlm.get(), ost_index);
  stripefs::oss::OssService service(
      {.target = target,
       .instance = instance,
       .locks = dlm ? &locks : nullptr},
      store->get());
  auto server = stripefs::oss::StartOssServer(&service, listen);
  if (!server.ok()) {
    fprintf(stderr, "stripefs-oss: %s\n", server.status().ToString().c_str());
    return 1;
  }
  spdlog::info("{} release {} serving {} on {} (instance {})", target,
               stripefs::kRelease, data, listen, instance);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  spdlog::info("signal {}: shutting down", sig);
  service.SetStopping();
  (*server)->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  (*server)->Wait();
  if (dlm) dlm->Close(/*cancel_locks=*/true);
  absl::Status s = (*store)->Close();
  if (!s.ok()) {
    spdlog::error("closing store: {}", s.ToString());
    return 1;
  }
  spdlog::info("{} stopped", target);
  return 0;
}
