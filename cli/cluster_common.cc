// The cluster home and its server processes, shared by every command of
// cli/cluster.h: finding a server's pid, podman, starting a group of servers
// and waiting for their Status RPC, stopping pids. See cli/cluster_internal.h.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/cluster.h"
#include "cli/cluster_internal.h"
#include "cli/config.h"
#include "cli/proc.h"
#include "cli/server_status.h"
#include "common/errors.h"

namespace stripefs::cli::internal {

// The server binary of a role (roles are checked when cluster.json loads).
std::string BinaryFor(const std::string& role) { return ServerBinary(role); }

void Say(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

namespace {

// True if pid is alive and runs the binary named exe.
bool RunsBinary(pid_t pid, const std::string& exe) {
  if (!ProcessAlive(pid)) return false;
  std::vector<std::string> argv = ProcessCmdline(pid);
  if (argv.empty()) return false;
  return argv[0] == exe || absl::EndsWith(argv[0], absl::StrCat("/", exe));
}

}  // namespace

bool InPodman(const ServerConfig& s) { return s.runtime == "podman"; }

namespace {

// The process the pid file names: the server itself, or for a container the
// `podman run` client attached to it (it lives exactly as long as the
// container and proxies signals to it).
std::string ProcessBinaryFor(const ServerConfig& s) {
  return InPodman(s) ? "podman" : BinaryFor(s.role);
}

}  // namespace

// The pid of the server for `s`, or 0: the pid file if it names a live
// server binary, else the pid the server reports over Status (plain
// processes only: a container reports its own pid namespace's).
pid_t ServerPid(const HomePaths& paths, const ServerConfig& s, bool ask) {
  absl::StatusOr<pid_t> pid = ReadPidFile(paths.PidFile(s.target));
  if (pid.ok() && *pid > 0 && RunsBinary(*pid, ProcessBinaryFor(s))) {
    return *pid;
  }
  if (!ask || InPodman(s)) return 0;
  absl::StatusOr<ServerStatus> st =
      QueryStatus(s.role, s.address, kStatusDeadline);
  if (st.ok() && st->pid > 0 &&
      RunsBinary(static_cast<pid_t>(st->pid), BinaryFor(s.role))) {
    return static_cast<pid_t>(st->pid);
  }
  return 0;
}

// The podman command prefix with PLATFORM.md's settings; points
// CONTAINERS_CONF at a file with `default_ulimits = []` (written under the
// run dir) unless the caller set one.
absl::StatusOr<std::vector<std::string>> PodmanPrefix(const HomePaths& paths) {
  const char* conf = std::getenv("CONTAINERS_CONF");
  if (conf == nullptr || conf[0] == '\0') {
    const std::string file = paths.RunDir() + "/containers.conf";
    if (absl::Status s = MakeDirs(paths.RunDir()); !s.ok()) return s;
    if (absl::Status s = WriteFileAtomic(
            file, "[containers]\ndefault_ulimits = []\n");
        !s.ok()) {
      return s;
    }
    if (::setenv("CONTAINERS_CONF", file.c_str(), 1) != 0) {
      return Errno(errno, "setenv CONTAINERS_CONF");
    }
  }
  // SpawnDetached does not search PATH.
  std::string podman;
  const char* path_env = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(
           path_env != nullptr ? path_env : "/usr/bin:/bin", ':',
           absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/podman");
    if (::access(candidate.c_str(), X_OK) == 0) {
      podman = candidate;
      break;
    }
  }
  if (podman.empty()) {
    return Errno(ENOENT,
                 "podman is not installed (apt-get install podman runc, or "
                 "deploy/install-deps.sh)");
  }
  return std::vector<std::string>{podman, "--runtime", "runc",
                                  "--cgroup-manager=cgroupfs"};
}

namespace {

// Names of the STRIPEFS_* environment variables set here (passed on to
// containers as plain processes inherit them).
std::vector<std::string> StripefsEnvNames() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string kv = *e;
    if (!absl::StartsWith(kv, "STRIPEFS_")) continue;
    out.push_back(kv.substr(0, kv.find('=')));
  }
  return out;
}

// The last non-empty line of a log tail.
std::string LastLine(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    std::string line(absl::StripAsciiWhitespace(*it));
    if (!line.empty()) return line;
  }
  return "";
}

}  // namespace

