// stripefs: the command-line tool (cluster lifecycle, mounts, layouts, df).
//
// One class per command family: its constructor registers the family's
// subcommands and flags on the app; after parsing, Run() runs the chosen
// one and returns its exit code (nullopt: none of this family's commands
// was chosen).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/cluster.h"
#include "cli/config.h"
#include "cli/fsck.h"
#include "cli/proc.h"
#include "cli/stripe.h"
#include "cli/target_cmds.h"
#include "common/size.h"
#include "common/version.h"

namespace {

using stripefs::ParseSize;

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

// cluster up|down|status
class ClusterCommands {
 public:
  ClusterCommands(CLI::App& app, const std::string& default_home)
      : home_(default_home) {
    CLI::App* cluster =
        app.add_subcommand("cluster", "start, stop or inspect a cluster");
    cluster->require_subcommand(1);
    up_ = cluster->add_subcommand("up", "start every server (and mount)");
    up_->add_option("--home", home_,
                    "cluster home (default $STRIPEFS_HOME or ~/.stripefs)");
    up_->add_option("--oss", oss_count_, "number of OSS servers (default 4)");
    up_->add_option("--mount", up_mount_, "also mount the cluster here");
    up_->add_option("--stripe-count", up_count_,
                    "root default stripe count (default 1)");
    up_->add_option("--stripe-size", up_size_,
                    "root default stripe size, K/M/G suffixes (default 1M)");
    up_->add_option(
        "--bin-dir", bin_dir_,
        "directory holding stripefs-mds/-oss/-dlm/-mount (default: beside "
        "stripefs)");
    up_->add_option("--image", image_,
                    "run every server in podman from this image (e.g. "
                    "stripefs:1.1.0; see deploy/)");
    up_->add_flag("--no-dlm", no_dlm_,
                  "do not start the lock service; the MDS and mounts run "
                  "without it");

    down_ = cluster->add_subcommand("down", "unmount and stop every server");
    down_->add_option("--home", home_, "cluster home");

    status_ = cluster->add_subcommand("status", "one line per server");
    status_->add_option("--home", home_, "cluster home");
    status_->add_flag("--json", json_, "print a JSON array");
  }

  std::optional<int> Run() const {
    if (*up_) return Up();
    if (*down_) return Done(stripefs::cli::ClusterDown(home_));
    if (*status_) {
      auto states = stripefs::cli::ClusterStatus(home_);
      if (!states.ok()) return Fail(states.status());
      const std::string out = json_ ? stripefs::cli::FormatStatusJson(*states)
                                    : stripefs::cli::FormatStatusText(*states);
      std::fputs(out.c_str(), stdout);
      return 0;
    }
    return std::nullopt;
  }

 private:
  int Up() const {
    stripefs::cli::UpOptions o;
    o.home = home_;
    o.oss_count = oss_count_;
    o.mountpoint = up_mount_;
    o.stripe_count = up_count_;
    if (!up_size_.empty()) {
      absl::StatusOr<uint64_t> size = ParseSize(up_size_);
      if (!size.ok()) return Fail(size.status());
      o.stripe_size = *size;
    }
    absl::StatusOr<std::string> dir = BinDir(bin_dir_);
    if (!dir.ok()) return Fail(dir.status());
    o.bin_dir = *dir;
    o.bin_dir_explicit = !bin_dir_.empty();
    o.image = image_;
    o.no_dlm = no_dlm_;
    return Done(stripefs::cli::ClusterUp(o));
  }

  std::string home_;
  std::optional<int> oss_count_;
  std::optional<std::string> up_mount_;
  std::optional<int64_t> up_count_;
  std::string up_size_;
  std::string bin_dir_;
  std::string image_;
  bool no_dlm_ = false;
  bool json_ = false;
  CLI::App* up_ = nullptr;
  CLI::App* down_ = nullptr;
  CLI::App* status_ = nullptr;
};

// server start|stop|failover TARGET
class ServerCommands {
 public:
  ServerCommands(CLI::App& app, const std::string& default_home)
      : home_(default_home) {
    CLI::App* server =
        app.add_subcommand("server", "start or stop one server of a cluster");
    server->require_subcommand(1);
    AddStart(server);
    AddStop(server);
    AddFailover(server);
  }

