// Process tests of the stripefs-oss binary: flag and data-dir errors exit
// non-zero; a running server answers Status and exits 0 on SIGTERM with its
// data intact for the next start.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/proto/oss.grpc.pb.h"

extern char** environ;

namespace {

// Runs the binary with args; returns its pid (or -1).
pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string bin = STRIPEFS_OSS_BIN;
  argv.push_back(bin.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    return -1;
  }
  return pid;
}

int ExitCode(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

class OssMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/oss_main.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (pid_ > 0) {  // the test failed with the server still up
      kill(pid_, SIGKILL);
      ExitCode(pid_);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Waits until Status answers; false after 20 s.
  bool WaitUp(stripefs::rpc::Oss::Stub* stub, std::string* target) {
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      stripefs::rpc::SetDeadline(ctx, absl::Milliseconds(500));
      stripefs::rpc::StatusReply reply;
      if (stub->Status(&ctx, stripefs::rpc::StatusRequest(), &reply).ok()) {
        *target = reply.target();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string dir_;
  pid_t pid_ = -1;
};

TEST_F(OssMainTest, BadFlagsExitNonZero) {
  EXPECT_NE(ExitCode(Spawn({"--target", "ost0"})), 0);
  EXPECT_NE(ExitCode(Spawn({"--target", "ost0", "--listen", "nonsense",
                            "--data", dir_ + "/d"})),
            0);
  EXPECT_NE(ExitCode(Spawn({"--target", "ost0", "--listen", "127.0.0.1:1",
                            "--data", dir_ + "/d", "--bogus"})),
            0);
  // Unusable data dir: parent missing.
  EXPECT_NE(ExitCode(Spawn({"--target", "ost0", "--listen", "127.0.0.1:0",
                            "--data", dir_ + "/no/such/dir"})),
            0);
}

TEST_F(OssMainTest, ServesThenStopsCleanlyOnSigterm) {
  int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  const std::vector<std::string> args = {"--target", "ost3", "--listen", addr,
                                         "--data", dir_ + "/ost3",
                                         "--log-level", "warn"};
  auto stub = stripefs::rpc::Oss::NewStub(stripefs::rpc::MakeChannel(addr));
  uint64_t oid = 0;
  for (int round = 0; round < 2; ++round) {
    pid_ = Spawn(args);
    ASSERT_GT(pid_, 0);
    std::string target;
    ASSERT_TRUE(WaitUp(stub.get(), &target));
    EXPECT_EQ(target, "ost3");
    if (round == 0) {
      grpc::ClientContext pctx;
      stripefs::rpc::SetDeadline(pctx);
      stripefs::rpc::PrecreateRequest preq;
      preq.set_count(1);
      stripefs::rpc::PrecreateReply prep;
      ASSERT_TRUE(stub->Precreate(&pctx, preq, &prep).ok());
      oid = prep.first_oid();
      grpc::ClientContext wctx;
      stripefs::rpc::SetDeadline(wctx);
      stripefs::rpc::WriteRequest wreq;
      wreq.set_oid(oid);
      wreq.set_data("survives restart");
      wreq.set_sync(true);
      stripefs::rpc::WriteReply wrep;
      ASSERT_TRUE(stub->Write(&wctx, wreq, &wrep).ok());
    } else {
      grpc::ClientContext rctx;
      stripefs::rpc::SetDeadline(rctx);
      stripefs::rpc::ReadRequest rreq;
      rreq.set_oid(oid);
      rreq.set_length(100);
      stripefs::rpc::ReadReply rrep;
      ASSERT_TRUE(stub->Read(&rctx, rreq, &rrep).ok());
      EXPECT_EQ(rrep.data(), "survives restart");
    }
    ASSERT_EQ(kill(pid_, SIGTERM), 0);
    EXPECT_EQ(ExitCode(pid_), 0);
    pid_ = -1;
  }
}

}  // namespace
