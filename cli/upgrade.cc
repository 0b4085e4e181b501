// upgrade (a rolling restart onto new binaries or a new image) and the
// release helpers it uses (cli/cluster.h).
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <set>
#include <string>
#include <vector>

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

namespace stripefs::cli {

using internal::AbsHome;
using internal::BinaryFor;
using internal::InPodman;
using internal::kPatientStatusDeadline;
using internal::Say;
using internal::ServerPid;

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

}  // namespace stripefs::cli
