#include "cli/target_cmds.h"

#include <sys/types.h>

#include <cerrno>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "cli/admin_rpc.h"
#include "cli/cluster_internal.h"
#include "cli/config.h"
#include "cli/proc.h"
#include "common/errors.h"

namespace stripefs::cli {
namespace {

using internal::GroupStart;
using internal::LoadHome;
using internal::Say;

constexpr absl::Duration kAdminDeadline = absl::Seconds(60);

absl::StatusOr<uint32_t> ParseTarget(const ClusterConfig& config,
                                     const std::string& target) {
  absl::string_view digits = target;
  absl::ConsumePrefix(&digits, "ost");
  uint32_t index = 0;
  if (!absl::SimpleAtoi(digits, &index)) {
    return Errno(EINVAL, absl::StrCat("'", target, "' is not an OST (want "
                                      "ostN or N)"));
  }
  if (config.Find(absl::StrCat("ost", index)) == nullptr) {
    return Errno(ENOENT, absl::StrCat("the cluster has no ost", index));
  }
  return index;
}

// A cluster home with an MDS, and the target a command names (when it
// names one).
struct Home {
  std::string dir;
  ClusterConfig config;
  std::string mds;  // its address
  uint32_t index = 0;
};

absl::StatusOr<Home> OpenHome(const std::string& home_arg,
                              const std::string* target) {
  Home h;
  absl::StatusOr<ClusterConfig> config = LoadHome(home_arg, &h.dir);
  if (!config.ok()) return config.status();
  h.config = std::move(*config);
  const ServerConfig* mds = h.config.Mds();
  if (mds == nullptr) return Errno(ENOENT, "the cluster has no MDS");
  h.mds = mds->address;
  if (target != nullptr) {
    absl::StatusOr<uint32_t> index = ParseTarget(h.config, *target);
    if (!index.ok()) return index.status();
    h.index = *index;
  }
  return h;
}

}  // namespace

absl::Status TargetAdd(const std::string& home_arg,
                       const TargetAddOptions& o) {
  absl::StatusOr<Home> h = OpenHome(home_arg, nullptr);
  if (!h.ok()) return h.status();
  const std::string& home = h->dir;
  const ClusterConfig* config = &h->config;
  uint32_t index = 0;
  std::set<int> ports;
  for (const ServerConfig* s : config->Osses()) {
    uint32_t i = 0;
    if (absl::SimpleAtoi(absl::StripPrefix(s->target, "ost"), &i)) {
      index = std::max(index, i + 1);
    }
  }
  std::string address = o.address;
  if (address.empty()) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    address = absl::StrCat("127.0.0.1:", *port);
  }
  for (const ServerConfig& s : config->servers) {
    if (s.address == address) {
      return Errno(EADDRINUSE, absl::StrCat(address, " is ", s.target, "'s"));
    }
  }
  const std::string target = absl::StrCat("ost", index);
  ClusterConfig next = *config;
  ServerConfig entry{.target = target,
                     .role = "oss",
                     .address = address,
                     .data = absl::StrCat(home, "/", target)};
  // OSS entries stay in index order, before the DLM's.
  auto at = next.servers.begin();
  for (auto it = next.servers.begin(); it != next.servers.end(); ++it) {
    if (it->role == "oss" || it->role == "mds") at = it + 1;
  }
  next.servers.insert(at, entry);
  HomePaths paths(home);
  GroupStart g;
  g.bin_dir = o.bin_dir;
  g.default_bin_dir = o.default_bin_dir;
  g.timeout = o.start_timeout;
  if (const ServerConfig* dlm = next.Dlm(); dlm != nullptr) {
    g.dlm_address = dlm->address;
  }
  Say(absl::StrFormat("%-6s starting at %s", target, address));
  if (absl::Status s = internal::StartGroup({target}, &next, paths, g);
      !s.ok()) {
    return s;
  }
  absl::Status added = ChangeTarget(h->mds, TargetOp::kAdd, index,
                                    address, false, kAdminDeadline);
  if (!added.ok()) {
    if (const pid_t pid =
            internal::ServerPid(paths, *next.Find(target), /*ask=*/true);
        pid > 0) {
      internal::StopPids({{target, pid}}, absl::Seconds(15));
    }
    return absl::Status(added.code(), absl::StrCat("the MDS did not add ",
                                                   target, ": ",
                                                   added.message()));
  }
  if (absl::Status s = SaveConfig(paths.ConfigFile(), next); !s.ok()) {
    return s;
  }
  Say(absl::StrFormat("%-6s added at %s: new files may use it", target,
                      address));
  return absl::OkStatus();
}

absl::Status TargetSetActive(const std::string& home_arg,
                             const std::string& target, bool active,
                             bool fail_io) {
  absl::StatusOr<Home> h = OpenHome(home_arg, &target);
  if (!h.ok()) return h.status();
  absl::Status s = ChangeTarget(
      h->mds, active ? TargetOp::kActivate : TargetOp::kDeactivate, h->index,
      "", fail_io, kAdminDeadline);
  if (!s.ok()) return s;
  Say(absl::StrFormat("ost%-3d %s", h->index,
                      active    ? "active"
                      : fail_io ? "inactive: no new objects, I/O fails"
                                : "inactive: no new objects"));
  return absl::OkStatus();
}

absl::Status TargetRemove(const std::string& home_arg,
                          const std::string& target, bool force) {
  absl::StatusOr<Home> h = OpenHome(home_arg, &target);
  if (!h.ok()) return h.status();
  absl::Status s = ChangeTarget(h->mds, TargetOp::kRemove, h->index, "",
                                force, kAdminDeadline);
  if (!s.ok()) return s;
  const std::string name = absl::StrCat("ost", h->index);
  HomePaths paths(h->dir);
  const ServerConfig entry = *h->config.Find(name);
  if (const pid_t pid = internal::ServerPid(paths, entry, /*ask=*/true);
      pid > 0) {
    internal::StopPids({{name, pid}}, absl::Seconds(15));
  }
  ClusterConfig next = h->config;
  std::erase_if(next.servers,
                [&name](const ServerConfig& c) { return c.target == name; });
  if (absl::Status saved = SaveConfig(paths.ConfigFile(), next); !saved.ok()) {
    return saved;
  }
  Say(absl::StrFormat("%-6s removed and stopped (its data stays in %s)", name,
                      entry.data));
  return absl::OkStatus();
}

absl::Status TargetList(const std::string& home_arg) {
  absl::StatusOr<Home> h = OpenHome(home_arg, nullptr);
  if (!h.ok()) return h.status();
  absl::StatusOr<std::vector<TargetInfo>> targets =
      QueryTargets(h->mds, internal::kPatientStatusDeadline);
  if (!targets.ok()) return targets.status();
  for (const TargetInfo& t : *targets) {
    Say(absl::StrFormat("ost%-3d %-22s %s", t.index, t.address,
                        t.StateText()));
  }
  return absl::OkStatus();
}

}  // namespace stripefs::cli
