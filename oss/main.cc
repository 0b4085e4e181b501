// stripefs-oss: serves one object storage target over gRPC. The life cycle
// (stop signals, start-up check, controlled and forced stops) is the
// server runner's (server/runner.h), the role (the object store, its object
// locks through the DLM, the Oss service) is oss/oss_role.h; this file has
// the flags.
#include <malloc.h>

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/version.h"
#include "oss/oss_role.h"
#include "server/runner.h"

int main(int argc, char** argv) {
  CLI::App app{"stripefs object storage server"};
  stripefs::server::RunnerOptions o{.role = "oss"};
  size_t max_open_files = 512;
  uint64_t capacity_bytes = 0;
  app.add_option("--target", o.target, "target name, e.g. ost0")->required();
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")->required();
  app.add_option("--data", o.data, "data directory")->required();
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--max-open-files", max_open_files,
                 "open object files kept cached")
      ->check(CLI::Range(16, 1 << 20));
  app.add_option("--capacity", capacity_bytes,
                 "most bytes the objects may take: statfs reports at most "
                 "this as total and what the objects leave of it as free, "
                 "writes past it fail with ENOSPC (0: the file system's)")
      ->default_val(0);
  app.add_option("--dlm", o.dlm_address,
                 "HOST:PORT of the lock service: lock objects before "
                 "truncate, punch and destroy");
  app.add_flag("--force", o.force,
               "start even when the start-up check refuses (the previous "
               "instance of another release did not stop cleanly)");
#if STRIPEFS_PROTO_MAX >= 2
  app.add_option("--enable-feature", o.enable_features,
                 "turn on an on-disk feature (wide_dirs); an incompatible "
                 "one makes a downgrade to release 1.0.0 impossible");
#endif
  CLI11_PARSE(app, argc, argv);
  // Write data (up to 8 MiB a request) comes and goes on every request:
  // keep it on the heap instead of a fresh mmap and page faults each time
  // (as the mount does). Debian's abseil may have mutex deadlock detection
  // on: a graph update per lock on the I/O path.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The OST index of the object resources is the number in "ostN".
  uint32_t ost_index = 0;
  if (!o.dlm_address.empty() &&
      (!absl::StartsWith(o.target, "ost") ||
       !absl::SimpleAtoi(absl::string_view(o.target).substr(3),
                         &ost_index))) {
    fprintf(stderr, "stripefs-oss: --dlm needs a target named ostN, got '%s'\n",
            o.target.c_str());
    return 2;
  }
  if (o.listen.find(':') == std::string::npos) {
    fprintf(stderr, "stripefs-oss: --listen must be HOST:PORT, got '%s'\n",
            o.listen.c_str());
    return 2;
  }
  auto role = stripefs::oss::NewOssRole(o.target, o.data, max_open_files,
                                       ost_index, capacity_bytes);
  return stripefs::server::RunServer(o, *role);
}