  std::optional<int> Run() const {
    if (*start_) {
      absl::StatusOr<std::string> self = stripefs::cli::SelfDir();
      if (!self.ok()) return Fail(self.status());
      stripefs::cli::StartOptions so;
      so.bin_dir = bin_dir_;
      so.default_bin_dir = *self;
      so.image = image_;
      so.force = force_;
      absl::Status s = stripefs::cli::ServerStart(home_, target_, so);
      if (s.ok()) return 0;
      Fail(s);
      // The server's own startup check refused: its documented exit code.
      return absl::IsFailedPrecondition(s) ? 3 : 1;
    }
    if (*stop_) {
      if (controlled_) {
        return Done(stripefs::cli::ServerStopControlled(
            home_, target_, absl::Seconds(stop_timeout_)));
      }
      return Done(stripefs::cli::ServerStop(home_, target_));
    }
    if (*failover_) {
      absl::StatusOr<std::string> self = stripefs::cli::SelfDir();
      if (!self.ok()) return Fail(self.status());
      stripefs::cli::FailoverOptions fo;
      fo.force = failover_force_;
      fo.stop_timeout = absl::Seconds(stop_timeout_);
      fo.start.default_bin_dir = *self;
      absl::Status s = stripefs::cli::ServerFailover(home_, target_, fo);
      if (s.ok()) return 0;
      Fail(s);
      // The replacement's own startup check refused: its documented exit
      // code.
      return absl::IsFailedPrecondition(s) ? 3 : 1;
    }
    return std::nullopt;
  }

 private:
  void AddStart(CLI::App* server) {
    start_ = server->add_subcommand(
        "start", "start one server as 'cluster up' would and wait for it");
    start_->add_option("--home", home_, "cluster home");
    start_->add_option(
        "--binary-dir,--bin-dir", bin_dir_,
        "start the server binary from this directory and record it in "
        "cluster.json (default: the recorded one, else beside stripefs)");
    start_->add_option("--image", image_,
                       "run the server in podman from this image "
                       "(recorded in cluster.json)");
    start_->add_flag("--force", force_,
                     "start even if the server's startup check refuses "
                     "(evicts the old clients)");
    start_->add_option("TARGET", target_, "mdt0, ostN or dlm")->required();
  }

  void AddStop(CLI::App* server) {
    stop_ = server->add_subcommand(
        "stop",
        "stop one server (SIGTERM; --controlled: SIGUSR2) and wait for it to "
        "exit");
    stop_->add_option("--home", home_, "cluster home");
    stop_->add_flag(
        "--controlled", controlled_,
        "controlled stop (SIGUSR2): clients pause and keep their open files "
        "until the server is back");
    stop_
        ->add_option("--timeout", stop_timeout_,
                     "seconds to wait for a controlled stop (60)")
        ->check(CLI::PositiveNumber);
    stop_->add_option("TARGET", target_, "mdt0, ostN or dlm")->required();
  }

  // server failover [--force] TARGET
  void AddFailover(CLI::App* server) {
    failover_ = server->add_subcommand(
        "failover",
        "stop one server and start its replacement (as recorded), waiting "
        "until it serves. --force: forced failover (SIGUSR1): the server "
        "stops replying at once, turns its store read-only and exits without "
        "a clean stop; the replacement recovers. Without --force: controlled "
        "stop (SIGUSR2)");
    failover_->add_option("--home", home_, "cluster home");
    failover_->add_flag("--force", failover_force_,
                        "forced failover (SIGUSR1; MDS and OSS only)");
    failover_
        ->add_option("--timeout", stop_timeout_,
                     "seconds to wait for the server to exit (60)")
        ->check(CLI::PositiveNumber);
    failover_->add_option("TARGET", target_, "mdt0, ostN or dlm")->required();
  }

  std::string home_;
  std::string target_;
  std::string bin_dir_;
  std::string image_;
  bool force_ = false;
  bool controlled_ = false;
  bool failover_force_ = false;
  double stop_timeout_ = 60;
  CLI::App* start_ = nullptr;
  CLI::App* stop_ = nullptr;
  CLI::App* failover_ = nullptr;
};

// upgrade
class UpgradeCommand {
 public:
  UpgradeCommand(CLI::App& app, const std::string& default_home)
      : home_(default_home) {
    upgrade_ = app.add_subcommand(
        "upgrade",
        "roll servers one at a time to the binaries of --binary-dir (or to "
        "--image for servers in podman): controlled stop, start, wait "
        "healthy");
    upgrade_->add_option("--home", home_, "cluster home");
    upgrade_->add_option("--binary-dir,--bin-dir", dir_,
                         "directory holding the new release's stripefs-* "
                         "binaries");
    upgrade_->add_option("--image", image_,
                         "image for servers in podman (default "
                         "stripefs:<release of --binary-dir>)");
    upgrade_->add_option("--targets", targets_,
                         "servers to roll, in this order (default: mdt0, the "
                         "OSSs, then the DLM)");
    upgrade_
        ->add_option("--timeout", stop_timeout_,
                     "seconds to wait for each controlled stop (60)")
        ->check(CLI::PositiveNumber);
  }

