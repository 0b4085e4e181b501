// stripefs-mds: the metadata server process. The life cycle (stop signals,
// start-up check, controlled and forced stops) is the server runner's
// (server/runner.h), the role is mds/mds_role.h; this file has the flags.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "mds/mds_role.h"
#include "server/runner.h"

int main(int argc, char** argv) {
  stripefs::server::RunnerOptions o{.role = "mds", .target = "mdt0"};
  stripefs::mds::MdsFlags f;
  std::vector<std::string> osts;
  CLI::App app{"stripefs metadata server"};
  app.add_option("--target", o.target, "target name")->default_val("mdt0");
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")->required();
  app.add_option("--data", o.data, "data directory")->required();
  app.add_option("--ost", osts, "OST registry entry IDX=ADDR (repeatable)");
  app.add_option("--stripe-count", f.stripe_count,
                 "root default stripe count at format (-1: all OSTs)")
      ->default_val(1);
  app.add_option("--stripe-size", f.stripe_size,
                 "root default stripe size at format (bytes)")
      ->default_val(1 << 20);
  app.add_option("--dlm", o.dlm_address, "HOST:PORT of the lock service");
  app.add_flag("--force", o.force,
               "start even when the start-up check refuses (the previous "
               "instance of another release did not stop cleanly); the old "
               "clients' open handles are discarded");
  app.add_option("--reopen-window", f.reopen_window_s,
                 "seconds the open handles of a cleanly stopped previous "
                 "instance wait for their clients to reopen them")
      ->default_val(60)
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--client-lease", f.client_lease_s,
                 "seconds a client (release 1.1.0 or later) may stay silent "
                 "before it is evicted: its open handles are dropped and the "
                 "files it kept unlinked-while-open reclaimed (0: never; "
                 "default 60; env STRIPEFS_MDS_CLIENT_LEASE, e.g. for tests "
                 "through `stripefs cluster up`)")
      ->default_val(60)
      ->envname("STRIPEFS_MDS_CLIENT_LEASE")
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--qos-threshold-rr", f.qos_threshold_rr_pct,
                 "percent by which the OSTs' free space may differ "
                 "((max - min) / max) with new objects still placed "
                 "round-robin; beyond it they are placed at random weighted "
                 "by free space (0: always weighted, 100: always "
                 "round-robin)")
      ->default_val(17)
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--statfs-interval", f.statfs_interval_s,
                 "seconds between the OSTs' statfs the allocation weighs "
                 "(also refreshed after every 1024 objects allocated)")
      ->default_val(5)
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--log-level", o.log_level, "debug|info|warn|error")
      ->default_val("info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto parsed = stripefs::mds::ParseOsts(osts);
  std::string bad = parsed.ok() ? "" : std::string(parsed.status().message());
  if (parsed.ok()) {
    f.osts = std::move(*parsed);
    bad = stripefs::mds::CheckLayoutFlags(f);
  }
  if (!bad.empty()) {
    std::fprintf(stderr, "stripefs-mds: %s\n", bad.c_str());
    return 1;
  }
  f.data = o.data;
  f.dlm = o.dlm_address;
  auto role = stripefs::mds::NewMdsRole(o.target, std::move(f));
  return stripefs::server::RunServer(o, *role);
}
