// Cluster lifecycle from a cluster home: create/reuse cluster.json, start the
// servers detached (the DLM, OSSs, then the MDS), wait for their Status RPC,
// start or stop one server, stop them all, report their state, and
// make/remove client mounts recorded in run/mounts.json. Progress goes to stdout, problems are returned as
// statuses. Not thread-safe: one CLI invocation drives one home at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/config.h"

namespace stripefs::cli {

struct UpOptions {
  std::string home;
  std::optional<int> oss_count;  // default 4 for a new cluster
  std::optional<std::string> mountpoint;
  std::optional<int64_t> stripe_count;  // default 1 for a new cluster
  std::optional<uint64_t> stripe_size;  // default 1 MiB for a new cluster
  std::string bin_dir;                  // where stripefs-* live
  // bin_dir came from --bin-dir: use it for every server and record it
  // (otherwise each server's recorded binary_dir wins over bin_dir).
  bool bin_dir_explicit = false;
  // Non-empty: run every server in podman from this image (recorded).
  std::string image;
  absl::Duration start_timeout = absl::Seconds(20);
  // Neither add nor start the lock service; the MDS runs without --dlm.
  bool no_dlm = false;
};

// Adds a "dlm" entry (target "dlm", a free port, data dir HOME/dlm) unless
// there is one; ports already used in `config` are not picked. Returns true
// if it added one.
absl::StatusOr<bool> EnsureDlmEntry(const std::string& home,
                                    ClusterConfig* config);

// Creates or reuses cluster.json (adding the DLM entry to an older one), then
// starts the DLM, waits for it, starts the OSSs, then the MDS (with --dlm).
absl::Status ClusterUp(const UpOptions& options);

// Unmounts the cluster's mounts, then stops the MDS, then the OSSs, then the
// DLM last.
// Succeeds on a stopped cluster or an empty home.
absl::Status ClusterDown(const std::string& home,
                         absl::Duration stop_timeout = absl::Seconds(15));

struct ServerState {
  std::string target;
  std::string role;
  std::string address;
  int64_t pid = 0;      // 0 when stopped
  std::string state;    // "running", "stopping", "unresponsive", "stopped"
  std::string release;  // empty unless it answered
  // From the server's Status when it answered (empty otherwise).
  std::map<std::string, uint64_t> rpc_counts;
  // info["connections"] when it answered and sent one: "name=proto,...".
  std::optional<std::string> connections;
  std::string runtime;  // "" or "podman"
  // DLM only, when it answered: sessions and locks in its table.
  std::optional<uint64_t> sessions;
  std::optional<uint64_t> locks;
  // OSS only, as the MDS records it when the MDS answered: "active",
  // "inactive" or "inactive, I/O fails" (`stripefs target`).
  std::string target_state;
};

absl::StatusOr<std::vector<ServerState>> ClusterStatus(const std::string& home);
std::string FormatStatusText(const std::vector<ServerState>& states);
std::string FormatStatusJson(const std::vector<ServerState>& states);

// How `server start` / `upgrade` start one server.
struct StartOptions {
  // --binary-dir: start from here and record it in cluster.json. Empty: the
  // server's recorded binary_dir, else default_bin_dir.
  std::string bin_dir;
  std::string default_bin_dir;  // beside the stripefs CLI
  // --image: run the server in podman from this image and record it
  // (runtime "podman"). Empty: as recorded.
  std::string image;
  bool force = false;  // pass --force (start even if the startup check refuses)
  // Non-empty: the server is healthy only once its Status reports this
  // release.
  std::string expect_release;
  absl::Duration start_timeout = absl::Seconds(20);
};

// Starts one server of the cluster (as `cluster up` would; the MDS gets
// --dlm when the cluster has a DLM entry) and waits for its Status RPC.
// Succeeds if it is already running. ENOENT for an unknown target. A server
// that refuses to start (its startup check, exit code 3) gives
// FAILED_PRECONDITION carrying the server's message.
absl::Status ServerStart(const std::string& home, const std::string& target,
                         const StartOptions& options);

// SIGTERM to one server, waits for it to exit (SIGKILL after stop_timeout).
// Succeeds if it is not running. ENOENT for an unknown target.
absl::Status ServerStop(const std::string& home, const std::string& target,
                        absl::Duration stop_timeout = absl::Seconds(15));

// Controlled stop (the active-server lock protocol, issue 4): SIGUSR2 to one
// server, waits up to `timeout` for it to exit. It is never killed: on a
// timeout the error says so and the server keeps running. Succeeds if it is
// not running.
absl::Status ServerStopControlled(const std::string& home,
                                  const std::string& target,
                                  absl::Duration timeout = absl::Seconds(60));

struct FailoverOptions {
  // SIGUSR1: forced failover (seed 002: the server stops replying, turns
  // its store read-only and exits without a clean stop). false: SIGUSR2,
  // a controlled stop.
  bool force = false;
  // How long the old server may take to exit (it is never killed).
  absl::Duration stop_timeout = absl::Seconds(60);
  // How the replacement starts (default: as recorded in the home).
  StartOptions start;
};

// `stripefs server failover [--force] TARGET`: stops the running server of
// TARGET (forced or controlled, see FailoverOptions), waits for it to exit,
// then starts its replacement as ServerStart does and waits until it
// serves. ENOENT for an unknown target, ESRCH when it is not running,
// ETIMEDOUT when it does not exit in time; a replacement that fails to
// start gives ServerStart's error (FAILED_PRECONDITION: its start-up check
// refused) with the server's message.
absl::Status ServerFailover(const std::string& home, const std::string& target,
                            const FailoverOptions& options);

struct UpgradeOptions {
  std::string home;
  std::string bin_dir;  // the new release's binaries
  std::string image;    // podman servers: the new image (default
                        // "stripefs:<release of bin_dir>")
  std::vector<std::string> targets;  // default: the MDS, OSSs, then the DLM
  absl::Duration stop_timeout = absl::Seconds(60);
  absl::Duration start_timeout = absl::Seconds(30);
};

// Rolls servers one at a time: controlled stop, start from the new binaries
// (or image), wait until Status answers with the new release. One progress
// line per step with its timing; stops at the first failure.
absl::Status Upgrade(const UpgradeOptions& options);

// Pure helpers (unit-tested).
// The targets to roll, in order: `targets` as given (each must exist, no
// repeats), else the MDS, the OSSs in index order, then the DLM.
absl::StatusOr<std::vector<std::string>> UpgradeOrder(
    const ClusterConfig& config, const std::vector<std::string>& targets);
// The release in the output of `BINARY --version`: the last
// whitespace-separated token that looks like N.N.N ("1.1.0",
// "stripefs-mds 1.1.0"); nullopt if none.
std::optional<std::string> ParseReleaseOutput(const std::string& output);
// The release of an image tag "name:1.1.0" (nullopt without a tag).
std::optional<std::string> ImageRelease(const std::string& image);
// StatusReply.info["connections"]: "name=proto,name=proto" -> pairs, in
// order; malformed items are kept with protocol "?".
std::vector<std::pair<std::string, std::string>> ParseConnections(
    const std::string& text);
// The argv that runs a server in podman: host network, the data dir
// bind-mounted at the same path, STRIPEFS_* variables passed through, the
// server binary at /usr/local/bin inside the image.
std::vector<std::string> PodmanRunArgv(
    const ServerConfig& server, const std::vector<std::string>& server_args,
    const std::vector<std::string>& env_names);
// The container name of a server ("stripefs-<target>-<port>").
std::string ContainerName(const ServerConfig& server);

// The release of the binaries in bin_dir: `stripefs-<role> --version`, else
// `stripefs --version` from the same directory.
absl::StatusOr<std::string> BinaryRelease(const std::string& bin_dir,
                                          const std::string& role);

// Mounts the cluster at mountpoint (an existing directory) via stripefs-mount
// and records it in run/mounts.json. Succeeds if it is already mounted there.
// A stale mount of this cluster there (recorded, its daemon gone) is
// unmounted first when clean_stale (`cluster up --mount`), else refused;
// anything else mounted there is refused (EBUSY) saying what it is.
absl::Status Mount(const std::string& home, const std::string& mountpoint,
                   const std::string& bin_dir, bool clean_stale = false);

// fusermount3 -u (then -u -z if busy), waits for the daemon, drops the
// record.
absl::Status Umount(const std::string& home, const std::string& mountpoint);

}  // namespace stripefs::cli