  std::optional<int> Run() const {
    if (!*upgrade_) return std::nullopt;
    if (dir_.empty() && image_.empty()) {
      return Fail(absl::InvalidArgumentError(
          "upgrade needs --binary-dir (and/or --image for podman servers)"));
    }
    stripefs::cli::UpgradeOptions uo;
    uo.home = home_;
    uo.bin_dir = dir_;
    uo.image = image_;
    uo.targets = targets_;
    uo.stop_timeout = absl::Seconds(stop_timeout_);
    return Done(stripefs::cli::Upgrade(uo));
  }

 private:
  std::string home_;
  std::string dir_;
  std::string image_;
  std::vector<std::string> targets_;
  double stop_timeout_ = 60;
  CLI::App* upgrade_ = nullptr;
};

// mount / umount
class MountCommands {
 public:
  MountCommands(CLI::App& app, const std::string& default_home)
      : home_(default_home) {
    mount_ = app.add_subcommand("mount", "mount the cluster at MNT");
    mount_->add_option("--home", home_, "cluster home");
    mount_->add_option("--bin-dir", bin_dir_,
                       "directory holding stripefs-mount");
    mount_->add_option("MNT", mountpoint_, "mountpoint")->required();
    umount_ = app.add_subcommand("umount", "unmount a mount made by 'mount'");
    umount_->add_option("--home", home_, "cluster home");
    umount_->add_option("MNT", mountpoint_, "mountpoint")->required();
  }

  std::optional<int> Run() const {
    if (*mount_) {
      absl::StatusOr<std::string> dir = BinDir(bin_dir_);
      if (!dir.ok()) return Fail(dir.status());
      return Done(stripefs::cli::Mount(home_, mountpoint_, *dir));
    }
    if (*umount_) return Done(stripefs::cli::Umount(home_, mountpoint_));
    return std::nullopt;
  }

 private:
  std::string home_;
  std::string bin_dir_;
  std::string mountpoint_;
  CLI::App* mount_ = nullptr;
  CLI::App* umount_ = nullptr;
};

// setstripe / getstripe / df
class LayoutCommands {
 public:
  explicit LayoutCommands(CLI::App& app) {
    setstripe_ = app.add_subcommand(
        "setstripe", "set the layout of a new/empty file or a directory");
    setstripe_->add_option("-c,--stripe-count", count_,
                           "number of stripes (-1: all OSTs, 0: default)");
    setstripe_->add_option("-S,--stripe-size", size_,
                           "stripe size, multiple of 64K, K/M/G suffixes");
    setstripe_->add_option("-i,--stripe-index", index_,
                           "OST index of the first stripe (-1: any)");
    setstripe_
        ->add_option("PATH", path_, "file or directory on a stripefs mount")
        ->required();
    getstripe_ = app.add_subcommand("getstripe", "show the layout of PATH");
    getstripe_
        ->add_option("PATH", path_, "file or directory on a stripefs mount")
        ->required();

    df_ = app.add_subcommand("df", "space per target of stripefs mounts");
    df_->add_flag("-H,--human-readable", human_, "sizes in K/M/G");
    df_->add_option("MNT", df_mounts_,
                    "mountpoints (default: every stripefs mount)");
  }

  std::optional<int> Run() const {
    if (*setstripe_) {
      stripefs::LayoutSetting req;
      req.stripe_count = count_;
      req.stripe_offset = index_;
      if (!size_.empty()) {
        absl::StatusOr<uint64_t> size = ParseSize(size_);
        if (!size.ok()) {
          return Fail(absl::InvalidArgumentError(
              absl::StrCat("invalid layout: ", size.status().message())));
        }
        req.stripe_size = *size;
      }
      return Done(stripefs::cli::SetStripe(path_, req));
    }
    if (*getstripe_) return Done(stripefs::cli::GetStripe(path_));
    if (*df_) return Done(stripefs::cli::Df(df_mounts_, human_));
    return std::nullopt;
  }

