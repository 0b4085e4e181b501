// stripefs-dlm: serves the lock service over gRPC. The life cycle is the
// server runner's (server/runner.h), the role (the lock table and the Dlm
// service) is dlm/dlm_role.h; this file has the flags. A controlled stop
// (SIGUSR2) is a clean stop here: clients hold their locks and their new
// requests while the DLM is away, and the table is persisted. SIGUSR1 keeps
// its default action (a crash).
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "dlm/dlm_role.h"
#include "server/runner.h"

int main(int argc, char** argv) {
  CLI::App app{"stripefs lock service"};
  stripefs::server::RunnerOptions o{.role = "dlm",
                                    .target = "dlm",
                                    .forced_failover = false,
                                    .shutdown_grace = absl::Seconds(5)};
  double callback_timeout_s = 10;
  double recovery_window_s = 15;
  app.add_option("--target", o.target, "target name (default dlm)");
  app.add_option("--listen", o.listen, "HOST:PORT to serve on")->required();
  app.add_option("--data", o.data, "data directory")->required();
  app.add_option("--callback-timeout", callback_timeout_s,
                 "seconds a holder has to cancel after a blocking callback "
                 "(default 10; env STRIPEFS_DLM_CALLBACK_TIMEOUT, e.g. for "
                 "tests through `stripefs cluster up`)")
      ->envname("STRIPEFS_DLM_CALLBACK_TIMEOUT")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--recovery-window", recovery_window_s,
                 "seconds clients may replay locks after an unclean restart")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--force", o.force,
               "start even when the start-up check refuses (the previous "
               "instance of another release did not stop cleanly)");
  CLI11_PARSE(app, argc, argv);
  if (o.listen.find(':') == std::string::npos) {
    fprintf(stderr, "stripefs-dlm: --listen must be HOST:PORT, got '%s'\n",
            o.listen.c_str());
    return 2;
  }
  stripefs::dlm::LockManagerOptions mopts;
  mopts.callback_timeout = absl::Seconds(callback_timeout_s);
  mopts.recovery_window = absl::Seconds(recovery_window_s);
  auto role = stripefs::dlm::NewDlmRole(o.target, o.data, mopts);
  return stripefs::server::RunServer(o, *role);
}
