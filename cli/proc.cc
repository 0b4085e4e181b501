#include "cli/proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/config.h"
#include "common/errors.h"

namespace stripefs::cli {
namespace {

absl::Status SysError(int err, const std::string& what) {
  return Errno(err, absl::StrCat(what, ": ", std::strerror(err)));
}

std::vector<char*> CArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// In a forked child: closes every fd above 2 except keep.
void CloseFdsFrom3(int keep) {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) {
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != keep) ::close(fd);
    }
    return;
  }
  std::vector<int> fds;
  const int dfd = ::dirfd(d);
  while (struct dirent* e = ::readdir(d)) {
    int fd = 0;
    if (absl::SimpleAtoi(e->d_name, &fd) && fd > 2 && fd != keep && fd != dfd) {
      fds.push_back(fd);
    }
  }
  ::closedir(d);
  for (int fd : fds) ::close(fd);
}

std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const char a = s[i + 1], b = s[i + 2], c = s[i + 3];
      if (a >= '0' && a <= '7' && b >= '0' && b <= '7' && c >= '0' &&
          c <= '7') {
        out.push_back(
            static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError(errno, "socket");
  struct sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    int err = errno;
    ::close(fd);
    return SysError(err, "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return SysError(err, "getsockname");
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& argv,
                                    const std::string& log_file) {
  if (argv.empty()) return Errno(EINVAL, "empty command");
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return SysError(errno, "pipe");
  std::vector<char*> cargv = CArgv(argv);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return SysError(err, "fork");
  }
  if (pid == 0) {
    ::close(pipefd[0]);
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = 0;
    if (in < 0 || out < 0) {
      err = errno;
    } else {
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      if (in > 2) ::close(in);
      if (out > 2) ::close(out);
      CloseFdsFrom3(pipefd[1]);
      ::signal(SIGPIPE, SIG_DFL);
      ::execv(cargv[0], cargv.data());
      err = errno;
    }
    ssize_t ignored = ::write(pipefd[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  ::close(pipefd[1]);
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(pipefd[0], &child_err, sizeof(child_err));
  } while (n < 0 && errno == EINTR);
  ::close(pipefd[0]);
  if (n == static_cast<ssize_t>(sizeof(child_err))) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return SysError(child_err, absl::StrCat("cannot start ", argv[0]));
  }
  return pid;
}

absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, absl::Duration timeout,
    const std::optional<std::string>& log_file) {
  if (argv.empty()) return Errno(EINVAL, "empty command");
  int outpipe[2] = {-1, -1};
  if (!log_file && ::pipe2(outpipe, O_CLOEXEC) != 0)
    return SysError(errno, "pipe");
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) {
    int err = errno;
    if (outpipe[0] >= 0) {
      ::close(outpipe[0]);
      ::close(outpipe[1]);
    }
    return SysError(err, "pipe");
  }
  std::vector<char*> cargv = CArgv(argv);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(errpipe[0]);
    ::close(errpipe[1]);
    if (outpipe[0] >= 0) {
      ::close(outpipe[0]);
      ::close(outpipe[1]);
    }
    return SysError(err, "fork");
  }
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = log_file ? ::open(log_file->c_str(),
                                O_WRONLY | O_CREAT | O_APPEND, 0644)
                       : outpipe[1];
    int err = 0;
    if (in < 0 || out < 0) {
      err = errno;
    } else {
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      CloseFdsFrom3(errpipe[1]);
      ::signal(SIGPIPE, SIG_DFL);
      ::execvp(cargv[0], cargv.data());
      err = errno;
    }
    ssize_t ignored = ::write(errpipe[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  ::close(errpipe[1]);
  if (outpipe[1] >= 0) ::close(outpipe[1]);
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(errpipe[0], &child_err, sizeof(child_err));
  } while (n < 0 && errno == EINTR);
  ::close(errpipe[0]);
  if (n == static_cast<ssize_t>(sizeof(child_err))) {
    if (outpipe[0] >= 0) ::close(outpipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return SysError(child_err, absl::StrCat("cannot run ", argv[0]));
  }

  CommandResult result;
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  // Drain captured output until EOF (the child and anything it left behind
  // closed the pipe), bounded by the deadline.
  while (outpipe[0] >= 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    struct pollfd pfd = {outpipe[0], POLLIN, 0};
    int pr =
        ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    char buf[4096];
    ssize_t r = ::read(outpipe[0], buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    result.output.append(buf, static_cast<size_t>(r));
  }
  if (outpipe[0] >= 0) ::close(outpipe[0]);
  int status = 0;
  while (true) {
    if (timed_out) ::kill(pid, SIGKILL);
    pid_t w = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return SysError(errno, "waitpid");
    if (w < 0) continue;
    if (absl::Now() >= deadline) {
      timed_out = true;
      continue;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (timed_out) {
    return Errno(ETIMEDOUT,
                 absl::StrCat(argv[0], " did not finish within ",
                              absl::FormatDuration(timeout), "; killed it"));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

std::optional<int> ReapChild(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) != pid) return std::nullopt;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return std::nullopt;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  int status = 0;
  // Reap it if it is our own child that died.
  if (::waitpid(pid, &status, WNOHANG) == pid) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  absl::StatusOr<std::string> stat =
      ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  // Format: pid (comm) S ...; comm may contain spaces or ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return true;
  const char state = (*stat)[close + 2];
  return state != 'Z' && state != 'X';
}

std::vector<std::string> ProcessCmdline(pid_t pid) {
  absl::StatusOr<std::string> raw =
      ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!raw.ok()) return {};
  std::vector<std::string> out;
  for (absl::string_view a : absl::StrSplit(*raw, '\0')) out.emplace_back(a);
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::vector<pid_t> ListPids() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

std::vector<pid_t> FindProcesses(const std::string& exe_name) {
  std::vector<pid_t> out;
  for (pid_t pid : ListPids()) {
    std::vector<std::string> argv = ProcessCmdline(pid);
    if (argv.empty()) continue;
    const std::string& a0 = argv[0];
    const size_t slash = a0.rfind('/');
    const std::string base =
        slash == std::string::npos ? a0 : a0.substr(slash + 1);
    if (base == exe_name && ProcessAlive(pid)) out.push_back(pid);
  }
  return out;
}

bool WaitForExit(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (ProcessAlive(pid)) {
    if (absl::Now() >= deadline) return false;
    // Short steps: a controlled failover starts the replacement as soon as
    // the old process is gone, and every millisecond here is I/O paused.
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

absl::StatusOr<pid_t> ReadPidFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (ToErrno(text.status()) == ENOENT) return 0;
    return text.status();
  }
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) || pid < 0) {
    return Errno(EINVAL, absl::StrCat(path, ": not a pid"));
  }
  return static_cast<pid_t>(pid);
}

absl::Status WritePidFile(const std::string& path, pid_t pid) {
  return WriteFileAtomic(path, absl::StrCat(pid, "\n"));
}

std::string TailFile(const std::string& path, int lines) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return "";
  std::deque<std::string> tail;
  for (absl::string_view l : absl::StrSplit(*text, '\n')) {
    tail.emplace_back(l);
    if (static_cast<int>(tail.size()) > lines + 1) tail.pop_front();
  }
  if (!tail.empty() && tail.back().empty()) tail.pop_back();
  while (static_cast<int>(tail.size()) > lines) tail.pop_front();
  std::string out;
  for (const auto& l : tail) absl::StrAppend(&out, "    ", l, "\n");
  return out;
}

std::vector<MountEntry> ReadMounts() {
  std::vector<MountEntry> out;
  absl::StatusOr<std::string> text = ReadFile("/proc/mounts");
  if (!text.ok()) return out;
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 3) continue;
    out.push_back({Unescape(f[0]), Unescape(f[1]), std::string(f[2])});
  }
  return out;
}

std::vector<std::string> StripefsMounts() {
  std::vector<std::string> out;
  for (const auto& m : ReadMounts()) {
    if (m.fstype == "fuse.stripefs") out.push_back(m.mountpoint);
  }
  return out;
}

bool IsMounted(const std::string& mountpoint) {
  for (const auto& m : ReadMounts()) {
    if (m.mountpoint == mountpoint) return true;
  }
  return false;
}

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return SysError(errno, path);
  }
  return std::string(buf);
}

absl::StatusOr<std::string> SelfDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n < 0) return SysError(errno, "readlink /proc/self/exe");
  std::string exe(buf, static_cast<size_t>(n));
  const size_t slash = exe.rfind('/');
  if (slash == std::string::npos) return Errno(EINVAL, "odd /proc/self/exe");
  return exe.substr(0, slash);
}

}  // namespace stripefs::cli
