#include "cli/cluster.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/cluster_binaries.h"
#include "cli/config.h"
#include "cli/layout.h"
#include "cli/proc.h"
#include "cli/server_status.h"
#include "cli/size.h"
#include "common/errors.h"
#include "nlohmann/json.hpp"

namespace stripefs::cli {
namespace {

constexpr int kMaxOss = 256;
constexpr int kLogTailLines = 15;
constexpr absl::Duration kStatusDeadline = absl::Seconds(1);
constexpr absl::Duration kPatientStatusDeadline = absl::Seconds(3);
constexpr absl::Duration kMountTimeout = absl::Seconds(30);
constexpr absl::Duration kMountExitTimeout = absl::Seconds(10);

// The server binary of a role (roles are checked when cluster.json loads).
std::string BinaryFor(const std::string& role) { return ServerBinary(role); }

void Say(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// True if pid is alive and runs the binary named exe.
bool RunsBinary(pid_t pid, const std::string& exe) {
  if (!ProcessAlive(pid)) return false;
  std::vector<std::string> argv = ProcessCmdline(pid);
  if (argv.empty()) return false;
  return argv[0] == exe || absl::EndsWith(argv[0], absl::StrCat("/", exe));
}

bool InPodman(const ServerConfig& s) { return s.runtime == "podman"; }

// The process the pid file names: the server itself, or for a container the
// `podman run` client attached to it (it lives exactly as long as the
// container and proxies signals to it).
std::string ProcessBinaryFor(const ServerConfig& s) {
  return InPodman(s) ? "podman" : BinaryFor(s.role);
}

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

absl::StatusOr<std::string> AbsHome(const std::string& home, bool create) {
  if (create) {
    if (absl::Status s = MakeDirs(home); !s.ok()) return s;
  }
  return RealPath(home);
}

// A free port on 127.0.0.1 not in *used; adds it there.
absl::StatusOr<int> PickUnusedPort(std::set<int>* used) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    if (used->insert(*port).second) return *port;
  }
  return Errno(EADDRINUSE, "cannot find free ports on 127.0.0.1");
}

absl::Status NewConfig(const UpOptions& o, const std::string& home,
                       ClusterConfig* config) {
  const int n = o.oss_count.value_or(4);
  if (n < 1 || n > kMaxOss) {
    return Errno(EINVAL, absl::StrCat("--oss must be between 1 and ", kMaxOss));
  }
  config->stripe_count = o.stripe_count.value_or(1);
  config->stripe_size = o.stripe_size.value_or(1 << 20);
  if (absl::Status s = ValidateStripeSize(config->stripe_size); !s.ok())
    return s;
  if (config->stripe_count == 0 || config->stripe_count < -1) {
    return Errno(EINVAL,
                 "--stripe-count must be -1 (all OSTs) or a positive number");
  }
  if (config->stripe_count > n) {
    return Errno(EINVAL, absl::StrCat("--stripe-count ", config->stripe_count,
                                      " > ", n, " OSTs"));
  }
  std::set<int> used;
  auto pick = [&]() { return PickUnusedPort(&used); };
  absl::StatusOr<int> port = pick();
  if (!port.ok()) return port.status();
  config->servers.push_back({"mdt0", "mds", absl::StrCat("127.0.0.1:", *port),
                             absl::StrCat(home, "/mdt0")});
  for (int i = 0; i < n; ++i) {
    port = pick();
    if (!port.ok()) return port.status();
    const std::string target = absl::StrCat("ost", i);
    config->servers.push_back({target, "oss", absl::StrCat("127.0.0.1:", *port),
                               absl::StrCat(home, "/", target)});
  }
  return absl::OkStatus();
}

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

struct GroupStart {
  std::string bin_dir;  // explicit: used for every server and recorded
  std::string default_bin_dir;
  std::string image;  // explicit: podman from this image, recorded
  bool force = false;
  std::string expect_release;
  absl::Duration timeout = absl::Seconds(20);
  std::string dlm_address;  // passed to the MDS and the OSSs as --dlm
};

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

// Before `cluster up` starts anything: every binary it is going to run
// exists, so a missing one cannot leave the cluster half started.
absl::Status CheckBinaries(const ClusterConfig& config, const HomePaths& paths,
                           const GroupStart& g, bool no_dlm,
                           const std::string* mount_bin_dir) {
  std::vector<std::string> missing;
  auto need = [&missing](const std::string& exe) {
    if (::access(exe.c_str(), X_OK) != 0 &&
        std::find(missing.begin(), missing.end(), exe) == missing.end()) {
      missing.push_back(exe);
    }
  };
  for (const ServerConfig& s : config.servers) {
    if (no_dlm && s.role == "dlm") continue;
    if (!g.image.empty() || InPodman(s)) continue;
    if (ServerPid(paths, s, /*ask=*/false) > 0) continue;
    const std::string& dir = !g.bin_dir.empty()       ? g.bin_dir
                             : s.binary_dir.empty() ? g.default_bin_dir
                                                    : s.binary_dir;
    need(absl::StrCat(dir, "/", BinaryFor(s.role)));
  }
  if (mount_bin_dir != nullptr) {
    need(absl::StrCat(*mount_bin_dir, "/", kMountBinary));
  }
  if (missing.empty()) return absl::OkStatus();
  return Errno(ENOENT,
               absl::StrCat(absl::StrJoin(missing, ", "),
                            missing.size() == 1 ? " is" : " are",
                            " missing or not executable (build them with "
                            "'ninja ",
                            kClusterBinariesTarget, "', or pass --bin-dir)"));
}

// True if pid is a stripefs-mount daemon started for mountpoint.
bool IsMountDaemonOf(pid_t pid, const std::string& mountpoint) {
  std::vector<std::string> argv = ProcessCmdline(pid);
  if (argv.empty() || !absl::EndsWith(argv[0], "stripefs-mount")) return false;
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == mountpoint) return true;
  }
  return false;
}