absl::StatusOr<std::string> AbsHome(const std::string& home, bool create) {
  if (create) {
    if (absl::Status s = MakeDirs(home); !s.ok()) return s;
  }
  return RealPath(home);
}

absl::StatusOr<ClusterConfig> LoadHome(const std::string& home_arg,
                                       std::string* home) {
  absl::StatusOr<std::string> abs = AbsHome(home_arg, /*create=*/false);
  if (!abs.ok()) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", home_arg,
                                      " (run 'stripefs cluster up' first)"));
  }
  *home = *abs;
  absl::StatusOr<ClusterConfig> config =
      LoadConfig(HomePaths(*abs).ConfigFile());
  if (!config.ok() && ToErrno(config.status()) == ENOENT) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", *abs,
                                      " (run 'stripefs cluster up' first)"));
  }
  return config;
}

// Loads the config of an existing home and finds target in it.
absl::StatusOr<ClusterConfig> LoadForTarget(const std::string& home_arg,
                                            const std::string& target,
                                            std::string* home) {
  absl::StatusOr<ClusterConfig> config = LoadHome(home_arg, home);
  if (!config.ok()) return config.status();
  if (config->Find(target) == nullptr) {
    std::vector<std::string> names;
    for (const auto& s : config->servers) names.push_back(s.target);
    return Errno(ENOENT, absl::StrCat("no server '", target, "' in ", *home,
                                      " (servers: ", absl::StrJoin(names, ", "),
                                      ")"));
  }
  return config;
}

