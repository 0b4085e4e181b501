// stripefs-mount --mds ADDR [-f] [-d] [-o OPT,...] MOUNTPOINT
//
// Startup order matters because gRPC does not survive fork(): unless -f, the
// process forks FIRST; the child (setsid) connects to the MDS and the OSTs,
// creates the FUSE session and mounts, then reports one status byte (plus a
// one-line error) through a pipe before serving. The parent exits 0 once the
// mount is usable, or prints the child's error and exits 1.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "dlm/dlm_client.h"
#include "fuse-client/attr_inval.h"
#include "fuse-client/data_locks.h"
#include "fuse-client/config_watch.h"
#include "fuse-client/failover.h"
#include "fuse-client/fs.h"
#include "fuse-client/fuse_ops.h"
#include "fuse-client/keepalive.h"
#include "fuse-client/ost_set.h"
#include "fuse-client/posix_locks.h"
#include "fuse-client/target_client.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {
namespace {

// How long a starting mount waits for the MDS and for the servers' active
// locks (a controlled failover in progress).
constexpr absl::Duration kMountConnectWait = absl::Seconds(120);

struct MountConfig {
  std::string mds;
  std::string mountpoint;
  bool foreground = false;
  bool debug = false;
  std::string log_level = "info";
  std::string log_file;
  FsOptions fs;
  // With a lock service, writes are buffered in the mount (write_behind.h);
  // -o no_write_behind sends each write before it returns.
  bool write_behind = true;
  uint64_t write_behind_mb = 256;  // -o write_behind_mb=N: mount-wide bound
  std::vector<std::string> fuse_opts;  // passed to libfuse
};

// Splits -o values into our options and libfuse's.
bool ParseMountOptions(const std::vector<std::string>& raw, MountConfig* cfg,
                       std::string* err) {
  for (const std::string& group : raw) {
    for (absl::string_view opt :
         absl::StrSplit(group, ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> kv =
          absl::StrSplit(opt, absl::MaxSplits('=', 1));
      if (kv.first == "attr_timeout" || kv.first == "entry_timeout") {
        double v = 0;
        if (!absl::SimpleAtod(kv.second, &v) || v < 0) {
          *err = absl::StrCat("bad value in -o ", opt);
          return false;
        }
        (kv.first == "attr_timeout" ? cfg->fs.attr_timeout
                                    : cfg->fs.entry_timeout) = v;
      } else if (kv.first == "locked_attr_timeout") {
        double v = 0;
        if (!absl::SimpleAtod(kv.second, &v) || v < 0 || v > 86400) {
          *err = absl::StrCat("bad value in -o ", opt);
          return false;
        }
        cfg->fs.locked_attr_timeout = v;
      } else if (kv.first == "no_md_adaptive") {
        cfg->fs.md_adaptive = false;
      } else if (kv.first == "writeback_cache") {
        cfg->fs.writeback_cache = true;
      } else if (kv.first == "write_behind") {
        cfg->write_behind = true;
      } else if (kv.first == "no_write_behind") {
        cfg->write_behind = false;
      } else if (kv.first == "write_behind_mb") {
        uint64_t v = 0;
        if (!absl::SimpleAtoi(kv.second, &v) || v < 4 || v > (1u << 20)) {
          *err = absl::StrCat("bad value in -o ", opt);
          return false;
        }
        cfg->write_behind_mb = v;
      } else if (kv.first == "io_threads") {
        int v = 0;
        if (!absl::SimpleAtoi(kv.second, &v) || v < 1 || v > 256) {
          *err = absl::StrCat("bad value in -o ", opt);
          return false;
        }
        cfg->fs.io_threads = v;
      } else {
        cfg->fuse_opts.emplace_back(opt);
      }
    }
  }
  return true;
}

// Reports the startup result to the waiting parent (or stderr with -f).
class Notifier {
 public:
  explicit Notifier(int fd) : fd_(fd) {}
  int Fail(const std::string& msg) {
    if (fd_ >= 0) {
      std::string out = "\1" + msg;
      ssize_t n = write(fd_, out.data(), out.size());
      (void)n;
      close(fd_);
      fd_ = -1;
    } else {
      fprintf(stderr, "stripefs-mount: %s\n", msg.c_str());
    }
    return 1;
  }
  void Ok() {
    if (fd_ >= 0) {
      char c = 0;
      ssize_t n = write(fd_, &c, 1);
      (void)n;
      close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_;
};

// The kernel offers FUSE at most its default readahead at INIT; once the
// mount answers, raise the bdi's readahead so sequential reads stream.
void TuneReadahead(const std::string& mountpoint) {
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) return;
  std::string path = absl::StrCat("/sys/class/bdi/", major(st.st_dev), ":",
                                  minor(st.st_dev), "/read_ahead_kb");
  std::ofstream f(path);
  if (f) f << 4096 << "\n";
  if (!f) spdlog::debug("could not set {}", path);
}

// The process-wide settings of the mount daemon.
void TuneProcess() {
  // 1 MiB data buffers come and go on every request: keep them on the heap
  // instead of a fresh mmap (and page faults) each time.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // Debian's abseil may be built with mutex deadlock detection on; it costs
  // a graph update per lock on the I/O path.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// This mount's identity towards the servers: a random client id and
// "host:pid".
TargetOptions ClientIdentity() {
  std::random_device rd;
  uint64_t client_id = (static_cast<uint64_t>(rd()) << 32) | rd();
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof(host) - 1);
  TargetOptions topts;
  topts.client_id = client_id;
  topts.client_name = absl::StrCat(host, ":", getpid());
  return topts;
}

// Connects to the MDS. It may be restarting (controlled failover): waits
// for it a while.
absl::Status ConnectMds(MdsClient& mds, const std::string& address) {
  const absl::Time connect_until = absl::Now() + kMountConnectWait;
  for (absl::Duration nap = absl::Milliseconds(100);;
       nap = std::min(nap * 2, absl::Seconds(1))) {
    absl::Status s = mds.Reconnect();
    if (s.ok()) return absl::OkStatus();
    if (absl::Now() + nap >= connect_until ||
        (s.code() != absl::StatusCode::kUnavailable &&
         s.code() != absl::StatusCode::kDeadlineExceeded)) {
      return absl::UnavailableError(
          absl::StrCat("cannot reach MDS at ", address, ": ", s.message()));
    }
    spdlog::info("MDS at {} not reachable yet ({}); waiting", address,
                 s.ToString());
    absl::SleepFor(nap);
  }
}

// The cluster's configuration (OSTs, lock service) from the MDS.
absl::StatusOr<rpc::GetConfigReply> FetchConfig(MdsClient& mds,
                                                const std::string& address) {
  rpc::GetConfigReply config;
  if (absl::Status s = mds.Call(
          &rpc::Mds::Stub::GetConfig, "GetConfig", {},
          [](rpc::GetConfigRequest&) {}, &config);
      !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("GetConfig from MDS at ", address,
                                     " failed: ", s.message()));
  }
  if (config.root_ino() != 0 && config.root_ino() != FUSE_ROOT_ID) {
    return absl::FailedPreconditionError(
        absl::StrCat("MDS root inode is ", config.root_ino(), ", expected 1"));
  }
  return config;
}

// The lock service's client when the cluster has one (else nullptr):
// caches are kept coherent under its locks, and POSIX record locks and
// flock go through it.
absl::StatusOr<std::unique_ptr<dlm::DlmClient>> StartLockClient(
    const rpc::GetConfigReply& config, const TargetOptions& topts) {
  if (config.dlm_address().empty()) {
    return std::unique_ptr<dlm::DlmClient>();
  }
  dlm::DlmClientOptions dopts;
  dopts.address = config.dlm_address();
  dopts.client_id = topts.client_id;
  dopts.kind = "client";
  dopts.name = topts.client_name;
  auto started = dlm::DlmClient::Start(dopts);
  if (!started.ok()) {
    return absl::Status(
        started.status().code(),
        absl::StrCat("cannot start the lock client for ", config.dlm_address(),
                     ": ", started.status().message()));
  }
  return std::move(*started);
}

// Controlled failover: PR on active:<target> for the MDT and every OST,
// taken before the mount serves (a mount started while a server is
// stopping waits here until the next instance is up).
absl::StatusOr<std::unique_ptr<MountFailover>> StartFailover(
    dlm::DlmClient* dlm, MdsClient* mds, OstSet* osts) {
  auto started = MountFailover::Start(dlm, mds, osts);
  if (!started.ok()) return started.status();
  if (!(*started)->WaitActive(kMountConnectWait)) {
    return absl::UnavailableError(
        "the servers did not become active (controlled failover in "
        "progress?)");
  }
  return std::move(*started);
}

// libfuse's argv: the daemon's fixed mount options and the -o ones.
std::vector<std::string> FuseArgv(const MountConfig& cfg) {
  std::vector<std::string> argv_s = {"stripefs-mount"};
  if (cfg.debug) argv_s.push_back("-d");
  // The MDS checks every request against the caller's credentials; the
  // kernel checks too (default_permissions), so that names and attributes it
  // has cached cannot bypass search or exec permission.
  std::vector<std::string> opts = {"fsname=stripefs", "subtype=stripefs",
                                   "default_permissions"};
  if (geteuid() == 0) opts.push_back("allow_other");
  for (const std::string& o : cfg.fuse_opts) opts.push_back(o);
  argv_s.push_back("-o");
  argv_s.push_back(absl::StrJoin(opts, ","));
  return argv_s;
}

// Creates the FUSE session over `fs` and mounts it at `mountpoint`.
absl::StatusOr<fuse_session*> MountSession(fuse_args* args,
                                           const std::string& opts_text,
                                           const std::string& mountpoint,
                                           Fs* fs) {
  const fuse_lowlevel_ops& ops = FuseOps();
  fuse_session* se = fuse_session_new(args, &ops, sizeof(ops), fs);
  if (se == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad mount options: ", opts_text));
  }
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return absl::InternalError("cannot install signal handlers");
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return absl::InternalError(absl::StrCat("cannot mount at ", mountpoint));
  }
  return se;
}

// Detaches the daemon from the caller's terminal and pipes.
void DetachFromCaller(const MountConfig& cfg) {
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    struct stat st;
    if (cfg.log_file.empty() && fstat(STDERR_FILENO, &st) == 0 &&
        (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
      dup2(null_fd, STDERR_FILENO);
    }
    if (null_fd > STDERR_FILENO) close(null_fd);
  }
  if (chdir("/") != 0) spdlog::warn("chdir /: {}", strerror(errno));
}

// Serves FUSE requests until the unmount; returns the loop's result.
int ServeUntilUnmount(fuse_session* se, const std::string& mountpoint) {
  std::thread tune(TuneReadahead, mountpoint);
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_idle_threads(loop, 16);
  fuse_loop_cfg_set_max_threads(loop, 64);
  int rc = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);
  tune.join();
  return rc;
}