// `path` made absolute and lexically normal, without a trailing slash.
std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The stripefs-mount daemon serving mountpoint, or 0.
pid_t FindMountDaemon(const std::string& mountpoint) {
  for (pid_t pid : FindProcesses("stripefs-mount")) {
    std::vector<std::string> argv = ProcessCmdline(pid);
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == mountpoint) return pid;
    }
  }
  return 0;
}

// Unmounts mountpoint and waits for its daemon (pid, if known) to exit.
absl::Status UnmountAndWait(const std::string& mountpoint, pid_t pid) {
  // A recorded daemon that died (kill -9) may have left its pid to another
  // process, which must not be waited for or killed.
  if (pid > 0 && !IsMountDaemonOf(pid, mountpoint)) pid = 0;
  if (pid <= 0) pid = FindMountDaemon(mountpoint);
  // After a lazy unmount the daemon lives on until the last user lets go;
  // the cluster is going away, so do not wait long for it.
  absl::Duration exit_wait = kMountExitTimeout;
  if (IsMounted(mountpoint)) {
    absl::StatusOr<CommandResult> r =
        RunCommand({"fusermount3", "-u", mountpoint}, absl::Seconds(30));
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      Say(absl::StrCat(
          mountpoint, ": busy, unmounting lazily (",
          std::string(absl::StripTrailingAsciiWhitespace(r->output)), ")"));
      exit_wait = absl::Seconds(2);
      absl::StatusOr<CommandResult> lazy = RunCommand(
          {"fusermount3", "-u", "-z", mountpoint}, absl::Seconds(30));
      if (!lazy.ok()) return lazy.status();
      if (lazy->exit_code != 0 && IsMounted(mountpoint)) {
        return Errno(
            EBUSY,
            absl::StrCat("cannot unmount ", mountpoint, ": ",
                         absl::StripTrailingAsciiWhitespace(lazy->output)));
      }
    }
    Say(absl::StrCat("unmounted ", mountpoint));
  }
  if (pid > 0 && ProcessAlive(pid)) {
    if (!WaitForExit(pid, exit_wait)) {
      std::fprintf(stderr,
                   "stripefs: mount daemon for %s (pid %d) still running; "
                   "sending SIGTERM\n",
                   mountpoint.c_str(), pid);
      ::kill(pid, SIGTERM);
      if (!WaitForExit(pid, absl::Seconds(5))) {
        ::kill(pid, SIGKILL);
        WaitForExit(pid, absl::Seconds(5));
      }
    }
  }
  return absl::OkStatus();
}

// The --mds argument of a stripefs-mount daemon, or "".
std::string MountDaemonMds(pid_t pid) {
  std::vector<std::string> argv = ProcessCmdline(pid);
  for (size_t i = 1; i + 1 < argv.size(); ++i) {
    if (argv[i] == "--mds") return argv[i + 1];
  }
  return "";
}

std::string NotADirectory(const std::string& mountpoint) {
  return absl::StrCat("mountpoint ", mountpoint,
                      " is not an existing directory (create it first)");
}

// What is at a mountpoint before the cluster is mounted there.
struct MountpointCheck {
  std::string path;       // absolute (symlinks resolved unless it is stale)
  pid_t mounted_pid = 0;  // > 0: this cluster is mounted there already
};

