#include "cli/cluster.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
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

std::string BinaryFor(const std::string& role) {
  if (role == "mds") return "stripefs-mds";
  if (role == "dlm") return "stripefs-dlm";
  return "stripefs-oss";
}

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

// The pid of the server for `s`, or 0: the pid file if it names a live
// server binary, else the pid the server reports over Status.
pid_t ServerPid(const HomePaths& paths, const ServerConfig& s, bool ask) {
  absl::StatusOr<pid_t> pid = ReadPidFile(paths.PidFile(s.target));
  if (pid.ok() && *pid > 0 && RunsBinary(*pid, BinaryFor(s.role))) return *pid;
  if (!ask) return 0;
  absl::StatusOr<ServerStatus> st =
      QueryStatus(s.role, s.address, kStatusDeadline);
  if (st.ok() && st->pid > 0 &&
      RunsBinary(static_cast<pid_t>(st->pid), BinaryFor(s.role))) {
    return static_cast<pid_t>(st->pid);
  }
  return 0;
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
absl::Status WaitUp(
    const std::vector<std::pair<const ServerConfig*, pid_t>>& servers,
    const HomePaths& paths, absl::Duration timeout) {
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
        up[i] = true;
        --remaining;
        Say(absl::StrFormat("%-6s up at %s (pid %d, release %s)", s.target,
                            s.address, pid, st->release));
        continue;
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

// Starts every server in `group` that is not running and waits for all of
// them. A non-empty dlm_address is passed to the MDS and the OSSs as --dlm.
absl::Status StartGroup(const std::vector<const ServerConfig*>& group,
                        const ClusterConfig& config, const HomePaths& paths,
                        const std::string& bin_dir, absl::Duration timeout,
                        const std::string& dlm_address) {
  std::vector<std::pair<const ServerConfig*, pid_t>> wait;
  for (const ServerConfig* s : group) {
    pid_t pid = ServerPid(paths, *s, /*ask=*/false);
    if (pid > 0) {
      Say(absl::StrFormat("%-6s already running (pid %d)", s->target, pid));
      wait.push_back({s, pid});
      continue;
    }
    if (absl::Status st = MakeDirs(s->data); !st.ok()) return st;
    const std::string exe = absl::StrCat(bin_dir, "/", BinaryFor(s->role));
    if (::access(exe.c_str(), X_OK) != 0) {
      return Errno(ENOENT, absl::StrCat(exe,
                                        " not found or not executable "
                                        "(build it, or pass --bin-dir)"));
    }
    std::vector<std::string> argv = {
        exe, "--target", s->target, "--listen", s->address, "--data", s->data};
    if (s->role == "mds") {
      int index = 0;
      for (const ServerConfig* o : config.Osses()) {
        argv.push_back("--ost");
        argv.push_back(absl::StrCat(index++, "=", o->address));
      }
      argv.push_back("--stripe-count");
      argv.push_back(absl::StrCat(config.stripe_count));
      argv.push_back("--stripe-size");
      argv.push_back(absl::StrCat(config.stripe_size));
      if (!dlm_address.empty()) {
        argv.push_back("--dlm");
        argv.push_back(dlm_address);
      }
    }
    if (s->role == "oss" && !dlm_address.empty()) {
      argv.push_back("--dlm");
      argv.push_back(dlm_address);
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
  return WaitUp(wait, paths, timeout);
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

  // The DLM first: the MDS and every mount connect to it.
  std::string dlm_address;
  if (!o.no_dlm) {
    const ServerConfig* dlm = config.Dlm();
    if (absl::Status s =
            StartGroup({dlm}, config, paths, o.bin_dir, o.start_timeout, "");
        !s.ok()) {
      return s;
    }
    dlm_address = dlm->address;
  }
  if (absl::Status s = StartGroup(config.Osses(), config, paths, o.bin_dir,
                                  o.start_timeout, dlm_address);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = StartGroup({config.Mds()}, config, paths, o.bin_dir,
                                  o.start_timeout, dlm_address);
      !s.ok()) {
    return s;
  }
  if (o.mountpoint) return Mount(*home, *o.mountpoint, o.bin_dir);
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
                         const std::string& bin_dir,
                         absl::Duration start_timeout) {
  std::string home;
  absl::StatusOr<ClusterConfig> config =
      LoadForTarget(home_arg, target, &home);
  if (!config.ok()) return config.status();
  HomePaths paths(home);
  if (absl::Status s = MakeDirs(paths.RunDir()); !s.ok()) return s;
  if (absl::Status s = MakeDirs(paths.LogDir()); !s.ok()) return s;
  const ServerConfig* dlm = config->Dlm();
  return StartGroup({config->Find(target)}, *config, paths, bin_dir,
                    start_timeout, dlm != nullptr ? dlm->address : "");
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

absl::Status Mount(const std::string& home_arg, const std::string& mountpoint,
                   const std::string& bin_dir) {
  absl::StatusOr<std::string> home = AbsHome(home_arg, /*create=*/false);
  if (!home.ok()) {
    return Errno(ENOENT, absl::StrCat("no cluster in ", home_arg,
                                      " (run 'stripefs cluster up' first)"));
  }
  HomePaths paths(*home);
  absl::StatusOr<ClusterConfig> config = LoadConfig(paths.ConfigFile());
  if (!config.ok()) return config.status();
  const ServerConfig& mds = *config->Mds();
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Errno(ENOENT,
                 absl::StrCat("mountpoint ", mountpoint,
                              " is not an existing directory (create it "
                              "first)"));
  }
  absl::StatusOr<std::string> mnt = RealPath(mountpoint);
  if (!mnt.ok()) return mnt.status();
  if (absl::Status s = MakeDirs(paths.LogDir()); !s.ok()) return s;
  if (absl::Status s = MakeDirs(paths.RunDir()); !s.ok()) return s;

  absl::StatusOr<std::vector<MountRecord>> mounts =
      LoadMounts(paths.MountsFile());
  if (!mounts.ok()) return mounts.status();
  if (IsMounted(*mnt)) {
    for (const auto& m : *mounts) {
      if (m.mountpoint == *mnt && ProcessAlive(static_cast<pid_t>(m.pid))) {
        Say(absl::StrCat(*mnt, " is already mounted (pid ", m.pid, ")"));
        return absl::OkStatus();
      }
    }
    return Errno(EBUSY, absl::StrCat(*mnt, " is already a mountpoint"));
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
  const std::string exe = absl::StrCat(bin_dir, "/stripefs-mount");
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
  std::string mnt = real.ok() ? *real : mountpoint;
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
  if (absl::Status s = UnmountAndWait(mnt, pid); !s.ok()) return s;
  return SaveMounts(paths.MountsFile(), rest);
}

}  // namespace stripefs::cli
