// mount / umount, and the mountpoint checks `cluster up --mount` and
// `cluster down` share (cli/cluster.h, cli/cluster_internal.h).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/cluster.h"
#include "cli/cluster_binaries.h"
#include "cli/cluster_internal.h"
#include "cli/config.h"
#include "cli/proc.h"
#include "cli/server_status.h"
#include "common/errors.h"

namespace stripefs::cli::internal {
namespace {

constexpr absl::Duration kMountTimeout = absl::Seconds(30);
constexpr absl::Duration kMountExitTimeout = absl::Seconds(10);

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace stripefs::cli::internal

namespace stripefs::cli {

using internal::AbsHome;
using internal::LoadHome;
using internal::AbsolutePath;
using internal::CheckMountpoint;
using internal::FindMountDaemon;
using internal::IsMountDaemonOf;
using internal::kLogTailLines;
using internal::kMountTimeout;
using internal::kPatientStatusDeadline;
using internal::MountpointCheck;
using internal::Say;
using internal::UnmountAndWait;

absl::Status Mount(const std::string& home_arg, const std::string& mountpoint,
                   const std::string& bin_dir, bool clean_stale) {
  std::string home;
  absl::StatusOr<ClusterConfig> config = LoadHome(home_arg, &home);
  if (!config.ok()) return config.status();
  HomePaths paths(home);
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
                     "); run 'stripefs cluster up --home ", home, "'"));
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