// Checks a mountpoint before mounting the cluster whose MDS is `mds` there:
// an existing directory with nothing mounted on it, or already mounted by
// this cluster (mounted_pid). A stale mount of this cluster (recorded in
// run/mounts.json, its daemon gone, e.g. killed with -9) is unmounted
// (lazily) when clean_stale, else refused; anything else mounted there is
// refused, saying what it is. Never stat(2)s a stale mount.
absl::StatusOr<MountpointCheck> CheckMountpoint(const HomePaths& paths,
                                                const ServerConfig& mds,
                                                const std::string& mountpoint,
                                                bool clean_stale) {
  MountpointCheck out;
  // realpath(3) fails on a mount whose daemon died (ENOTCONN): the absolute
  // path as given names it then.
  absl::StatusOr<std::string> real = RealPath(mountpoint);
  out.path = real.ok() ? *real : AbsolutePath(mountpoint);
  std::optional<MountEntry> top;  // the last mount there is the visible one
  for (MountEntry& m : ReadMounts()) {
    if (m.mountpoint == out.path) top = std::move(m);
  }
  if (!top) {
    struct stat st;
    if (!real.ok() || ::stat(out.path.c_str(), &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
      return Errno(ENOENT, NotADirectory(mountpoint));
    }
    return out;
  }
  absl::StatusOr<std::vector<MountRecord>> mounts =
      LoadMounts(paths.MountsFile());
  if (!mounts.ok()) return mounts.status();
  std::optional<MountRecord> record;
  std::vector<MountRecord> others;
  for (const auto& m : *mounts) {
    if (m.mountpoint == out.path) {
      record = m;
    } else {
      others.push_back(m);
    }
  }
  if (record && IsMountDaemonOf(static_cast<pid_t>(record->pid), out.path)) {
    out.mounted_pid = static_cast<pid_t>(record->pid);
    return out;
  }
  if (const pid_t daemon = FindMountDaemon(out.path); daemon > 0) {
    const std::string daemon_mds = MountDaemonMds(daemon);
    if (daemon_mds == mds.address) {
      out.mounted_pid = daemon;
      return out;
    }
    return Errno(EBUSY,
                 absl::StrCat(out.path,
                              " is already mounted by another stripefs "
                              "cluster (stripefs-mount pid ",
                              daemon, ", MDS ", daemon_mds,
                              "); unmount it or choose another directory"));
  }
  if (top->fstype != "fuse.stripefs") {
    return Errno(EBUSY, absl::StrCat(out.path, " is already a mountpoint (",
                                     top->fstype, " from ", top->source,
                                     "); unmount it or choose another "
                                     "directory"));
  }
  if (!record || !clean_stale) {
    return Errno(EBUSY, absl::StrCat(out.path,
                                     " is a stripefs mount whose daemon is "
                                     "gone: clean it with 'stripefs umount ",
                                     out.path, "' first"));
  }
  Say(absl::StrCat(out.path,
                   ": stale mount of this cluster (its stripefs-mount daemon "
                   "is gone); unmounting it"));
  absl::StatusOr<CommandResult> r =
      RunCommand({"fusermount3", "-u", "-z", out.path}, absl::Seconds(30));
  if (!r.ok()) return r.status();
  if (IsMounted(out.path)) {
    return Errno(EBUSY,
                 absl::StrCat("cannot unmount the stale mount at ", out.path,
                              ": ",
                              absl::StripAsciiWhitespace(r->output)));
  }
  if (absl::Status s = SaveMounts(paths.MountsFile(), others); !s.ok()) {
    return s;
  }
  struct stat st;
  if (::stat(out.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Errno(ENOENT, NotADirectory(mountpoint));
  }
  return out;
}

}  // namespace

absl::StatusOr<bool> EnsureDlmEntry(const std::string& home,
                                    ClusterConfig* config) {
  if (config->Dlm() != nullptr) return false;
  const std::string target = "dlm";
  if (config->Find(target) != nullptr) {
    return Errno(EINVAL, absl::StrCat("cluster.json has a server named '",
                                      target, "' whose role is not dlm"));
  }
  std::set<int> used;
  for (const auto& s : config->servers) {
    const size_t colon = s.address.rfind(':');
    int port = 0;
    if (colon != std::string::npos &&
        absl::SimpleAtoi(s.address.substr(colon + 1), &port)) {
      used.insert(port);
    }
  }
  absl::StatusOr<int> port = PickUnusedPort(&used);
  if (!port.ok()) return port.status();
  config->servers.push_back({target, "dlm", absl::StrCat("127.0.0.1:", *port),
                             absl::StrCat(home, "/", target)});
  return true;
}

absl::Status ClusterUp(const UpOptions& o) {
  absl::StatusOr<std::string> home = AbsHome(o.home, /*create=*/true);
  if (!home.ok()) return home.status();
  HomePaths paths(*home);
  if (absl::Status s = MakeDirs(paths.RunDir()); !s.ok()) return s;
  if (absl::Status s = MakeDirs(paths.LogDir()); !s.ok()) return s;

  ClusterConfig config;
  absl::StatusOr<ClusterConfig> loaded = LoadConfig(paths.ConfigFile());
  if (loaded.ok()) {
    config = *loaded;
    const int recorded = static_cast<int>(config.Osses().size());
    if (o.oss_count && *o.oss_count != recorded) {
      return Errno(EINVAL,
                   absl::StrCat("the cluster in ", *home, " has ", recorded,
                                " OSS; --oss ", *o.oss_count,
                                " differs (omit --oss, or use a new --home)"));
    }
    if ((o.stripe_count && *o.stripe_count != config.stripe_count) ||
        (o.stripe_size && *o.stripe_size != config.stripe_size)) {
      Say(absl::StrCat(
          "note: keeping the recorded root layout (stripe_count=",
          config.stripe_count, " stripe_size=", config.stripe_size,
          "); use 'stripefs setstripe' on a directory to change it"));
    }
  } else if (ToErrno(loaded.status()) == ENOENT) {
    if (absl::Status s = NewConfig(o, *home, &config); !s.ok()) return s;
    if (absl::Status s = SaveConfig(paths.ConfigFile(), config); !s.ok())
      return s;
    Say(absl::StrCat("created ", paths.ConfigFile(), " (1 MDS, ",
                     config.Osses().size(), " OSS)"));
  } else {
    return loaded.status();
  }
  if (!o.no_dlm) {
    absl::StatusOr<bool> added = EnsureDlmEntry(*home, &config);
    if (!added.ok()) return added.status();
    if (*added) {
      if (absl::Status s = SaveConfig(paths.ConfigFile(), config); !s.ok())
        return s;
      Say(absl::StrCat("added the lock service (", config.Dlm()->target, " at ",
                       config.Dlm()->address, ") to ", paths.ConfigFile()));
    }
  }

  GroupStart g;
  if (o.bin_dir_explicit) {
    absl::StatusOr<std::string> dir = RealPath(o.bin_dir);
    if (!dir.ok()) {
      return Errno(ENOENT, absl::StrCat("--bin-dir ", o.bin_dir,
                                        " does not exist"));
    }
    g.bin_dir = *dir;
  }
  g.default_bin_dir = o.bin_dir;
  g.image = o.image;
  g.timeout = o.start_timeout;
  // Nothing starts unless everything can: the binaries are there and the
  // mountpoint is free (or already ours; a stale mount of ours is cleaned).
  if (absl::Status s = CheckBinaries(config, paths, g, o.no_dlm,
                                     o.mountpoint ? &o.bin_dir : nullptr);
      !s.ok()) {
    return s;
  }
  if (o.mountpoint) {
    absl::StatusOr<MountpointCheck> check = CheckMountpoint(
        paths, *config.Mds(), *o.mountpoint, /*clean_stale=*/true);
    if (!check.ok()) return check.status();
  }
  // The DLM first: the MDS and every mount connect to it.
  if (!o.no_dlm) {
    if (absl::Status s = StartGroup({config.Dlm()->target}, &config, paths, g);
        !s.ok()) {
      return s;
    }
    g.dlm_address = config.Dlm()->address;
  }
  std::vector<std::string> osses;
  for (const ServerConfig* s : config.Osses()) osses.push_back(s->target);
  if (absl::Status s = StartGroup(osses, &config, paths, g); !s.ok()) {
    return s;
  }
  if (absl::Status s = StartGroup({config.Mds()->target}, &config, paths, g);
      !s.ok()) {
    return s;
  }
  if (o.mountpoint) {
    return Mount(*home, *o.mountpoint, o.bin_dir, /*clean_stale=*/true);
  }
  return absl::OkStatus();
}

absl::Status ClusterDown(const std::string& home_arg,
                         absl::Duration stop_timeout) {
  absl::StatusOr<std::string> home = AbsHome(home_arg, /*create=*/false);
  if (!home.ok()) {
    if (ToErrno(home.status()) == ENOENT) {
      Say(absl::StrCat("no cluster in ", home_arg, "; nothing to stop"));
      return absl::OkStatus();
    }
    return home.status();
  }
  HomePaths paths(*home);
  absl::StatusOr<ClusterConfig> config = LoadConfig(paths.ConfigFile());
  if (!config.ok()) {
    if (ToErrno(config.status()) == ENOENT) {
      Say(absl::StrCat("no cluster in ", *home, "; nothing to stop"));
      return absl::OkStatus();
    }
    return config.status();
  }

  // Mounts: the recorded ones plus any stripefs-mount daemon of this MDS.
  absl::Status first_error;
  absl::StatusOr<std::vector<MountRecord>> mounts =
      LoadMounts(paths.MountsFile());
  if (!mounts.ok()) {
    std::fprintf(stderr, "stripefs: %s\n",
                 std::string(mounts.status().message()).c_str());
    mounts = std::vector<MountRecord>{};
  }
  std::vector<MountRecord> todo = *mounts;
  const std::string mds_addr = config->Mds()->address;
  for (pid_t pid : FindProcesses("stripefs-mount")) {
    std::vector<std::string> argv = ProcessCmdline(pid);
    bool ours = false;
    for (size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--mds" && argv[i + 1] == mds_addr) ours = true;
    }
    if (absl::StrContains(absl::StrJoin(argv, " "), "--mds=" + mds_addr))
      ours = true;
    if (!ours || argv.size() < 2) continue;
    bool known = false;
    for (const auto& m : todo)
      known |= (m.pid == pid || m.mountpoint == argv.back());
    if (!known) todo.push_back({argv.back(), pid});
  }
  std::vector<MountRecord> left;
  for (const auto& m : todo) {
    absl::Status s = UnmountAndWait(m.mountpoint, static_cast<pid_t>(m.pid));
    if (!s.ok()) {
      std::fprintf(stderr, "stripefs: %s\n", std::string(s.message()).c_str());
      if (first_error.ok()) first_error = s;
      left.push_back(m);
    }
  }
  if (absl::Status s = SaveMounts(paths.MountsFile(), left); !s.ok()) {
    if (first_error.ok()) first_error = s;
  }

  // MDS first (it may still talk to the OSSs while it shuts down), then OSSs.
  const ServerConfig* mds = config->Mds();
  std::vector<std::pair<std::string, pid_t>> procs;
  if (pid_t pid = ServerPid(paths, *mds, /*ask=*/true); pid > 0) {
    procs.push_back({mds->target, pid});
  }
  StopPids(procs, stop_timeout);
  ::unlink(paths.PidFile(mds->target).c_str());
  procs.clear();
  for (const ServerConfig* s : config->Osses()) {
    if (pid_t pid = ServerPid(paths, *s, /*ask=*/true); pid > 0) {
      procs.push_back({s->target, pid});
    }
  }
  StopPids(procs, stop_timeout);
  for (const ServerConfig* s : config->Osses())
    ::unlink(paths.PidFile(s->target).c_str());
  // The DLM last: the MDS and the mounts release their locks on the way out.
  if (const ServerConfig* dlm = config->Dlm(); dlm != nullptr) {
    procs.clear();
    if (pid_t pid = ServerPid(paths, *dlm, /*ask=*/true); pid > 0) {
      procs.push_back({dlm->target, pid});
    }
    StopPids(procs, stop_timeout);
    ::unlink(paths.PidFile(dlm->target).c_str());
  }
  if (first_error.ok()) Say(absl::StrCat("cluster in ", *home, " is down"));
  return first_error;
}

absl::StatusOr<std::vector<ServerState>> ClusterStatus(
    const std::string& home_arg) {
  absl::StatusOr<std::string> home = AbsHome(home_arg, /*create=*/false);
  if (!home.ok()) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", home_arg,
                                      " (run 'stripefs cluster up' first)"));
  }
  HomePaths paths(*home);
  absl::StatusOr<ClusterConfig> config = LoadConfig(paths.ConfigFile());
  if (!config.ok()) {
    if (ToErrno(config.status()) == ENOENT) {
      return Errno(ENOENT, absl::StrCat("no cluster in ", *home,
                                        " (run 'stripefs cluster up' first)"));
    }
    return config.status();
  }
  std::vector<ServerState> out;
  std::vector<const ServerConfig*> order = {config->Mds()};
  for (const ServerConfig* s : config->Osses()) order.push_back(s);
  if (config->Dlm() != nullptr) order.push_back(config->Dlm());
  for (const ServerConfig* s : order) {
    ServerState st;
    st.target = s->target;
    st.role = s->role;
    st.address = s->address;
    st.runtime = s->runtime;
    pid_t pid = ServerPid(paths, *s, /*ask=*/false);
    // A live process gets a patient query (a loaded machine may take a
    // moment to connect); a stopped one is probed once, failing fast.
    absl::StatusOr<ServerStatus> reply = QueryStatus(
        s->role, s->address, pid > 0 ? kPatientStatusDeadline : kStatusDeadline,
        /*wait_for_ready=*/pid > 0);
    if (reply.ok()) {
      st.state = reply->state.empty() ? "running" : reply->state;
      st.release = reply->release;
      st.pid = pid > 0 ? pid : reply->pid;
      st.rpc_counts = reply->rpc_counts;
      if (auto it = reply->info.find("connections"); it != reply->info.end()) {
        st.connections = it->second;
      }
      if (s->role == "dlm") {
        uint64_t n = 0;
        auto it = reply->info.find("sessions");
        if (it != reply->info.end() && absl::SimpleAtoi(it->second, &n)) {
          st.sessions = n;
        }
        it = reply->info.find("locks");
        if (it != reply->info.end() && absl::SimpleAtoi(it->second, &n)) {
          st.locks = n;
        }
      }
    } else if (pid > 0) {
      st.state = "unresponsive";
      st.pid = pid;
    } else {
      st.state = "stopped";
      st.pid = 0;
    }
    out.push_back(std::move(st));
  }
  return out;
}

