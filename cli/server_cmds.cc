// server start / stop / failover (cli/cluster.h).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/cluster.h"
#include "cli/cluster_internal.h"
#include "cli/config.h"
#include "cli/proc.h"
#include "common/errors.h"

namespace stripefs::cli {

using internal::GroupStart;
using internal::InPodman;
using internal::LoadForTarget;
using internal::PodmanPrefix;
using internal::Say;
using internal::ServerPid;
using internal::StartGroup;
using internal::StopPids;

absl::Status ServerStart(const std::string& home_arg, const std::string& target,
                         const StartOptions& o) {
  std::string home;
  absl::StatusOr<ClusterConfig> config =
      LoadForTarget(home_arg, target, &home);
  if (!config.ok()) return config.status();
  HomePaths paths(home);
  if (absl::Status s = MakeDirs(paths.RunDir()); !s.ok()) return s;
  if (absl::Status s = MakeDirs(paths.LogDir()); !s.ok()) return s;
  GroupStart g;
  if (!o.bin_dir.empty()) {
    absl::StatusOr<std::string> dir = RealPath(o.bin_dir);
    if (!dir.ok()) {
      return Errno(ENOENT, absl::StrCat("binary dir ", o.bin_dir,
                                        " does not exist"));
    }
    g.bin_dir = *dir;
  }
  g.default_bin_dir = o.default_bin_dir;
  g.image = o.image;
  g.force = o.force;
  g.expect_release = o.expect_release;
  g.timeout = o.start_timeout;
  const ServerConfig* dlm = config->Dlm();
  // The DLM itself never gets --dlm (StartGroup adds it to MDS/OSS only).
  if (dlm != nullptr) g.dlm_address = dlm->address;
  return StartGroup({target}, &*config, paths, g);
}

absl::Status ServerStop(const std::string& home_arg, const std::string& target,
                        absl::Duration stop_timeout) {
  std::string home;
  absl::StatusOr<ClusterConfig> config =
      LoadForTarget(home_arg, target, &home);
  if (!config.ok()) return config.status();
  HomePaths paths(home);
  const ServerConfig& s = *config->Find(target);
  const pid_t pid = ServerPid(paths, s, /*ask=*/true);
  if (pid <= 0) {
    Say(absl::StrFormat("%-6s not running", s.target));
  } else {
    StopPids({{s.target, pid}}, stop_timeout);
    if (ProcessAlive(pid)) {
      return Errno(EBUSY, absl::StrCat(s.target, " (pid ", pid,
                                       ") did not stop"));
    }
  }
  ::unlink(paths.PidFile(s.target).c_str());
  return absl::OkStatus();
}

namespace {

// Sends `sig` (SIGUSR2: controlled stop, SIGUSR1: forced failover) to a
// server (through `podman kill` for a container: `podman run` proxies
// SIGTERM only) and waits up to `timeout` for it to exit; `what` names the
// stop in messages. A server not running: OK, or ESRCH with must_run.
absl::Status SignalAndWait(const std::string& home_arg,
                           const std::string& target, int sig,
                           const char* what, absl::Duration timeout,
                           bool must_run) {
  std::string home;
  absl::StatusOr<ClusterConfig> config =
      LoadForTarget(home_arg, target, &home);
  if (!config.ok()) return config.status();
  HomePaths paths(home);
  const ServerConfig& s = *config->Find(target);
  const pid_t pid = ServerPid(paths, s, /*ask=*/true);
  const std::string not_running =
      absl::StrCat(s.target, " is not running (see ", paths.LogFile(s.target),
                   "; 'stripefs server start ", s.target, "' starts it)");
  if (pid <= 0) {
    ::unlink(paths.PidFile(s.target).c_str());
    if (must_run) return Errno(ESRCH, not_running);
    Say(absl::StrFormat("%-6s not running", s.target));
    return absl::OkStatus();
  }
  const char* sig_name = sig == SIGUSR1 ? "USR1" : "USR2";
  if (InPodman(s)) {
    absl::StatusOr<std::vector<std::string>> argv = PodmanPrefix(paths);
    if (!argv.ok()) return argv.status();
    argv->insert(argv->end(),
                 {"kill", "--signal", sig_name, ContainerName(s)});
    absl::StatusOr<CommandResult> r = RunCommand(*argv, absl::Seconds(60));
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return Errno(EIO, absl::StrCat("podman kill --signal ", sig_name, " ",
                                     ContainerName(s), " failed: ",
                                     absl::StripAsciiWhitespace(r->output)));
    }
  } else if (::kill(pid, sig) != 0) {
    const int err = errno;
    if (err == ESRCH) {
      ::unlink(paths.PidFile(s.target).c_str());
      if (must_run) return Errno(ESRCH, not_running);
      Say(absl::StrFormat("%-6s not running", s.target));
      return absl::OkStatus();
    }
    return Errno(err, absl::StrCat("cannot signal ", s.target, " (pid ", pid,
                                   "): ", std::strerror(err)));
  }
  if (!WaitForExit(pid, timeout)) {
    return Errno(ETIMEDOUT,
                 absl::StrCat(s.target, " (pid ", pid,
                              ") did not finish its ", what, " within ",
                              absl::FormatDuration(timeout),
                              "; it is still running (see ",
                              paths.LogFile(s.target),
                              "; 'stripefs server stop' stops it plainly)"));
  }
  ::unlink(paths.PidFile(s.target).c_str());
  return absl::OkStatus();
}

}  // namespace

absl::Status ServerStopControlled(const std::string& home_arg,
                                  const std::string& target,
                                  absl::Duration timeout) {
  return SignalAndWait(home_arg, target, SIGUSR2, "controlled stop", timeout,
                       /*must_run=*/false);
}

absl::Status ServerFailover(const std::string& home, const std::string& target,
                            const FailoverOptions& o) {
  std::string abs_home;
  absl::StatusOr<ClusterConfig> config =
      LoadForTarget(home, target, &abs_home);
  if (!config.ok()) return config.status();
  if (o.force && config->Find(target)->role == "dlm") {
    // The DLM has no forced failover: SIGUSR1 would simply kill it.
    return Errno(EINVAL, absl::StrCat(
                             "--force: ", target,
                             " is the lock service, which has no forced "
                             "failover (its lock table is persisted): use "
                             "'stripefs server failover ",
                             target, "' (controlled)"));
  }
  const absl::Time t0 = absl::Now();
  if (absl::Status s = SignalAndWait(
          home, target, o.force ? SIGUSR1 : SIGUSR2,
          o.force ? "forced failover" : "controlled stop", o.stop_timeout,
          /*must_run=*/true);
      !s.ok()) {
    return s;
  }
  const absl::Time t1 = absl::Now();
  Say(absl::StrFormat(
      "%-6s %s in %s; starting the replacement ...", target,
      o.force ? "failed over (forced: no clean stop)" : "stopped (controlled)",
      absl::FormatDuration(absl::Trunc(t1 - t0, absl::Milliseconds(1)))));
  // The replacement runs what the cluster home records for the target
  // (binary dir or image); a forced failover left an unclean store of the
  // same release, which it recovers without --force.
  if (absl::Status s = ServerStart(home, target, o.start); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("the replacement of ", target,
                               " did not start: ", s.message()));
  }
  Say(absl::StrFormat(
      "%-6s replacement serving after %s", target,
      absl::FormatDuration(absl::Trunc(absl::Now() - t0,
                                       absl::Milliseconds(1)))));
  return absl::OkStatus();
}

}  // namespace stripefs::cli