 private:
  std::optional<int64_t> count_, index_;
  std::string size_;
  std::string path_;
  std::vector<std::string> df_mounts_;
  bool human_ = false;
  CLI::App* setstripe_ = nullptr;
  CLI::App* getstripe_ = nullptr;
  CLI::App* df_ = nullptr;
};

// target add|deactivate|activate|remove|list
class TargetCommands {
 public:
  TargetCommands(CLI::App& app, const std::string& default_home)
      : home_(default_home) {
    CLI::App* target = app.add_subcommand(
        "target", "add, deactivate, activate, remove or list the OSTs of a "
                  "running cluster");
    target->require_subcommand(1);
    add_ = target->add_subcommand(
        "add", "start a new OSS and bring it into service (new files use it "
               "at once; existing files are untouched)");
    add_->add_option("--home", home_, "cluster home");
    add_->add_option("--address", address_,
                     "HOST:PORT for the new OSS (default: a free port on "
                     "127.0.0.1)");
    add_->add_option("--bin-dir", bin_dir_,
                     "directory holding stripefs-oss (default: beside "
                     "stripefs)");
    deactivate_ = target->add_subcommand(
        "deactivate", "no new objects on TARGET; its files keep working "
                      "unless --fail-io");
    deactivate_->add_option("--home", home_, "cluster home");
    deactivate_->add_option("target", target_, "ostN or N")->required();
    deactivate_->add_flag("--fail-io", fail_io_,
                          "also fail its files' I/O at once (EIO) on every "
                          "mount, after their buffered writes went out");
    activate_ = target->add_subcommand(
        "activate", "new objects on TARGET again; its I/O works again");
    activate_->add_option("--home", home_, "cluster home");
    activate_->add_option("target", target_, "ostN or N")->required();
    remove_ = target->add_subcommand(
        "remove", "drop a deactivated TARGET that holds no file's object "
                  "from the cluster and stop its server");
    remove_->add_option("--home", home_, "cluster home");
    remove_->add_option("target", target_, "ostN or N")->required();
    remove_->add_flag("--force", force_,
                      "even if files have objects on it: they lose the data "
                      "they have there (their I/O there fails)");
    list_ = target->add_subcommand("list", "the OSTs as the MDS records them");
    list_->add_option("--home", home_, "cluster home");
  }

  std::optional<int> Run() const {
    if (*add_) {
      absl::StatusOr<std::string> self = stripefs::cli::SelfDir();
      if (!self.ok()) return Fail(self.status());
      stripefs::cli::TargetAddOptions o;
      o.address = address_;
      o.bin_dir = bin_dir_;
      o.default_bin_dir = *self;
      return Done(stripefs::cli::TargetAdd(home_, o));
    }
    if (*deactivate_) {
      return Done(
          stripefs::cli::TargetSetActive(home_, target_, false, fail_io_));
    }
    if (*activate_) {
      return Done(stripefs::cli::TargetSetActive(home_, target_, true, false));
    }
    if (*remove_) {
      return Done(stripefs::cli::TargetRemove(home_, target_, force_));
    }
    if (*list_) return Done(stripefs::cli::TargetList(home_));
    return std::nullopt;
  }

 private:
  std::string home_;
  std::string target_;
  std::string address_;
  std::string bin_dir_;
  bool fail_io_ = false;
  bool force_ = false;
  CLI::App* add_ = nullptr;
  CLI::App* remove_ = nullptr;
  CLI::App* deactivate_ = nullptr;
  CLI::App* activate_ = nullptr;
  CLI::App* list_ = nullptr;
};

// fsck (cli/fsck.cc)
class FsckCommand {
 public:
  FsckCommand(CLI::App& app, const std::string& default_home) {
    options_.home = default_home;
    fsck_ = app.add_subcommand(
        "fsck",
        "compare the MDS's file layouts with every OSS's objects: orphan, "
        "missing and wrong-size objects (exit 0 clean, 1 all repaired, 4 "
        "inconsistencies left, 8 error)");
    fsck_->add_option("--home", options_.home, "cluster home");
    fsck_->add_flag("--repair", options_.repair,
                    "destroy the orphan objects found (the rest is only "
                    "reported)");
  }

  std::optional<int> Run() const {
    if (!*fsck_) return std::nullopt;
    return stripefs::cli::RunFsck(options_);
  }

 private:
  stripefs::cli::FsckOptions options_;
  CLI::App* fsck_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stripefs: manage a stripefs cluster, its mounts and file layouts"};
  app.set_version_flag("--version", std::string(stripefs::kRelease));
  app.require_subcommand(1);
  const std::string default_home = stripefs::cli::DefaultHome();
  // Registered in this order, which is the order of the help text.
  ClusterCommands cluster(app, default_home);
  ServerCommands server(app, default_home);
  TargetCommands target(app, default_home);
  UpgradeCommand upgrade(app, default_home);
  MountCommands mount(app, default_home);
  LayoutCommands layout(app);
  FsckCommand fsck(app, default_home);

  CLI11_PARSE(app, argc, argv);

  if (std::optional<int> rc = cluster.Run()) return *rc;
  if (std::optional<int> rc = server.Run()) return *rc;
  if (std::optional<int> rc = target.Run()) return *rc;
  if (std::optional<int> rc = upgrade.Run()) return *rc;
  if (std::optional<int> rc = mount.Run()) return *rc;
  if (std::optional<int> rc = layout.Run()) return *rc;
  if (std::optional<int> rc = fsck.Run()) return *rc;
  return 1;
}