std::string FormatStatusText(const std::vector<ServerState>& states) {
  std::string out;
  for (const auto& s : states) {
    absl::StrAppend(
        &out, absl::StrFormat("%-6s %-4s %-21s pid=%-8s %-12s release=%s",
                              s.target, s.role, s.address,
                              s.pid > 0 ? absl::StrCat(s.pid) : "-", s.state,
                              s.release.empty() ? "-" : s.release));
    if (s.role == "dlm") {
      absl::StrAppend(
          &out, " sessions=", s.sessions ? absl::StrCat(*s.sessions) : "-",
          " locks=", s.locks ? absl::StrCat(*s.locks) : "-");
    }
    if (!s.rpc_counts.empty()) {
      uint64_t total = 0;
      for (const auto& [name, count] : s.rpc_counts) total += count;
      absl::StrAppend(&out, " rpcs=", total);
    }
    if (!s.runtime.empty()) absl::StrAppend(&out, " runtime=", s.runtime);
    // Protocol negotiated with each client it answered Connect for.
    std::string conns = "-";
    if (s.connections.has_value() && !s.connections->empty()) {
      std::vector<std::string> items;
      for (const auto& [name, proto] : ParseConnections(*s.connections)) {
        items.push_back(absl::StrCat(name, ":v", proto));
      }
      conns = absl::StrJoin(items, ",");
    }
    absl::StrAppend(&out, " connections=", conns);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string FormatStatusJson(const std::vector<ServerState>& states) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& s : states) {
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [name, count] : s.rpc_counts) counts[name] = count;
    nlohmann::json entry = {
        {"target", s.target},
        {"role", s.role},
        {"address", s.address},
        {"pid", s.pid},
        {"state", s.state},
        {"release", s.release.empty() ? nlohmann::json(nullptr)
                                      : nlohmann::json(s.release)},
        {"rpc_counts", counts}};
    if (s.connections.has_value()) {
      nlohmann::json conns = nlohmann::json::array();
      for (const auto& [name, proto] : ParseConnections(*s.connections)) {
        conns.push_back({{"client", name}, {"protocol", proto}});
      }
      entry["connections"] = std::move(conns);
    } else {
      entry["connections"] = nullptr;
    }
    if (!s.runtime.empty()) entry["runtime"] = s.runtime;
    if (s.role == "dlm") {
      entry["sessions"] =
          s.sessions ? nlohmann::json(*s.sessions) : nlohmann::json(nullptr);
      entry["locks"] =
          s.locks ? nlohmann::json(*s.locks) : nlohmann::json(nullptr);
    }
    arr.push_back(std::move(entry));
  }
  return arr.dump(2) + "\n";
}

