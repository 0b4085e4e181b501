// Process and mount helpers for the CLI: free ports, detached server start,
// bounded command runs, liveness via /proc, pid files, /proc/mounts.
// Free functions; thread-compatible (they touch only the process table and
// the files they are given).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stripefs::cli {

// A free TCP port on 127.0.0.1 (bind port 0, read it, close).
absl::StatusOr<int> PickFreePort();

// Starts argv[0] (a path) in a new session with stdin on /dev/null and
// stdout+stderr appended to log_file, every other fd closed. Returns its pid
// once exec has succeeded; an exec failure is returned as an error.
absl::StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& argv,
                                    const std::string& log_file);

struct CommandResult {
  int exit_code = 0;   // 128+signal when killed by a signal
  std::string output;  // stdout+stderr, when captured
};

// Runs argv (argv[0] found via PATH if it has no '/') to completion, bounded
// by `timeout` (then SIGKILL and DEADLINE_EXCEEDED). With log_file set,
// stdout+stderr are appended there (use it for programs that daemonize);
// otherwise they are captured into the result.
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, absl::Duration timeout,
    const std::optional<std::string>& log_file = std::nullopt);

// True if pid exists and is not a zombie (reaps it if it is our child).
bool ProcessAlive(pid_t pid);

// If pid is our child and has exited, reaps it and returns its exit code
// (128+signal when killed by a signal); nullopt otherwise (still running,
// or not our child). Call it before ProcessAlive, which reaps silently.
std::optional<int> ReapChild(pid_t pid);

// argv of a process from /proc/<pid>/cmdline (empty if gone).
std::vector<std::string> ProcessCmdline(pid_t pid);

// Every pid in /proc.
std::vector<pid_t> ListPids();

// Pids of live processes whose argv[0] basename is `exe_name`.
std::vector<pid_t> FindProcesses(const std::string& exe_name);

// Polls until pid is gone or timeout passes; true if it is gone.
bool WaitForExit(pid_t pid, absl::Duration timeout);

// Pid files: a decimal pid and a newline. ReadPidFile gives 0 if missing.
absl::StatusOr<pid_t> ReadPidFile(const std::string& path);
absl::Status WritePidFile(const std::string& path, pid_t pid);

// The last `lines` lines of a file ("" if unreadable).
std::string TailFile(const std::string& path, int lines);

struct MountEntry {
  std::string source;
  std::string mountpoint;
  std::string fstype;
};

// Parsed /proc/mounts (octal escapes undone).
std::vector<MountEntry> ReadMounts();
// Mountpoints of type fuse.stripefs.
std::vector<std::string> StripefsMounts();
bool IsMounted(const std::string& mountpoint);

// Absolute, symlink-resolved form of path (which must exist).
absl::StatusOr<std::string> RealPath(const std::string& path);

// Directory holding the running executable (/proc/self/exe).
absl::StatusOr<std::string> SelfDir();

}  // namespace stripefs::cli