// The session, for attribute invalidations until the loop ends.
struct InvalSession {
  absl::Mutex mu;
  fuse_session* se ABSL_GUARDED_BY(mu) = nullptr;
};

// With a lock service: the data locks and the write-behind (only with
// them: their callbacks write it back).
std::unique_ptr<DataLocks> SetUpDataPath(const MountConfig& cfg,
                                         dlm::DlmClient* dlm, Fs* fs,
                                         OstSet* osts) {
  auto locks = std::make_unique<DataLocks>(dlm);
  fs->set_data_locks(locks.get());
  locks->set_ost_check([osts](uint32_t ost) { return osts->CheckIo(ost); });
  if (!cfg.write_behind) return locks;
  WriteBehindOptions wb;
  wb.max_dirty = cfg.write_behind_mb << 20;
  wb.max_object_dirty = std::min(wb.max_object_dirty, wb.max_dirty / 2);
  osts->EnableWriteBehind(wb);
  locks->set_write_behind(osts->write_behind());
  return locks;
}

// Targets added, deactivated, activated or removed while mounted: the
// config lock's watch (with a lock service; else null) and, for a layout
// naming a target not known yet, a re-read on the I/O's thread.
absl::StatusOr<std::unique_ptr<ConfigWatch>> FollowConfig(
    const MountConfig& cfg, const TargetOptions& topts, MdsClient* mds,
    dlm::DlmClient* dlm, OstSet* osts, MountFailover* failover) {
  auto fetch = [mds, address = cfg.mds] { return FetchConfig(*mds, address); };
  osts->set_resolver([fetch, osts, failover, topts]() -> absl::Status {
    absl::StatusOr<rpc::GetConfigReply> c = fetch();
    if (!c.ok()) return c.status();
    return ApplyConfig(*c, topts, osts, failover);
  });
  if (dlm == nullptr) return std::unique_ptr<ConfigWatch>();
  return ConfigWatch::Start(dlm, fetch, osts, failover, topts);
}