namespace {

// Loads the config of an existing home and finds target in it.
absl::StatusOr<ClusterConfig> LoadForTarget(const std::string& home_arg,
                                            const std::string& target,
                                            std::string* home) {
  absl::StatusOr<std::string> abs = AbsHome(home_arg, /*create=*/false);
  if (!abs.ok()) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", home_arg,
                                      " (run 'stripefs cluster up' first)"));
  }
  *home = *abs;
  absl::StatusOr<ClusterConfig> config =
      LoadConfig(HomePaths(*abs).ConfigFile());
  if (!config.ok()) {
    if (ToErrno(config.status()) == ENOENT) {
      return Errno(ENOENT, absl::StrCat("no cluster in ", *abs,
                                        " (run 'stripefs cluster up' first)"));
    }
    return config.status();
  }
  if (config->Find(target) == nullptr) {
    std::vector<std::string> names;
    for (const auto& s : config->servers) names.push_back(s.target);
    return Errno(ENOENT, absl::StrCat("no server '", target, "' in ", *abs,
                                      " (servers: ", absl::StrJoin(names, ", "),
                                      ")"));
  }
  return config;
}

}  // namespace

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

absl::StatusOr<std::vector<std::string>> UpgradeOrder(
    const ClusterConfig& config, const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  if (targets.empty()) {
    if (config.Mds() != nullptr) out.push_back(config.Mds()->target);
    for (const ServerConfig* s : config.Osses()) out.push_back(s->target);
    if (config.Dlm() != nullptr) out.push_back(config.Dlm()->target);
    return out;
  }
  std::set<std::string> seen;
  for (const std::string& t : targets) {
    if (config.Find(t) == nullptr) {
      std::vector<std::string> names;
      for (const auto& s : config.servers) names.push_back(s.target);
      return Errno(ENOENT, absl::StrCat("no server '", t, "' (servers: ",
                                        absl::StrJoin(names, ", "), ")"));
    }
    if (!seen.insert(t).second) {
      return Errno(EINVAL, absl::StrCat("target ", t, " named twice"));
    }
    out.push_back(t);
  }
  return out;
}

