// stripefs: the command-line tool (cluster lifecycle, mounts, layouts, df).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/cluster.h"
#include "cli/config.h"
#include "cli/layout.h"
#include "cli/proc.h"
#include "cli/size.h"
#include "cli/stripe.h"
#include "common/version.h"

namespace {

using stripefs::cli::ParseSize;

int Fail(const absl::Status& s) {
  if (!s.message().empty()) {
    std::fprintf(stderr, "stripefs: %s\n", std::string(s.message()).c_str());
  }
  return 1;
}

int Done(const absl::Status& s) { return s.ok() ? 0 : Fail(s); }

// Resolves --bin-dir: the flag, else the directory of this executable.
absl::StatusOr<std::string> BinDir(const std::string& flag) {
  if (!flag.empty()) return flag;
  return stripefs::cli::SelfDir();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stripefs: manage a stripefs cluster, its mounts and file layouts"};
  app.set_version_flag("--version", std::string(stripefs::kRelease));
  app.require_subcommand(1);
  const std::string default_home = stripefs::cli::DefaultHome();

  // cluster up|down|status
  CLI::App* cluster =
      app.add_subcommand("cluster", "start, stop or inspect a cluster");
  cluster->require_subcommand(1);
  std::string home = default_home;
  CLI::App* up =
      cluster->add_subcommand("up", "start every server (and mount)");
  up->add_option("--home", home,
                 "cluster home (default $STRIPEFS_HOME or ~/.stripefs)");
  std::optional<int> oss_count;
  up->add_option("--oss", oss_count, "number of OSS servers (default 4)");
  std::optional<std::string> up_mount;
  up->add_option("--mount", up_mount, "also mount the cluster here");
  std::optional<int64_t> up_count;
  up->add_option("--stripe-count", up_count,
                 "root default stripe count (default 1)");
  std::string up_size;
  up->add_option("--stripe-size", up_size,
                 "root default stripe size, K/M/G suffixes (default 1M)");
  std::string bin_dir;
  up->add_option(
      "--bin-dir", bin_dir,
      "directory holding stripefs-mds/-oss/-dlm/-mount (default: beside "
      "stripefs)");
  std::string image;
  up->add_option("--image", image,
                 "run every server in podman from this image (e.g. "
                 "stripefs:1.1.0; see deploy/)");
  bool no_dlm = false;
  up->add_flag("--no-dlm", no_dlm,
               "do not start the lock service; the MDS and mounts run "
               "without it");

  CLI::App* down =
      cluster->add_subcommand("down", "unmount and stop every server");
  down->add_option("--home", home, "cluster home");

  CLI::App* status = cluster->add_subcommand("status", "one line per server");
  status->add_option("--home", home, "cluster home");
  bool json = false;
  status->add_flag("--json", json, "print a JSON array");

  // server start|stop TARGET
  CLI::App* server =
      app.add_subcommand("server", "start or stop one server of a cluster");
  server->require_subcommand(1);
  std::string server_target;
  CLI::App* server_start = server->add_subcommand(
      "start", "start one server as 'cluster up' would and wait for it");
  server_start->add_option("--home", home, "cluster home");
  server_start->add_option(
      "--binary-dir,--bin-dir", bin_dir,
      "start the server binary from this directory and record it in "
      "cluster.json (default: the recorded one, else beside stripefs)");
  server_start->add_option("--image", image,
                           "run the server in podman from this image "
                           "(recorded in cluster.json)");
  bool force = false;
  server_start->add_flag("--force", force,
                         "start even if the server's startup check refuses "
                         "(evicts the old clients)");
  server_start->add_option("TARGET", server_target, "mdt0, ostN or dlm")
      ->required();
  CLI::App* server_stop = server->add_subcommand(
      "stop",
      "stop one server (SIGTERM; --controlled: SIGUSR2) and wait for it to "
      "exit");
  server_stop->add_option("--home", home, "cluster home");
  bool controlled = false;
  server_stop->add_flag(
      "--controlled", controlled,
      "controlled stop (SIGUSR2): clients pause and keep their open files "
      "until the server is back");
  double stop_timeout = 60;
  server_stop->add_option("--timeout", stop_timeout,
                          "seconds to wait for a controlled stop (60)")
      ->check(CLI::PositiveNumber);
  server_stop->add_option("TARGET", server_target, "mdt0, ostN or dlm")
      ->required();

  // server failover [--force] TARGET
  CLI::App* server_failover = server->add_subcommand(
      "failover",
      "stop one server and start its replacement (as recorded), waiting "
      "until it serves. --force: forced failover (SIGUSR1): the server stops "
      "replying at once, turns its store read-only and exits without a "
      "clean stop; the replacement recovers. Without --force: controlled "
      "stop (SIGUSR2)");
  server_failover->add_option("--home", home, "cluster home");
  bool failover_force = false;
  server_failover->add_flag("--force", failover_force,
                            "forced failover (SIGUSR1; MDS and OSS only)");
  server_failover->add_option("--timeout", stop_timeout,
                              "seconds to wait for the server to exit (60)")
      ->check(CLI::PositiveNumber);
  server_failover->add_option("TARGET", server_target, "mdt0, ostN or dlm")
      ->required();

  // upgrade
  CLI::App* upgrade = app.add_subcommand(
      "upgrade",
      "roll servers one at a time to the binaries of --binary-dir (or to "
      "--image for servers in podman): controlled stop, start, wait healthy");
  upgrade->add_option("--home", home, "cluster home");
  std::string upgrade_dir;
  upgrade->add_option("--binary-dir,--bin-dir", upgrade_dir,
                      "directory holding the new release's stripefs-* "
                      "binaries");
  upgrade->add_option("--image", image,
                      "image for servers in podman (default "
                      "stripefs:<release of --binary-dir>)");
  std::vector<std::string> upgrade_targets;
  upgrade->add_option("--targets", upgrade_targets,
                      "servers to roll, in this order (default: mdt0, the "
                      "OSSs, then the DLM)");
  upgrade->add_option("--timeout", stop_timeout,
                      "seconds to wait for each controlled stop (60)")
      ->check(CLI::PositiveNumber);

  // mount / umount
  std::string mountpoint;
  CLI::App* mount = app.add_subcommand("mount", "mount the cluster at MNT");
  mount->add_option("--home", home, "cluster home");
  mount->add_option("--bin-dir", bin_dir, "directory holding stripefs-mount");
  mount->add_option("MNT", mountpoint, "mountpoint")->required();
  CLI::App* umount =
      app.add_subcommand("umount", "unmount a mount made by 'mount'");
  umount->add_option("--home", home, "cluster home");
  umount->add_option("MNT", mountpoint, "mountpoint")->required();

  // setstripe / getstripe
  CLI::App* setstripe = app.add_subcommand(
      "setstripe", "set the layout of a new/empty file or a directory");
  std::optional<int64_t> ss_count, ss_index;
  std::string ss_size;
  std::string path;
  setstripe->add_option("-c,--stripe-count", ss_count,
                        "number of stripes (-1: all OSTs, 0: default)");
  setstripe->add_option("-S,--stripe-size", ss_size,
                        "stripe size, multiple of 64K, K/M/G suffixes");
  setstripe->add_option("-i,--stripe-index", ss_index,
                        "OST index of the first stripe (-1: any)");
  setstripe->add_option("PATH", path, "file or directory on a stripefs mount")
      ->required();
  CLI::App* getstripe =
      app.add_subcommand("getstripe", "show the layout of PATH");
  getstripe->add_option("PATH", path, "file or directory on a stripefs mount")
      ->required();

  // df
  CLI::App* df =
      app.add_subcommand("df", "space per target of stripefs mounts");
  std::vector<std::string> df_mounts;
  bool human = false;
  df->add_flag("-H,--human-readable", human, "sizes in K/M/G");
  df->add_option("MNT", df_mounts,
                 "mountpoints (default: every stripefs mount)");

  CLI11_PARSE(app, argc, argv);

  if (*up) {
    stripefs::cli::UpOptions o;
    o.home = home;
    o.oss_count = oss_count;
    o.mountpoint = up_mount;
    o.stripe_count = up_count;
    if (!up_size.empty()) {
      absl::StatusOr<uint64_t> size = ParseSize(up_size);
      if (!size.ok()) return Fail(size.status());
      o.stripe_size = *size;
    }
    absl::StatusOr<std::string> dir = BinDir(bin_dir);
    if (!dir.ok()) return Fail(dir.status());
    o.bin_dir = *dir;
    o.bin_dir_explicit = !bin_dir.empty();
    o.image = image;
    o.no_dlm = no_dlm;
    return Done(stripefs::cli::ClusterUp(o));
  }
  if (*down) return Done(stripefs::cli::ClusterDown(home));
  if (*status) {
    auto states = stripefs::cli::ClusterStatus(home);
    if (!states.ok()) return Fail(states.status());
    const std::string out = json ? stripefs::cli::FormatStatusJson(*states)
                                 : stripefs::cli::FormatStatusText(*states);
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  if (*server_start) {
    absl::StatusOr<std::string> self = stripefs::cli::SelfDir();
    if (!self.ok()) return Fail(self.status());
    stripefs::cli::StartOptions so;
    so.bin_dir = bin_dir;
    so.default_bin_dir = *self;
    so.image = image;
    so.force = force;
    absl::Status s = stripefs::cli::ServerStart(home, server_target, so);
    if (s.ok()) return 0;
    Fail(s);
    // The server's own startup check refused: its documented exit code.
    return absl::IsFailedPrecondition(s) ? 3 : 1;
  }
  if (*server_stop) {
    if (controlled) {
      return Done(stripefs::cli::ServerStopControlled(
          home, server_target, absl::Seconds(stop_timeout)));
    }
    return Done(stripefs::cli::ServerStop(home, server_target));
  }
  if (*server_failover) {
    absl::StatusOr<std::string> self = stripefs::cli::SelfDir();
    if (!self.ok()) return Fail(self.status());
    stripefs::cli::FailoverOptions fo;
    fo.force = failover_force;
    fo.stop_timeout = absl::Seconds(stop_timeout);
    fo.start.default_bin_dir = *self;
    absl::Status s = stripefs::cli::ServerFailover(home, server_target, fo);
    if (s.ok()) return 0;
    Fail(s);
    // The replacement's own startup check refused: its documented exit code.
    return absl::IsFailedPrecondition(s) ? 3 : 1;
  }
  if (*upgrade) {
    if (upgrade_dir.empty() && image.empty()) {
      return Fail(absl::InvalidArgumentError(
          "upgrade needs --binary-dir (and/or --image for podman servers)"));
    }
    stripefs::cli::UpgradeOptions uo;
    uo.home = home;
    uo.bin_dir = upgrade_dir;
    uo.image = image;
    uo.targets = upgrade_targets;
    uo.stop_timeout = absl::Seconds(stop_timeout);
    return Done(stripefs::cli::Upgrade(uo));
  }
  if (*mount) {
    absl::StatusOr<std::string> dir = BinDir(bin_dir);
    if (!dir.ok()) return Fail(dir.status());
    return Done(stripefs::cli::Mount(home, mountpoint, *dir));
  }
  if (*umount) return Done(stripefs::cli::Umount(home, mountpoint));
  if (*setstripe) {
    stripefs::cli::LayoutRequest req;
    req.stripe_count = ss_count;
    req.stripe_offset = ss_index;
    if (!ss_size.empty()) {
      absl::StatusOr<uint64_t> size = ParseSize(ss_size);
      if (!size.ok()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat("invalid layout: ", size.status().message())));
      }
      req.stripe_size = *size;
    }
    return Done(stripefs::cli::SetStripe(path, req));
  }
  if (*getstripe) return Done(stripefs::cli::GetStripe(path));
  if (*df) return Done(stripefs::cli::Df(df_mounts, human));
  return 1;
}