int RunDaemon(const MountConfig& cfg, int notify_fd) {
  Notifier notify(notify_fd);
  TuneProcess();
  const TargetOptions topts = ClientIdentity();
  const uint64_t client_id = topts.client_id;

  MdsClient mds(cfg.mds, topts);
  if (absl::Status s = ConnectMds(mds, cfg.mds); !s.ok()) {
    return notify.Fail(std::string(s.message()));
  }
  absl::StatusOr<rpc::GetConfigReply> config = FetchConfig(mds, cfg.mds);
  if (!config.ok()) return notify.Fail(std::string(config.status().message()));
  OstSet osts;
  if (absl::Status s = ApplyConfig(*config, topts, &osts, nullptr); !s.ok()) {
    return notify.Fail(std::string(s.message()));
  }
  absl::StatusOr<std::unique_ptr<dlm::DlmClient>> started_dlm =
      StartLockClient(*config, topts);
  if (!started_dlm.ok()) {
    return notify.Fail(std::string(started_dlm.status().message()));
  }
  std::unique_ptr<dlm::DlmClient> dlm = std::move(*started_dlm);
  FsOptions fs_options = cfg.fs;
  if (dlm) {
    // The daemon caches metadata under DLM locks and answers from there;
    // the kernel must ask it every time (no kernel-side invalidation,
    // which could deadlock inside a lock callback).
    fs_options.attr_timeout = 0;
    fs_options.entry_timeout = 0;
  }
  Fs fs(&mds, &osts, fs_options);
  fs.set_dlm(dlm.get());
  std::unique_ptr<PosixLocks> posix_locks;
  if (dlm) {
    posix_locks = std::make_unique<PosixLocks>(dlm.get());
    fs.set_posix_locks(posix_locks.get());
  }
  // Data coherence and write-behind.
  std::unique_ptr<DataLocks> data_locks;
  if (dlm) data_locks = SetUpDataPath(cfg, dlm.get(), &fs, &osts);

  // The open files' MDS handles live on the instance connected now; on any
  // other instance (found by a resend's reconnect, the keepalive or a
  // controlled failover) they are re-established first (crash recovery).
  mds.SetRecovery([&fs](bool evicted) { return fs.ReopenAll(evicted); });
  // The keepalive learns that the MDS evicted this mount (lease over): its
  // open files it dropped are lost at once, before any of their I/O
  // reaches an OSS.
  mds.SetEvictedHandler([&fs](uint64_t below) { fs.Evicted(below); });

  std::unique_ptr<MountFailover> failover;
  if (dlm) {
    auto started = StartFailover(dlm.get(), &mds, &osts);
    if (!started.ok())
      return notify.Fail(std::string(started.status().message()));
    failover = std::move(*started);
  }
  absl::StatusOr<std::unique_ptr<ConfigWatch>> config_watch =
      FollowConfig(cfg, topts, &mds, dlm.get(), &osts, failover.get());
  if (!config_watch.ok()) {
    return notify.Fail(std::string(config_watch.status().message()));
  }

  std::vector<std::string> argv_s = FuseArgv(cfg);
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  absl::StatusOr<fuse_session*> mounted =
      MountSession(&args, argv_s.back(), cfg.mountpoint, &fs);
  if (!mounted.ok())
    return notify.Fail(std::string(mounted.status().message()));
  fuse_session* se = *mounted;
  if (data_locks) data_locks->set_session(se);
  InvalSession inval_session;
  {
    absl::MutexLock l(&inval_session.mu);
    inval_session.se = se;
  }
  std::unique_ptr<AttrInvalidator> attr_inval;
  if (dlm) {
    attr_inval =
        std::make_unique<AttrInvalidator>([&inval_session](uint64_t ino) {
          absl::MutexLock l(&inval_session.mu);
          if (inval_session.se == nullptr) return 0;
          return fuse_lowlevel_notify_inval_inode(inval_session.se, ino, -1, 0);
        });
    fs.set_on_md_drop(
        [inv = attr_inval.get()](uint64_t ino) { inv->Invalidate(ino); });
  }
  // Lease renewal and new-instance detection while idle; stopped at unmount.
  Keepalive keepalive(&mds);
  spdlog::info("mounted {} (mds {}, {} OSTs, client id {:#x})", cfg.mountpoint,
               cfg.mds, osts.all().size(), client_id);
  if (!cfg.foreground) DetachFromCaller(cfg);
  notify.Ok();

  const int rc = ServeUntilUnmount(se, cfg.mountpoint);
  if (data_locks) data_locks->set_session(nullptr);  // waits for a call
  {
    absl::MutexLock l(&inval_session.mu);  // waits for a call
    inval_session.se = nullptr;
  }
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  keepalive.Stop();
  if (*config_watch) (*config_watch)->Stop();
  if (failover) failover->Stop();
  if (dlm) dlm->Close(/*cancel_locks=*/true);
  spdlog::info("unmounted {} (loop rc {})", cfg.mountpoint, rc);
  return 0;
}