namespace {
bool LooksLikeRelease(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return false;
  for (const auto& p : parts) {
    if (p.empty()) return false;
    for (char c : p) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  return true;
}
}  // namespace

std::optional<std::string> ParseReleaseOutput(const std::string& output) {
  std::vector<std::string> tokens =
      absl::StrSplit(output, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty());
  for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) {
    std::string t = *it;
    if (absl::StartsWith(t, "v")) t = t.substr(1);
    if (LooksLikeRelease(t)) return t;
  }
  return std::nullopt;
}

std::optional<std::string> ImageRelease(const std::string& image) {
  const size_t colon = image.rfind(':');
  if (colon == std::string::npos || image.find('/', colon) != std::string::npos)
    return std::nullopt;
  std::string tag = image.substr(colon + 1);
  if (tag.empty()) return std::nullopt;
  return tag;
}

std::vector<std::pair<std::string, std::string>> ParseConnections(
    const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view item :
       absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::string it(absl::StripAsciiWhitespace(item));
    const size_t eq = it.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == it.size()) {
      out.push_back({it, "?"});
    } else {
      out.push_back({it.substr(0, eq), it.substr(eq + 1)});
    }
  }
  return out;
}

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

absl::StatusOr<std::string> BinaryRelease(const std::string& bin_dir,
                                          const std::string& role) {
  for (const std::string& exe :
       {absl::StrCat(bin_dir, "/", BinaryFor(role)),
        absl::StrCat(bin_dir, "/stripefs")}) {
    if (::access(exe.c_str(), X_OK) != 0) continue;
    absl::StatusOr<CommandResult> r =
        RunCommand({exe, "--version"}, absl::Seconds(10));
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) continue;
    if (std::optional<std::string> rel = ParseReleaseOutput(r->output)) {
      return *rel;
    }
  }
  return Errno(ENOENT, absl::StrCat("cannot tell the release of ", bin_dir,
                                    ": neither ", BinaryFor(role),
                                    " --version nor stripefs --version "
                                    "there prints one"));
}

