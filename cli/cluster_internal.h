// Helpers shared by the files that implement cli/cluster.h (cluster.cc:
// cluster up/down/status; server_cmds.cc: server start/stop/failover;
// upgrade.cc; mount_cmds.cc: mount/umount). Not part of the CLI's
// interface: include it only from those files. Same threading rule as
// cluster.h: one CLI invocation drives one home at a time.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/config.h"

namespace stripefs::cli::internal {

inline constexpr int kLogTailLines = 15;
inline constexpr absl::Duration kStatusDeadline = absl::Seconds(1);
inline constexpr absl::Duration kPatientStatusDeadline = absl::Seconds(3);

// --- cluster_common.cc: the cluster home and its server processes ---

// The server binary of a role (roles are checked when cluster.json loads).
std::string BinaryFor(const std::string& role);

// One progress line to stdout, flushed.
void Say(const std::string& line);

bool InPodman(const ServerConfig& s);

// The pid of the server for `s`, or 0: the pid file if it names a live
// server binary, else the pid the server reports over Status (plain
// processes only: a container reports its own pid namespace's).
pid_t ServerPid(const HomePaths& paths, const ServerConfig& s, bool ask);

// The podman command prefix with PLATFORM.md's settings; points
// CONTAINERS_CONF at a file with `default_ulimits = []` (written under the
// run dir) unless the caller set one.
absl::StatusOr<std::vector<std::string>> PodmanPrefix(const HomePaths& paths);

// The home as an absolute path (created first when `create`).
absl::StatusOr<std::string> AbsHome(const std::string& home, bool create);

// Loads the config of an existing home (*home: its absolute path); ENOENT
// "no cluster in HOME (run 'stripefs cluster up' first)" when there is none.
absl::StatusOr<ClusterConfig> LoadHome(const std::string& home_arg,
                                       std::string* home);

// Loads the config of an existing home and finds target in it.
absl::StatusOr<ClusterConfig> LoadForTarget(const std::string& home_arg,
                                            const std::string& target,
                                            std::string* home);

// How StartGroup starts servers.
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
                        const GroupStart& g);

// Sends SIGTERM to each pid, waits for all, SIGKILLs what is left.
void StopPids(const std::vector<std::pair<std::string, pid_t>>& procs,
              absl::Duration timeout);

// --- mount_cmds.cc: client mounts ---

// Unmounts mountpoint and waits for its daemon (pid, if known) to exit.
absl::Status UnmountAndWait(const std::string& mountpoint, pid_t pid);

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
                                                bool clean_stale);

}  // namespace stripefs::cli::internal