int Main(int argc, char** argv) {
  MountConfig cfg;
  std::vector<std::string> raw_opts;
  CLI::App app{"Mount a stripefs filesystem"};
  app.add_option("--mds", cfg.mds, "MDS address HOST:PORT")->required();
  app.add_flag("-f,--foreground", cfg.foreground, "stay in the foreground");
  app.add_flag("-d,--debug", cfg.debug, "FUSE debug output (implies -f)");
  app.add_option("-o", raw_opts,
                 "mount options: attr_timeout=S, entry_timeout=S, "
                 "locked_attr_timeout=S, writeback_cache, io_threads=N, "
                 "no_md_adaptive, write_behind, no_write_behind, write_behind_mb=N, or "
                 "libfuse options");
  app.add_option("--log-level", cfg.log_level, "debug, info, warn, error");
  app.add_option("--log-file", cfg.log_file, "append logs to this file");
  app.add_option("mountpoint", cfg.mountpoint, "where to mount")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (cfg.debug) cfg.foreground = true;
  std::string err;
  if (!ParseMountOptions(raw_opts, &cfg, &err)) {
    fprintf(stderr, "stripefs-mount: %s\n", err.c_str());
    return 1;
  }
  char real[PATH_MAX];
  struct stat st;
  if (realpath(cfg.mountpoint.c_str(), real) == nullptr ||
      stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr,
            "stripefs-mount: mountpoint %s is missing or not a "
            "directory\n",
            cfg.mountpoint.c_str());
    return 1;
  }
  cfg.mountpoint = real;
  if (!cfg.log_file.empty()) {
    int fd = open(cfg.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
      fprintf(stderr, "stripefs-mount: cannot open log file %s: %s\n",
              cfg.log_file.c_str(), strerror(errno));
      return 1;
    }
    dup2(fd, STDERR_FILENO);
    close(fd);
  }

  int notify_fd = -1;
  if (!cfg.foreground) {
    int fds[2];
    if (pipe(fds) != 0) {
      perror("stripefs-mount: pipe");
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      perror("stripefs-mount: fork");
      return 1;
    }
    if (pid > 0) {
      close(fds[1]);
      std::string msg;
      char buf[512];
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
        if (n < 0) {
          if (errno == EINTR) continue;
          break;
        }
        msg.append(buf, n);
      }
      close(fds[0]);
      if (!msg.empty() && msg[0] == '\0') return 0;
      int status = 0;
      waitpid(pid, &status, 0);
      if (msg.empty()) msg = "\1the mount daemon died during startup";
      fprintf(stderr, "stripefs-mount: %s\n", msg.c_str() + 1);
      return 1;
    }
    close(fds[0]);
    setsid();
    signal(SIGPIPE, SIG_IGN);
    notify_fd = fds[1];
  }
  InitLogging("client", cfg.log_level);
  return RunDaemon(cfg, notify_fd);
}

}  // namespace
}  // namespace stripefs::client

int main(int argc, char** argv) { return stripefs::client::Main(argc, argv); }