absl::Status Upgrade(const UpgradeOptions& o) {
  std::string home;
  absl::StatusOr<std::string> abs = AbsHome(o.home, /*create=*/false);
  if (!abs.ok()) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", o.home));
  }
  home = *abs;
  HomePaths paths(home);
  absl::StatusOr<ClusterConfig> config = LoadConfig(paths.ConfigFile());
  if (!config.ok()) return config.status();
  absl::StatusOr<std::vector<std::string>> order =
      UpgradeOrder(*config, o.targets);
  if (!order.ok()) return order.status();
  std::string bin_dir;
  if (!o.bin_dir.empty()) {
    absl::StatusOr<std::string> dir = RealPath(o.bin_dir);
    if (!dir.ok()) {
      return Errno(ENOENT, absl::StrCat("binary dir ", o.bin_dir,
                                        " does not exist"));
    }
    bin_dir = *dir;
  }
  const absl::Time all_start = absl::Now();
  const size_t n = order->size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& target = (*order)[i];
    const ServerConfig& s = *config->Find(target);
    const std::string step = absl::StrFormat("[%d/%d] %-6s", i + 1, n, target);
    // What to start and which release it must report.
    std::string image;
    std::string expect;
    if (InPodman(s)) {
      if (!o.image.empty()) {
        image = o.image;
      } else {
        if (bin_dir.empty()) {
          return Errno(EINVAL, absl::StrCat(target,
                                            " runs in podman: give --image "
                                            "or --binary-dir"));
        }
        absl::StatusOr<std::string> rel = BinaryRelease(bin_dir, s.role);
        if (!rel.ok()) return rel.status();
        image = absl::StrCat("stripefs:", *rel);
      }
      std::optional<std::string> rel = ImageRelease(image);
      if (!rel.has_value()) {
        return Errno(EINVAL, absl::StrCat("image ", image,
                                          " has no release tag"));
      }
      expect = *rel;
    } else {
      if (bin_dir.empty()) {
        return Errno(EINVAL, absl::StrCat(target, " is a plain process: give "
                                                  "--binary-dir"));
      }
      absl::StatusOr<std::string> rel = BinaryRelease(bin_dir, s.role);
      if (!rel.ok()) return rel.status();
      expect = *rel;
    }
    std::string from = "?";
    if (absl::StatusOr<ServerStatus> st =
            QueryStatus(s.role, s.address, kPatientStatusDeadline);
        st.ok()) {
      from = st->release;
    } else if (ServerPid(paths, s, /*ask=*/false) <= 0) {
      from = "stopped";
    }
    Say(absl::StrFormat("%s %s -> %s: controlled stop ...", step, from,
                        expect));
    const absl::Time t0 = absl::Now();
    if (absl::Status st = ServerStopControlled(home, target, o.stop_timeout);
        !st.ok()) {
      Say(absl::StrFormat("%s FAILED to stop after %s", step,
                          absl::FormatDuration(absl::Trunc(
                              absl::Now() - t0, absl::Milliseconds(1)))));
      return st;
    }
    const absl::Time t1 = absl::Now();
    Say(absl::StrFormat("%s stopped in %s; starting %s ...", step,
                        absl::FormatDuration(absl::Trunc(t1 - t0,
                                             absl::Milliseconds(1))),
                        InPodman(s) ? absl::StrCat("image ", image)
                                    : absl::StrCat("from ", bin_dir)));
    StartOptions so;
    if (InPodman(s)) {
      so.image = image;
      if (!bin_dir.empty()) so.bin_dir = bin_dir;
    } else {
      so.bin_dir = bin_dir;
    }
    so.default_bin_dir = bin_dir;
    so.expect_release = expect;
    so.start_timeout = o.start_timeout;
    if (absl::Status st = ServerStart(home, target, so); !st.ok()) {
      Say(absl::StrFormat("%s FAILED to start after %s", step,
                          absl::FormatDuration(absl::Trunc(
                              absl::Now() - t1, absl::Milliseconds(1)))));
      return st;
    }
    const absl::Time t2 = absl::Now();
    Say(absl::StrFormat(
        "%s done: release %s, stop %s + start %s = %s", step, expect,
        absl::FormatDuration(absl::Trunc(t1 - t0, absl::Milliseconds(1))),
        absl::FormatDuration(absl::Trunc(t2 - t1, absl::Milliseconds(1))),
        absl::FormatDuration(absl::Trunc(t2 - t0, absl::Milliseconds(1)))));
  }
  Say(absl::StrFormat("upgraded %d server(s) in %s", n,
                      absl::FormatDuration(absl::Trunc(
                          absl::Now() - all_start, absl::Milliseconds(1)))));
  return absl::OkStatus();
}

