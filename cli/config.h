// The cluster home as the CLI sees it: cluster.json (every server's target,
// role, address and data dir plus the root's default layout) and
// run/mounts.json (mounts made by the CLI). Plain structs with JSON
// round-trip and atomic file save. Not thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stripefs::cli {

struct ServerConfig {
  std::string target;   // "mdt0", "ost0", ...
  std::string role;     // "mds", "oss" or "dlm"
  std::string address;  // "127.0.0.1:PORT"
  std::string data;     // absolute data dir
  // Directory the server's binary was last started from (`server start
  // --binary-dir`, `upgrade`); empty: beside the stripefs CLI. Kept so
  // later starts use the same release.
  std::string binary_dir;
  // "" (a plain process) or "podman" (a container of `image`, host network,
  // data dir bind-mounted; see deploy/).
  std::string runtime;
  std::string image;  // podman only, e.g. "stripefs:1.1.0"
  bool operator==(const ServerConfig&) const = default;
};

struct ClusterConfig {
  std::vector<ServerConfig> servers;  // the MDS, OSSs in index order, the DLM
  int64_t stripe_count = 1;           // root default layout at format time
  uint64_t stripe_size = 1 << 20;
  bool operator==(const ClusterConfig&) const = default;

  // The MDS entry, or nullptr.
  const ServerConfig* Mds() const;
  // The entry named target, or nullptr.
  const ServerConfig* Find(const std::string& target) const;
  // The lock service entry, or nullptr (clusters made before it existed).
  const ServerConfig* Dlm() const;
  // OSS entries in index order (ost0, ost1, ...).
  std::vector<const ServerConfig*> Osses() const;
};

struct MountRecord {
  std::string mountpoint;  // absolute
  int64_t pid = 0;         // the stripefs-mount daemon
  bool operator==(const MountRecord&) const = default;
};

// Paths inside a cluster home.
struct HomePaths {
  explicit HomePaths(std::string home_dir) : home(std::move(home_dir)) {}
  std::string home;
  std::string ConfigFile() const { return home + "/cluster.json"; }
  std::string RunDir() const { return home + "/run"; }
  std::string LogDir() const { return home + "/log"; }
  std::string MountsFile() const { return RunDir() + "/mounts.json"; }
  std::string PidFile(const std::string& target) const {
    return RunDir() + "/" + target + ".pid";
  }
  std::string LogFile(const std::string& target) const {
    return LogDir() + "/" + target + ".log";
  }
};

// The default home: $STRIPEFS_HOME, else $HOME/.stripefs.
std::string DefaultHome();

// True for a role in kServerRoles (cli/cluster_binaries.h): "mds", "oss",
// "dlm".
bool IsServerRole(const std::string& role);
// The binary a server of `role` runs: "stripefs-<role>".
std::string ServerBinary(const std::string& role);

std::string ConfigToJson(const ClusterConfig& config);
absl::StatusOr<ClusterConfig> ConfigFromJson(const std::string& text);
// ENOENT when the file does not exist.
absl::StatusOr<ClusterConfig> LoadConfig(const std::string& path);
absl::Status SaveConfig(const std::string& path, const ClusterConfig& config);

std::string MountsToJson(const std::vector<MountRecord>& mounts);
absl::StatusOr<std::vector<MountRecord>> MountsFromJson(
    const std::string& text);
// A missing file is an empty list.
absl::StatusOr<std::vector<MountRecord>> LoadMounts(const std::string& path);
absl::Status SaveMounts(const std::string& path,
                        const std::vector<MountRecord>& mounts);

// Whole-file helpers. WriteFileAtomic writes PATH.tmp and renames it.
absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::Status WriteFileAtomic(const std::string& path, const std::string& data);
// mkdir -p.
absl::Status MakeDirs(const std::string& path);

}  // namespace stripefs::cli