namespace {

absl::Status Started(const ServerConfig& s, const HomePaths& paths, pid_t pid,
                     const std::string& why) {
  std::string msg = absl::StrCat(s.target, " ", why);
  const std::string tail = TailFile(paths.LogFile(s.target), kLogTailLines);
  if (!tail.empty()) {
    absl::StrAppend(&msg, "; last lines of ", paths.LogFile(s.target), ":\n",
                    tail);
  } else {
    absl::StrAppend(&msg, " (", paths.LogFile(s.target), " is empty)");
  }
  return Errno(EIO, msg);
}

// Waits until every (server, pid) answers Status as its target.
// A server that exits with kRefusedExit failed its startup check.
constexpr int kRefusedExit = 3;

absl::Status WaitUp(
    const std::vector<std::pair<const ServerConfig*, pid_t>>& servers,
    const HomePaths& paths, absl::Duration timeout,
    const std::string& expect_release = "") {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<bool> up(servers.size(), false);
  size_t remaining = servers.size();
  while (remaining > 0) {
    for (size_t i = 0; i < servers.size(); ++i) {
      if (up[i]) continue;
      const ServerConfig& s = *servers[i].first;
      const pid_t pid = servers[i].second;
      absl::StatusOr<ServerStatus> st =
          QueryStatus(s.role, s.address, absl::Milliseconds(500));
      if (st.ok()) {
        if (!st->target.empty() && st->target != s.target) {
          return Errno(EIO, absl::StrCat(s.address, " answers as '", st->target,
                                         "', expected ", s.target,
                                         " (another cluster on this port?)"));
        }
        if (!expect_release.empty() && st->release != expect_release) {
          // The old instance may still be answering on its way out.
          if (absl::Now() >= deadline) {
            return Errno(EIO, absl::StrCat(s.target, " at ", s.address,
                                           " answers with release ",
                                           st->release, ", expected ",
                                           expect_release));
          }
          continue;
        }
        up[i] = true;
        --remaining;
        Say(absl::StrFormat("%-6s up at %s (pid %d, release %s)", s.target,
                            s.address, pid, st->release));
        continue;
      }
      if (std::optional<int> code = ReapChild(pid); code.has_value()) {
        ::unlink(paths.PidFile(s.target).c_str());
        if (*code == kRefusedExit) {
          const std::string line =
              LastLine(TailFile(paths.LogFile(s.target), kLogTailLines));
          return absl::FailedPreconditionError(absl::StrCat(
              s.target, " refused to start (exit code 3): ", line,
              " (see ", paths.LogFile(s.target),
              "; 'stripefs server start --force' overrides the check and "
              "evicts the old clients)"));
        }
        return Started(s, paths, pid,
                       absl::StrCat("(pid ", pid, ") exited with code ", *code,
                                    " during start"));
      }
      if (pid > 0 && !ProcessAlive(pid)) {
        ::unlink(paths.PidFile(s.target).c_str());
        return Started(s, paths, pid,
                       absl::StrCat("(pid ", pid, ") exited during start"));
      }
    }
    if (remaining == 0) break;
    if (absl::Now() >= deadline) {
      for (size_t i = 0; i < servers.size(); ++i) {
        if (!up[i]) {
          return Started(*servers[i].first, paths, servers[i].second,
                         absl::StrCat("did not answer its Status RPC at ",
                                      servers[i].first->address, " within ",
                                      absl::FormatDuration(timeout)));
        }
      }
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::OkStatus();
}

}  // namespace

// Starts every server in `targets` that is not running and waits for all of
// them. Saves cluster.json when an explicit binary dir or image changed an
// entry.
absl::Status StartGroup(const std::vector<std::string>& targets,
                        ClusterConfig* config, const HomePaths& paths,
                        const GroupStart& g) {
  std::vector<std::pair<const ServerConfig*, pid_t>> wait;
  for (const std::string& t : targets) {
    ServerConfig* s = nullptr;
    for (auto& e : config->servers) {
      if (e.target == t) s = &e;
    }
    if (s == nullptr) return Errno(ENOENT, absl::StrCat("no server ", t));
    pid_t pid = ServerPid(paths, *s, /*ask=*/false);
    if (pid > 0) {
      Say(absl::StrFormat("%-6s already running (pid %d)", s->target, pid));
      wait.push_back({s, pid});
      continue;
    }
    // Record what this start uses, so later starts keep using it.
    bool changed = false;
    if (!g.bin_dir.empty() && s->binary_dir != g.bin_dir) {
      s->binary_dir = g.bin_dir;
      changed = true;
    }
    if (!g.image.empty() && (s->image != g.image || !InPodman(*s))) {
      s->runtime = "podman";
      s->image = g.image;
      changed = true;
    }
    if (changed) {
      if (absl::Status st = SaveConfig(paths.ConfigFile(), *config); !st.ok())
        return st;
    }
    if (absl::Status st = MakeDirs(s->data); !st.ok()) return st;
    const std::string dir =
        s->binary_dir.empty() ? g.default_bin_dir : s->binary_dir;
    const std::string exe = absl::StrCat(dir, "/", BinaryFor(s->role));
    if (!InPodman(*s) && ::access(exe.c_str(), X_OK) != 0) {
      return Errno(ENOENT, absl::StrCat(exe,
                                        " not found or not executable "
                                        "(build it, or pass --bin-dir)"));
    }
    std::vector<std::string> args = {"--target", s->target, "--listen",
                                     s->address, "--data", s->data};
    if (s->role == "mds") {
      int index = 0;
      for (const ServerConfig* o : config->Osses()) {
        args.push_back("--ost");
        args.push_back(absl::StrCat(index++, "=", o->address));
      }
      args.push_back("--stripe-count");
      args.push_back(absl::StrCat(config->stripe_count));
      args.push_back("--stripe-size");
      args.push_back(absl::StrCat(config->stripe_size));
      if (!g.dlm_address.empty()) {
        args.push_back("--dlm");
        args.push_back(g.dlm_address);
      }
    }
    if (s->role == "oss" && !g.dlm_address.empty()) {
      args.push_back("--dlm");
      args.push_back(g.dlm_address);
    }
    if (g.force) args.push_back("--force");
    std::vector<std::string> argv;
    if (InPodman(*s)) {
      absl::StatusOr<std::vector<std::string>> prefix = PodmanPrefix(paths);
      if (!prefix.ok()) return prefix.status();
      // A container left by a killed `podman run` would block the name.
      std::vector<std::string> rm = *prefix;
      rm.insert(rm.end(), {"rm", "-f", "--ignore", ContainerName(*s)});
      absl::StatusOr<CommandResult> r = RunCommand(rm, absl::Seconds(60));
      if (!r.ok()) return r.status();
      if (r->exit_code != 0) {
        return Errno(EIO, absl::StrCat("podman rm ", ContainerName(*s),
                                       " failed: ", r->output));
      }
      argv = *prefix;
      std::vector<std::string> run =
          PodmanRunArgv(*s, args, StripefsEnvNames());
      argv.insert(argv.end(), run.begin(), run.end());
    } else {
      argv = {exe};
      argv.insert(argv.end(), args.begin(), args.end());
    }
    absl::StatusOr<pid_t> spawned =
        SpawnDetached(argv, paths.LogFile(s->target));
    if (!spawned.ok()) return spawned.status();
    if (absl::Status st = WritePidFile(paths.PidFile(s->target), *spawned);
        !st.ok()) {
      ::kill(*spawned, SIGTERM);
      return st;
    }
    wait.push_back({s, *spawned});
  }
  return WaitUp(wait, paths, g.timeout, g.expect_release);
}

// Sends SIGTERM to each pid, waits for all, SIGKILLs what is left.
void StopPids(const std::vector<std::pair<std::string, pid_t>>& procs,
              absl::Duration timeout) {
  for (const auto& [name, pid] : procs) {
    if (::kill(pid, SIGTERM) != 0 && errno != ESRCH) {
      std::fprintf(stderr, "stripefs: cannot signal %s (pid %d): %s\n",
                   name.c_str(), pid, std::strerror(errno));
    }
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (const auto& [name, pid] : procs) {
    absl::Duration left = deadline - absl::Now();
    if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
    if (WaitForExit(pid, left)) {
      Say(absl::StrFormat("%-6s stopped", name));
      continue;
    }
    std::fprintf(stderr,
                 "stripefs: %s (pid %d) did not exit within %s of SIGTERM; "
                 "sending SIGKILL\n",
                 name.c_str(), pid, absl::FormatDuration(timeout).c_str());
    ::kill(pid, SIGKILL);
    if (!WaitForExit(pid, absl::Seconds(5))) {
      std::fprintf(stderr, "stripefs: %s (pid %d) survived SIGKILL\n",
                   name.c_str(), pid);
    } else {
      Say(absl::StrFormat("%-6s killed", name));
    }
  }
}

}  // namespace stripefs::cli::internal

namespace stripefs::cli {

using internal::BinaryFor;

std::string ContainerName(const ServerConfig& server) {
  const size_t colon = server.address.rfind(':');
  std::string port =
      colon == std::string::npos ? "0" : server.address.substr(colon + 1);
  return absl::StrCat("stripefs-", server.target, "-", port);
}

std::vector<std::string> PodmanRunArgv(
    const ServerConfig& server, const std::vector<std::string>& server_args,
    const std::vector<std::string>& env_names) {
  // Attached (no -d): this `podman run` lives as long as the server, proxies
  // SIGTERM to it (SIGUSR2 goes through `podman kill`), passes its output to our log file and exits with
  // its exit code (3 when the startup check refuses).
  std::vector<std::string> argv = {
      "run",     "--rm", "--name",   ContainerName(server), "--network",
      "host",    "--sig-proxy=true", "--stop-timeout",      "60",
      "--volume", absl::StrCat(server.data, ":", server.data)};
  for (const std::string& name : env_names) {
    argv.push_back("--env");
    argv.push_back(name);
  }
  argv.push_back(server.image);
  argv.push_back(absl::StrCat("/usr/local/bin/", BinaryFor(server.role)));
  argv.insert(argv.end(), server_args.begin(), server_args.end());
  return argv;
}

}  // namespace stripefs::cli