absl::Status Mount(const std::string& home_arg, const std::string& mountpoint,
                   const std::string& bin_dir, bool clean_stale) {
  absl::StatusOr<std::string> home = AbsHome(home_arg, /*create=*/false);
  if (!home.ok()) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", home_arg,
                                      " (run 'stripefs cluster up' first)"));
  }
  HomePaths paths(*home);
  absl::StatusOr<ClusterConfig> config = LoadConfig(paths.ConfigFile());
  if (!config.ok()) return config.status();
  const ServerConfig& mds = *config->Mds();
  if (absl::Status s = MakeDirs(paths.LogDir()); !s.ok()) return s;
  if (absl::Status s = MakeDirs(paths.RunDir()); !s.ok()) return s;
  absl::StatusOr<MountpointCheck> check =
      CheckMountpoint(paths, mds, mountpoint, clean_stale);
  if (!check.ok()) return check.status();
  const std::string* mnt = &check->path;

  absl::StatusOr<std::vector<MountRecord>> mounts =
      LoadMounts(paths.MountsFile());
  if (!mounts.ok()) return mounts.status();
  if (check->mounted_pid > 0) {
    Say(absl::StrCat(*mnt, " is already mounted (pid ", check->mounted_pid,
                     ")"));
    const MountRecord record{*mnt, check->mounted_pid};
    if (std::find(mounts->begin(), mounts->end(), record) != mounts->end()) {
      return absl::OkStatus();
    }
    // A daemon of this cluster the record does not name: record it.
    std::vector<MountRecord> updated;
    for (const auto& m : *mounts) {
      if (m.mountpoint != *mnt) updated.push_back(m);
    }
    updated.push_back(record);
    return SaveMounts(paths.MountsFile(), updated);
  }
  if (absl::StatusOr<ServerStatus> st =
          QueryStatus("mds", mds.address, kPatientStatusDeadline,
                      /*wait_for_ready=*/true);
      !st.ok()) {
    return Errno(
        ENOTCONN,
        absl::StrCat("the MDS at ", mds.address, " does not answer (",
                     st.status().message(),
                     "); run 'stripefs cluster up --home ", *home, "'"));
  }
  const std::string exe = absl::StrCat(bin_dir, "/", kMountBinary);
  if (::access(exe.c_str(), X_OK) != 0) {
    return Errno(ENOENT, absl::StrCat(exe,
                                      " not found or not executable "
                                      "(build it, or pass --bin-dir)"));
  }
  std::string log_name = *mnt;
  for (char& c : log_name) {
    if (c == '/') c = '_';
  }
  const std::string log =
      absl::StrCat(paths.LogDir(), "/mount-", log_name, ".log");
  absl::StatusOr<CommandResult> r =
      RunCommand({exe, "--mds", mds.address, *mnt}, kMountTimeout, log);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0 || !IsMounted(*mnt)) {
    std::string msg = absl::StrCat("stripefs-mount failed for ", *mnt,
                                   " (exit code ", r->exit_code, ")");
    const std::string tail = TailFile(log, kLogTailLines);
    if (!tail.empty())
      absl::StrAppend(&msg, "; last lines of ", log, ":\n", tail);
    return Errno(EIO, msg);
  }
  pid_t pid = 0;
  for (int i = 0; i < 20 && pid == 0; ++i) {
    pid = FindMountDaemon(*mnt);
    if (pid == 0) absl::SleepFor(absl::Milliseconds(50));
  }
  if (pid == 0) {
    std::fprintf(stderr,
                 "stripefs: warning: cannot find the stripefs-mount daemon "
                 "for %s\n",
                 mnt->c_str());
  }
  std::vector<MountRecord> updated;
  for (const auto& m : *mounts) {
    if (m.mountpoint != *mnt) updated.push_back(m);
  }
  updated.push_back({*mnt, pid});
  if (absl::Status s = SaveMounts(paths.MountsFile(), updated); !s.ok())
    return s;
  Say(absl::StrCat("mounted ", mds.address, " at ", *mnt, " (pid ", pid, ")"));
  return absl::OkStatus();
}

absl::Status Umount(const std::string& home_arg,
                    const std::string& mountpoint) {
  absl::StatusOr<std::string> home = AbsHome(home_arg, /*create=*/false);
  if (!home.ok()) return home.status();
  HomePaths paths(*home);
  absl::StatusOr<std::string> real = RealPath(mountpoint);
  // realpath(3) fails on a mount whose daemon died (ENOTCONN): the
  // absolute path as given names it then.
  std::string mnt = real.ok() ? *real : AbsolutePath(mountpoint);
  absl::StatusOr<std::vector<MountRecord>> mounts =
      LoadMounts(paths.MountsFile());
  if (!mounts.ok()) return mounts.status();
  pid_t pid = 0;
  std::vector<MountRecord> rest;
  for (const auto& m : *mounts) {
    if (m.mountpoint == mnt) {
      pid = static_cast<pid_t>(m.pid);
    } else {
      rest.push_back(m);
    }
  }
  if (pid == 0 && !IsMounted(mnt)) {
    return Errno(EINVAL, absl::StrCat(mnt, " is not mounted"));
  }
  // Never stat(2) the mountpoint here: a hung daemon would hang us too.
  const std::vector<std::string> ours = StripefsMounts();
  if (std::find(ours.begin(), ours.end(), mnt) != ours.end() &&
      !(pid > 0 && IsMountDaemonOf(pid, mnt)) && FindMountDaemon(mnt) == 0) {
    Say(absl::StrCat(mnt,
                     ": its mount daemon is gone (killed?), so it answers "
                     "\"transport endpoint is not connected\"; unmounting "
                     "it"));
  }
  if (absl::Status s = UnmountAndWait(mnt, pid); !s.ok()) return s;
  return SaveMounts(paths.MountsFile(), rest);
}

}  // namespace stripefs::cli
