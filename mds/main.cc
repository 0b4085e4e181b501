// stripefs-mds: the metadata server process. Flags per docs/internals.md.
// SIGTERM/SIGINT: clean stop. SIGUSR2: controlled stop (EX on
// active:<target> through the DLM first, see rpc/server_lifecycle.h).
// SIGUSR1: forced failover (seed 002): no more replies, store read-only,
// exit 0 without recording a clean stop.
// Refuses to start (exit 3) when the start-up check fails, unless --force.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/fault_points.h"
#include "common/logging.h"
#include "common/version.h"
#include "grpcpp/grpcpp.h"
#include "dlm/dlm_client.h"
#include "mds/client_leases.h"
#include "mds/md_locks.h"
#include "mds/mds_core.h"
#include "mds/mds_service.h"
#include "mds/ost_pool.h"
#include "rpc/channel.h"
#include "rpc/server_lifecycle.h"
#include "spdlog/spdlog.h"
#include "storage/kv.h"

namespace {

struct Config {
  std::string target = "mdt0";
  std::string listen;
  std::string data;
  std::vector<std::string> osts;
  int32_t stripe_count = 1;
  uint64_t stripe_size = 1 << 20;
  std::string log_level = "info";
  std::string dlm;
  bool force = false;
  double reopen_window_s = 60;
  double client_lease_s = 60;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "stripefs-mds: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"stripefs metadata server"};
  app.add_option("--target", cfg.target, "target name")->default_val("mdt0");
  app.add_option("--listen", cfg.listen, "HOST:PORT to serve on")->required();
  app.add_option("--data", cfg.data, "data directory")->required();
  app.add_option("--ost", cfg.osts, "OST registry entry IDX=ADDR (repeatable)");
  app.add_option("--stripe-count", cfg.stripe_count,
                 "root default stripe count at format (-1: all OSTs)")
      ->default_val(1);
  app.add_option("--stripe-size", cfg.stripe_size,
                 "root default stripe size at format (bytes)")
      ->default_val(1 << 20);
  app.add_option("--dlm", cfg.dlm, "HOST:PORT of the lock service");
  app.add_flag("--force", cfg.force,
               "start even when the start-up check refuses (the previous "
               "instance of another release did not stop cleanly); the old "
               "clients' open handles are discarded");
  app.add_option("--reopen-window", cfg.reopen_window_s,
                 "seconds the open handles of a cleanly stopped previous "
                 "instance wait for their clients to reopen them")
      ->default_val(60)
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--client-lease", cfg.client_lease_s,
                 "seconds a client (release 1.1.0 or later) may stay silent "
                 "before it is evicted: its open handles are dropped and the "
                 "files it kept unlinked-while-open reclaimed (0: never; "
                 "default 60; env STRIPEFS_MDS_CLIENT_LEASE, e.g. for tests "
                 "through `stripefs cluster up`)")
      ->default_val(60)
      ->envname("STRIPEFS_MDS_CLIENT_LEASE")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--log-level", cfg.log_level, "debug|info|warn|error")
      ->default_val("info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::vector<stripefs::mds::OstTarget> targets;
  for (const auto& spec : cfg.osts) {
    auto eq = spec.find('=');
    uint32_t idx = 0;
    if (eq == std::string::npos || eq + 1 >= spec.size() ||
        !absl::SimpleAtoi(spec.substr(0, eq), &idx)) {
      return Fail("bad --ost '" + spec + "': expected IDX=HOST:PORT");
    }
    for (const auto& t : targets) {
      if (t.index == idx) return Fail("duplicate --ost index " + spec);
    }
    targets.push_back({idx, spec.substr(eq + 1), true});
  }
  std::sort(targets.begin(), targets.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  if (cfg.stripe_size == 0 || cfg.stripe_size % 65536 != 0 ||
      cfg.stripe_size > (1ULL << 32) - 65536) {
    return Fail("--stripe-size must be a positive multiple of 65536 below 4 GiB");
  }
  if (cfg.stripe_count < -1 || cfg.stripe_count == 0 ||
      (cfg.stripe_count > 0 && !targets.empty() &&
       size_t(cfg.stripe_count) > targets.size())) {
    return Fail("--stripe-count must be -1 or between 1 and the number of OSTs");
  }

  stripefs::InitLogging(cfg.target, cfg.log_level);
  if (absl::Status s = stripefs::fault::ConfigureFromEnv(); !s.ok()) {
    return Fail(std::string(s.message()));
  }

  std::error_code ec;
  std::filesystem::create_directories(cfg.data, ec);
  if (ec || !std::filesystem::is_directory(cfg.data)) {
    return Fail("unusable data dir " + cfg.data + ": " + ec.message());
  }
  if (access(cfg.data.c_str(), W_OK | X_OK) != 0) {
    return Fail("data dir " + cfg.data + " is not writable");
  }

  // Block the stop signals (SIGUSR1 too) before any thread starts.
  stripefs::rpc::StopSignals signals(/*forced_failover=*/true);

  auto store = stripefs::storage::OpenRocksKv(cfg.data + "/db");
  if (!store.ok()) {
    return Fail("cannot open " + cfg.data + "/db: " + store.status().ToString());
  }
  auto startup =
      stripefs::rpc::StartupCheck(**store, "mds", cfg.target, cfg.force);
  if (!startup.ok()) {
    Fail(std::string(startup.status().message()));
    return stripefs::rpc::Refused(startup.status())
               ? stripefs::rpc::kExitRefused
               : 1;
  }
  // Records the stop after the store's last write and closes it: clean
  // after serving, as clean as the previous instance after a failed start.
  auto close_store = [&](bool served = false) -> bool {
    bool ok = true;
    if (absl::Status s = (*store)->Sync(); !s.ok()) {
      spdlog::error("final sync: {}", s.ToString());
      ok = false;
    }
    if (absl::Status s =
            served ? stripefs::rpc::RecordCleanStop(**store, startup->record)
                   : stripefs::rpc::RecordFailedStart(**store, *startup);
        !s.ok()) {
      spdlog::error("recording the clean stop: {}", s.ToString());
      ok = false;
    }
    store->reset();
    return ok;
  };
  const uint64_t instance =
      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
      (static_cast<uint64_t>(getpid()) << 40);
  std::vector<std::string> ost_desc;
  for (const auto& t : targets) {
    ost_desc.push_back(std::to_string(t.index) + "=" + t.address);
  }
  spdlog::info(
      "stripefs-mds {} starting: target={} listen={} data={} osts=[{}] "
      "stripe_count={} stripe_size={} instance={:x}",
      stripefs::kRelease, cfg.target, cfg.listen, cfg.data,
      absl::StrJoin(ost_desc, ","), cfg.stripe_count, cfg.stripe_size,
      instance);

  auto pool = stripefs::mds::NewGrpcOstPool(targets, instance);
  stripefs::mds::MdsOptions opts;
  opts.target = cfg.target;
  opts.dlm_address = cfg.dlm;
  opts.default_stripe_count = cfg.stripe_count;
  opts.default_stripe_size = static_cast<uint32_t>(cfg.stripe_size);
  // Open handles of the previous instance wait for their clients to reopen
  // them, whether it stopped cleanly or crashed (kill -9, forced failover):
  // they are in the store either way. Only a start forced past a refusal
  // (--force over an unclean store of another release) discards them, as
  // its clients are evicted.
  opts.keep_open_handles = !startup->evict_clients;
  opts.reopen_window = absl::Seconds(cfg.reopen_window_s);
  opts.client_lease = absl::Seconds(cfg.client_lease_s);
  stripefs::mds::ApplyTestPrecreateBatch(&opts.precreate_batch,
                                         &opts.precreate_low_water);
  auto core = std::make_unique<stripefs::mds::MdsCore>(
      store->get(), pool.get(), stripefs::RealClock(), opts);
  if (absl::Status s = core->Start(); !s.ok()) {
    core.reset();
    close_store();
    return Fail("cannot start: " + s.ToString());
  }
  // With a lock service, changes to what clients cache are made under EX
  // metadata locks (see mds/md_locks.h). The client connects (with reset:
  // it drops the EX on active:<target> a controlled stop of the previous
  // instance left) only once the server serves.
  std::unique_ptr<stripefs::dlm::DlmClient> dlm;
  if (!cfg.dlm.empty()) {
    auto started = stripefs::dlm::DlmClient::Start(
        stripefs::rpc::ServerDlmOptions(cfg.dlm, "mds", cfg.target));
    if (!started.ok()) {
      core->Stop();
      core.reset();
      close_store();
      return Fail("cannot start the lock client for " + cfg.dlm + ": " +
                  started.status().ToString());
    }
    dlm = std::move(*started);
  }
  stripefs::mds::MdLocker locker(dlm.get());
  // Evicts dead clients (mds/client_leases.h); stopped before the core.
  if (cfg.client_lease_s > 0 && cfg.client_lease_s < 15) {
    spdlog::warn(
        "--client-lease {}s is shorter than 3 mount keepalive periods (5 s "
        "each): an idle live mount may be evicted",
        cfg.client_lease_s);
  }
  stripefs::mds::ClientLeases leases(
      stripefs::RealClock(), opts.client_lease,
      [&core](uint64_t client_id) { return core->EvictClient(client_id); });
  stripefs::mds::MdsService service(core.get(), cfg.target, instance);
  service.set_locker(&locker);
  service.set_leases(&leases);

  grpc::ServerBuilder builder;
  stripefs::rpc::ConfigureServer(builder);
  int port = 0;
  builder.AddListeningPort(cfg.listen, grpc::InsecureServerCredentials(),
                           &port);
  service.RegisterWith(builder);  // Mds, and MdsV2 in release N+1
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    if (dlm) dlm->Close(/*cancel_locks=*/true);
    core->Stop();
    core.reset();
    close_store();
    return Fail("cannot listen on " + cfg.listen);
  }
  spdlog::info("serving {} on {} (port {})", cfg.target, cfg.listen, port);
  leases.Start();
  if (dlm) dlm->StartConnecting();
  // PR on active:ost<i>: calls to a stopping OSS wait (grpc_ost_pool.cc).
  if (dlm) pool->WatchActive(dlm.get());
  // A forced start: the old clients must find out that their open handles
  // are gone (Reopen -> ESTALE) instead of carrying on with them.
  stripefs::rpc::BounceIfForced(dlm.get(), cfg.target,
                                startup->evict_clients);

  const stripefs::rpc::StopKind stop_kind = signals.Wait();
  if (stop_kind != stripefs::rpc::StopKind::kForcedFailover) {
    // No eviction once told to stop: during a controlled stop the clients'
    // requests (and their keepalive reconnects) are held, so their silence
    // is ours, and an eviction would delete the handles the next instance
    // keeps for them to reopen. (A forced failover stops it below, right
    // after its store turned read-only: nothing it evicts would be saved.)
    leases.Stop();
  }
  if (stop_kind == stripefs::rpc::StopKind::kForcedFailover) {
    // Seed 002: no reply from now on (requests executing answer
    // UNAVAILABLE too, whatever they did), THEN the store refuses writes,
    // so that their write errors never reach a client: they resend to the
    // next instance, which answers from the reply records.
    service.BeginForcedFailover();
    (*store)->SetReadOnly(true);
    leases.Stop();
    service.SetStopping();
    server->Shutdown(std::chrono::system_clock::now() +
                     absl::ToChronoSeconds(
                         stripefs::rpc::kForcedFailoverGrace));
    server->Wait();
    pool->StopWatching();
    // Like a crash: the locks stay in the DLM until the next instance
    // resets them at its first connect (same client id).
    if (dlm) dlm->Close(/*cancel_locks=*/false);
    core->Stop();  // background threads met EROFS at worst, logged
    core.reset();
    // No final sync, no clean-stop record: the server record keeps
    // clean=0, so the next start recovers as after a crash (same release:
    // allowed without --force, open handles kept).
    store->reset();
    spdlog::warn(
        "forced failover: exited without a clean stop; the next instance "
        "recovers");
    return 0;
  }
  // The EX on active:<target> a controlled stop leaves in the DLM.
  const uint64_t active_lock =
      stripefs::rpc::ActiveLockForStop(dlm.get(), cfg.target, stop_kind);
  const bool keep_active_lock = active_lock != 0;
  service.SetStopping();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server->Wait();
  // A controlled stop leaves its EX on active:<target> in the DLM for the
  // next instance to reset; every other lock (metadata locks, PR on the
  // OSTs' active locks) is cancelled so no client waits for a dead holder.
  pool->StopWatching();
  if (dlm) dlm->Close(/*cancel_locks=*/true, /*keep=*/active_lock);
  core->Stop();
  core.reset();
  if (!close_store(/*served=*/true)) return 1;
  spdlog::info("stopped cleanly{}", keep_active_lock ? " (controlled)" : "");
  return 0;
}
