// cluster up / down / status (the rest of cli/cluster.h: server_cmds.cc,
// upgrade.cc, mount_cmds.cc; shared helpers: cluster_common.cc).
#include "cli/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "cli/admin_rpc.h"
#include "cli/cluster_binaries.h"
#include "cli/cluster_internal.h"
#include "cli/config.h"
#include "cli/proc.h"
#include "cli/server_status.h"
#include "common/errors.h"
#include "common/size.h"
#include "nlohmann/json.hpp"

namespace stripefs::cli {

using internal::AbsHome;
using internal::LoadHome;
using internal::BinaryFor;
using internal::CheckMountpoint;
using internal::GroupStart;
using internal::InPodman;
using internal::kPatientStatusDeadline;
using internal::kStatusDeadline;
using internal::MountpointCheck;
using internal::Say;
using internal::ServerPid;
using internal::StartGroup;
using internal::StopPids;
using internal::UnmountAndWait;

namespace {

constexpr int kMaxOss = 256;

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
  std::string home;
  absl::StatusOr<ClusterConfig> config = LoadHome(home_arg, &home);
  if (!config.ok()) return config.status();
  HomePaths paths(home);
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
  // The administrator's state of each OST, from the MDS's registry.
  if (!out.empty() && out[0].role == "mds" && out[0].pid > 0) {
    absl::StatusOr<std::vector<TargetInfo>> targets =
        QueryTargets(out[0].address, kPatientStatusDeadline);
    for (ServerState& st : out) {
      if (!targets.ok() || st.role != "oss") continue;
      for (const TargetInfo& t : *targets) {
        if (st.target == absl::StrCat("ost", t.index)) {
          st.target_state = t.StateText();
        }
      }
    }
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
    if (!s.target_state.empty()) {
      absl::StrAppend(&out, " target=",
                      absl::StrReplaceAll(s.target_state, {{", ", ","},
                                                           {" ", "-"}}));
    }
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
    if (!s.target_state.empty()) entry["target_state"] = s.target_state;
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

}  // namespace stripefs::cli
