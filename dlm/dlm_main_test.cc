// End-to-end tests of the stripefs-dlm binary: flags, SIGTERM, restart
// with the same data dir (clean and after kill -9).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "dlm/dlm_client.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/proto/dlm.grpc.pb.h"

namespace stripefs::dlm {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

pid_t Spawn(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class DlmMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dlm_main_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    addr_ = "127.0.0.1:" + std::to_string(FreePort());
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      WaitExit(pid_);
    }
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    pid_ = Spawn({STRIPEFS_DLM_BIN, "--listen", addr_, "--data", dir_.string(),
                  "--recovery-window", "2", "--log-level", "warn"});
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (absl::Now() < end) {
      if (Status(&status_)) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "stripefs-dlm did not come up";
  }
  bool Status(rpc::StatusReply* reply) {
    auto stub = rpc::Dlm::NewStub(rpc::MakeChannel(addr_));
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Milliseconds(500));
    return stub->Status(&ctx, rpc::StatusRequest(), reply).ok();
  }

  std::filesystem::path dir_;
  std::string addr_;
  pid_t pid_ = -1;
  rpc::StatusReply status_;
};

TEST_F(DlmMainTest, BadFlagsExitNonZero) {
  EXPECT_NE(WaitExit(Spawn({STRIPEFS_DLM_BIN, "--listen", "nocolon", "--data",
                            dir_.string()})),
            0);
  EXPECT_NE(WaitExit(Spawn({STRIPEFS_DLM_BIN, "--bogus"})), 0);
  EXPECT_NE(WaitExit(Spawn({STRIPEFS_DLM_BIN, "--listen", addr_})), 0);
}

TEST_F(DlmMainTest, LocksSurviveSigtermAndKill9) {
  Start();
  EXPECT_EQ(status_.target(), "dlm");
  auto client = DlmClient::Start({.address = addr_,
                                  .name = "test",
                                  .backoff_max = absl::Milliseconds(200)});
  ASSERT_TRUE(client.ok());
  auto lock = (*client)->Lock({{"flock:ino:1", LockType::kPlain},
                               LockMode::kEX});
  ASSERT_TRUE(lock.ok()) << lock.status();

  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitExit(pid_), 0);
  pid_ = -1;
  Start();
  EXPECT_EQ(status_.info().at("locks"), "1");
  EXPECT_EQ(status_.info().at("recovering"), "false");

  kill(pid_, SIGKILL);
  WaitExit(pid_);
  pid_ = -1;
  Start();
  EXPECT_EQ(status_.info().at("locks"), "1");
  // The client replays and the recovery window closes without waiting.
  const absl::Time end = absl::Now() + absl::Seconds(5);
  while (absl::Now() < end) {
    ASSERT_TRUE(Status(&status_));
    if (status_.info().at("recovering") == "false") break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(status_.info().at("recovering"), "false");
  EXPECT_GE((*client)->RpcCounts()["Replay"], 2u);
  // The lock still excludes others.
  auto other = DlmClient::Start({.address = addr_, .name = "other"});
  ASSERT_TRUE(other.ok());
  LockOptions opts;
  opts.no_wait = true;
  auto r = (*other)->Lock({{"flock:ino:1", LockType::kPlain}, LockMode::kPR},
                          opts);
  EXPECT_FALSE(r.ok());
  (*client)->Release(lock->handle);
  (*other)->Close();
  (*client)->Close();
  kill(pid_, SIGTERM);
  EXPECT_EQ(WaitExit(pid_), 0);
  pid_ = -1;
}

}  // namespace
}  // namespace stripefs::dlm
