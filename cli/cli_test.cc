#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/cluster.h"
#include "cli/cluster_binaries.h"
#include "cli/config.h"
#include "cli/proc.h"
#include "cli/stripe.h"
#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::cli {
namespace {

// A fresh directory under the gtest temp dir, removed with everything in it
// when the test ends.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string tmpl = ::testing::TempDir() + "/cli_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Each test gets one temp dir that lives until the test ends.
class CliTest : public ::testing::Test {
 protected:
  const std::string& TempDir() const { return temp_dir_.path(); }

 private:
  ScopedTempDir temp_dir_;
};

TEST_F(CliTest, ConfigTest_RoundTripsThroughFile) {
  const std::string dir = TempDir();
  ClusterConfig c;
  c.stripe_count = -1;
  c.stripe_size = 4 << 20;
  c.servers = {{"mdt0", "mds", "127.0.0.1:4000", dir + "/mdt0"},
               {"ost0", "oss", "127.0.0.1:4001", dir + "/ost0"},
               {"ost1", "oss", "127.0.0.1:4002", dir + "/ost1"}};
  const std::string path = dir + "/cluster.json";
  ASSERT_TRUE(SaveConfig(path, c).ok());
  absl::StatusOr<ClusterConfig> back = LoadConfig(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  ASSERT_NE(back->Mds(), nullptr);
  EXPECT_EQ(back->Mds()->target, "mdt0");
  ASSERT_EQ(back->Osses().size(), 2u);
  EXPECT_EQ(back->Osses()[1]->address, "127.0.0.1:4002");
  // No leftover temp file.
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0);
}

TEST_F(CliTest, ConfigTest_MissingFileIsENOENTAndBadJsonIsEINVAL) {
  const std::string dir = TempDir();
  absl::StatusOr<ClusterConfig> missing = LoadConfig(dir + "/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ToErrno(missing.status()), ENOENT);
  ASSERT_TRUE(WriteFileAtomic(dir + "/bad.json", "{not json").ok());
  absl::StatusOr<ClusterConfig> bad = LoadConfig(dir + "/bad.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToErrno(bad.status()), EINVAL);
  ASSERT_TRUE(WriteFileAtomic(dir + "/nomds.json",
                              R"({"servers":[{"target":"ost0","role":"oss",)"
                              R"("address":"a","data":"d"}]})")
                  .ok());
  EXPECT_FALSE(LoadConfig(dir + "/nomds.json").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/wrongtype.json",
                              R"({"servers":[{"target":3,"role":"mds",)"
                              R"("address":"a","data":"d"}]})")
                  .ok());
  EXPECT_FALSE(LoadConfig(dir + "/wrongtype.json").ok());
}

TEST_F(CliTest, ConfigTest_MountsRoundTripAndMissingIsEmpty) {
  const std::string dir = TempDir();
  absl::StatusOr<std::vector<MountRecord>> none =
      LoadMounts(dir + "/mounts.json");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  std::vector<MountRecord> m = {{"/tmp/a", 12}, {"/mnt/b c", 34}};
  ASSERT_TRUE(SaveMounts(dir + "/mounts.json", m).ok());
  absl::StatusOr<std::vector<MountRecord>> back =
      LoadMounts(dir + "/mounts.json");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
}

TEST_F(CliTest, LayoutTest_ParsesDfAndFormatsTable) {
  absl::StatusOr<std::vector<DfTarget>> df = ParseDf(
      "mdt0 files=1000 ffree=900\n"
      "ost0 total=1000 free=500 avail=400 objects=3\n"
      "ost1 total=3000 free=1500 avail=1400 objects=5\n");
  ASSERT_TRUE(df.ok()) << df.status();
  ASSERT_EQ(df->size(), 3u);
  EXPECT_TRUE((*df)[0].is_mdt);
  EXPECT_EQ((*df)[0].files, 1000u);
  EXPECT_EQ((*df)[2].avail, 1400u);
  EXPECT_EQ(CountOsts(*df), 2);
  const std::string table = FormatDf("/mnt/x", *df, false);
  EXPECT_NE(table.find("ost1"), std::string::npos);
  // total line sums the OSTs: 4000 bytes, 2000 used, 1800 avail; use% is
  // used / (used + avail) as in df(1): 53%.
  EXPECT_NE(table.find("total"), std::string::npos);
  EXPECT_NE(table.find("4000"), std::string::npos);
  EXPECT_NE(table.find("1800"), std::string::npos);
  EXPECT_NE(table.find("53%"), std::string::npos);
  EXPECT_FALSE(ParseDf("").ok());
  EXPECT_FALSE(ParseDf("disk0 total=1").ok());
  EXPECT_FALSE(ParseDf("ost0 total=x").ok());
}

TEST_F(CliTest, GetStripeTest_PrintsHeaderAndOneLinePerStripe) {
  Layout l{1 << 20, 2, -1, {{0, 17}, {3, 9}}};
  const std::string out = FormatGetStripe("/m/f", l, false);
  EXPECT_NE(out.find("stripe_count:  2"), std::string::npos);
  EXPECT_NE(out.find("stripe_size:   1048576"), std::string::npos);
  EXPECT_NE(out.find("obdidx objid\n     0 17\n     3 9\n"), std::string::npos);
  EXPECT_EQ(FormatGetStripe("/m/d", l, true).find("obdidx"), std::string::npos);
}

TEST_F(CliTest, StripeTest_OutsideStripefsIsAClearError) {
  const std::string dir = TempDir();
  absl::StatusOr<Layout> l = ReadLayout(dir);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(std::string(l.status().message()).find("not on a stripefs"),
            std::string::npos);
  // setstripe on a new path outside stripefs fails and leaves no file.
  LayoutSetting r;
  r.stripe_count = 2;
  EXPECT_FALSE(SetStripe(dir + "/f", r).ok());
  EXPECT_NE(::access((dir + "/f").c_str(), F_OK), 0);
  // Bad input is refused before touching the filesystem.
  r.stripe_size = 1000;
  absl::Status s = SetStripe(dir + "/g", r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(::access((dir + "/g").c_str(), F_OK), 0);
}

TEST_F(CliTest, ProcTest_RunCommandCapturesOutputAndExitCode) {
  absl::StatusOr<CommandResult> r =
      RunCommand({"sh", "-c", "echo hi; exit 3"}, absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "hi\n");
  absl::StatusOr<CommandResult> slow =
      RunCommand({"sleep", "5"}, absl::Milliseconds(200));
  EXPECT_FALSE(slow.ok());
  EXPECT_FALSE(RunCommand({"/nonexistent/binary"}, absl::Seconds(1)).ok());
}

TEST_F(CliTest, ProcTest_SpawnDetachedLogsAndIsTracked) {
  const std::string dir = TempDir();
  const std::string log = dir + "/x.log";
  absl::StatusOr<pid_t> pid =
      SpawnDetached({"/bin/sh", "-c", "echo started; exec sleep 30"}, log);
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_TRUE(ProcessAlive(*pid));
  ASSERT_TRUE(WritePidFile(dir + "/x.pid", *pid).ok());
  EXPECT_EQ(ReadPidFile(dir + "/x.pid").value(), *pid);
  EXPECT_EQ(ReadPidFile(dir + "/none.pid").value(), 0);
  for (int i = 0; i < 100 && TailFile(log, 5).empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_NE(TailFile(log, 5).find("started"), std::string::npos);
  ::kill(*pid, SIGTERM);
  EXPECT_TRUE(WaitForExit(*pid, absl::Seconds(5)));
  EXPECT_FALSE(SpawnDetached({"/nonexistent/binary"}, log).ok());
}

TEST_F(CliTest, ProcTest_FreePortsAreUsable) {
  absl::StatusOr<int> port = PickFreePort();
  ASSERT_TRUE(port.ok());
  EXPECT_GT(*port, 0);
}

TEST_F(CliTest, ClusterTest_DownOnEmptyHomeSucceedsAndStatusExplains) {
  const std::string dir = TempDir();
  EXPECT_TRUE(ClusterDown(dir + "/never-created").ok());
  EXPECT_TRUE(ClusterDown(dir).ok());
  absl::StatusOr<std::vector<ServerState>> st = ClusterStatus(dir);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(std::string(st.status().message()).find("cluster up"),
            std::string::npos);
}

TEST_F(CliTest, ClusterTest_UpRefusesDifferentOssCountAndMissingBinaries) {
  const std::string dir = TempDir();
  UpOptions o;
  o.home = dir;
  o.oss_count = 2;
  o.bin_dir = dir + "/nobin";
  o.mountpoint = dir;
  absl::Status s = ClusterUp(o);
  EXPECT_FALSE(s.ok());
  // Every missing binary is named at once, before anything starts.
  for (const char* exe :
       {"stripefs-dlm", "stripefs-oss", "stripefs-mds", "stripefs-mount"}) {
    EXPECT_NE(std::string(s.message()).find(exe), std::string::npos)
        << s.message();
  }
  EXPECT_NE(std::string(s.message()).find("ninja cluster-binaries"),
            std::string::npos)
      << s.message();
  o.mountpoint.reset();
  absl::StatusOr<ClusterConfig> c = LoadConfig(dir + "/cluster.json");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Osses().size(), 2u);
  ASSERT_NE(c->Dlm(), nullptr);
  EXPECT_EQ(c->Dlm()->target, "dlm");
  o.oss_count = 3;
  s = ClusterUp(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("--oss 3"), std::string::npos);
  // Status of a never-started cluster: every server stopped.
  absl::StatusOr<std::vector<ServerState>> st = ClusterStatus(dir);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->size(), 4u);
  for (const auto& server : *st) {
    EXPECT_EQ(server.state, "stopped");
    EXPECT_EQ(server.pid, 0);
  }
  EXPECT_EQ(st->back().target, "dlm");
  EXPECT_NE(FormatStatusJson(*st).find("\"state\": \"stopped\""),
            std::string::npos);
  // A stopped DLM has no counts to show, but the fields are there.
  EXPECT_NE(FormatStatusJson(*st).find("\"sessions\": null"),
            std::string::npos);
  EXPECT_NE(FormatStatusText(*st).find("sessions=- locks=-"),
            std::string::npos);
}

TEST_F(CliTest, ConfigTest_EveryServerRoleHasAClusterBinary) {
  auto listed = [](const std::string& exe) {
    return std::find(std::begin(kClusterBinaries), std::end(kClusterBinaries),
                     exe) != std::end(kClusterBinaries);
  };
  for (const char* role : kServerRoles) {
    EXPECT_TRUE(IsServerRole(role));
    EXPECT_TRUE(listed(ServerBinary(role))) << role;
  }
  for (const char* role : {"mds", "oss", "dlm"}) {
    EXPECT_TRUE(IsServerRole(role)) << role;
  }
  EXPECT_EQ(ServerBinary("dlm"), "stripefs-dlm");
  EXPECT_TRUE(listed(kMountBinary));
  EXPECT_TRUE(listed("stripefs"));
  EXPECT_FALSE(IsServerRole("mgs"));
  EXPECT_FALSE(IsServerRole(""));
}

// Nothing starts when the mountpoint is taken: /proc stands for a
// mountpoint with another filesystem on it.
TEST_F(CliTest, ClusterTest_UpAndMountRefuseABusyMountpointFirst) {
  const std::string dir = TempDir();
  const std::string bin = dir + "/bin";
  ASSERT_TRUE(MakeDirs(bin).ok());
  for (const char* exe : kClusterBinaries) {
    const std::string path = absl::StrCat(bin, "/", exe);
    std::ofstream(path) << "#!/bin/sh\nexit 1\n";
    ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  }
  UpOptions o;
  o.home = dir + "/home";
  o.bin_dir = bin;
  o.mountpoint = "/proc";
  absl::Status s = ClusterUp(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(std::string(s.message()),
            "/proc is already a mountpoint (proc from proc); unmount it or "
            "choose another directory");
  for (const char* target : {"dlm", "mdt0", "ost0"}) {
    EXPECT_FALSE(std::filesystem::exists(
        absl::StrCat(o.home, "/run/", target, ".pid")))
        << target;
  }
  s = Mount(o.home, "/proc", bin);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("already a mountpoint (proc"),
            std::string::npos)
      << s.message();
  s = Mount(o.home, dir + "/absent", bin);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("is not an existing directory"),
            std::string::npos)
      << s.message();
}

TEST_F(CliTest, ClusterTest_AddsDlmToOldConfigOnFreshPort) {
  const std::string dir = TempDir();
  ClusterConfig c;
  c.servers = {{"mdt0", "mds", "127.0.0.1:4000", dir + "/mdt0"},
               {"ost0", "oss", "127.0.0.1:4001", dir + "/ost0"}};
  ASSERT_TRUE(SaveConfig(dir + "/cluster.json", c).ok());
  UpOptions o;
  o.home = dir;
  o.bin_dir = dir + "/nobin";
  EXPECT_FALSE(ClusterUp(o).ok());  // no binaries, but the entry is added
  absl::StatusOr<ClusterConfig> back = LoadConfig(dir + "/cluster.json");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->servers.size(), 3u);
  const ServerConfig* dlm = back->Dlm();
  ASSERT_NE(dlm, nullptr);
  EXPECT_EQ(dlm->role, "dlm");
  absl::StatusOr<std::string> real = RealPath(dir);
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(dlm->data, *real + "/dlm");
  EXPECT_EQ(dlm->address.rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(dlm->address, "127.0.0.1:4000");
  EXPECT_NE(dlm->address, "127.0.0.1:4001");
  // A second call keeps the one entry.
  absl::StatusOr<bool> again = EnsureDlmEntry(dir, &*back);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(back->servers.size(), 3u);
}

TEST_F(CliTest, ClusterTest_NoDlmLeavesConfigWithoutDlm) {
  const std::string dir = TempDir();
  UpOptions o;
  o.home = dir;
  o.oss_count = 1;
  o.no_dlm = true;
  o.bin_dir = dir + "/nobin";
  absl::Status s = ClusterUp(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("stripefs-oss"), std::string::npos);
  absl::StatusOr<ClusterConfig> c = LoadConfig(dir + "/cluster.json");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Dlm(), nullptr);
  absl::StatusOr<std::vector<ServerState>> st = ClusterStatus(dir);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size(), 2u);
  EXPECT_EQ(FormatStatusText(*st).find("sessions="), std::string::npos);
}

TEST_F(CliTest, ClusterTest_ServerStartStopUnknownTargetAndStopped) {
  const std::string dir = TempDir();
  EXPECT_EQ(ToErrno(ServerStop(dir, "dlm")), ENOENT);  // no cluster
  ClusterConfig c;
  c.servers = {{"mdt0", "mds", "127.0.0.1:4000", dir + "/mdt0"},
               {"ost0", "oss", "127.0.0.1:4001", dir + "/ost0"},
               {"dlm", "dlm", "127.0.0.1:4002", dir + "/dlm"}};
  ASSERT_TRUE(SaveConfig(dir + "/cluster.json", c).ok());
  absl::Status s = ServerStop(dir, "ost7");
  EXPECT_EQ(ToErrno(s), ENOENT);
  EXPECT_NE(std::string(s.message()).find("mdt0, ost0, dlm"),
            std::string::npos);
  StartOptions nobin;
  nobin.default_bin_dir = dir + "/nobin";
  EXPECT_EQ(ToErrno(ServerStart(dir, "nope", nobin)), ENOENT);
  // Stopping a server that is not running succeeds.
  EXPECT_TRUE(ServerStop(dir, "dlm").ok());
  EXPECT_TRUE(ServerStopControlled(dir, "dlm").ok());
  EXPECT_EQ(ToErrno(ServerStopControlled(dir, "ost7")), ENOENT);
  s = ServerStart(dir, "dlm", nobin);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("stripefs-dlm"), std::string::npos);
}

TEST_F(CliTest, ClusterTest_FailoverUnknownNotRunningAndForcedDlm) {
  const std::string dir = TempDir();
  FailoverOptions fo;
  fo.force = true;
  fo.start.default_bin_dir = dir + "/nobin";
  EXPECT_EQ(ToErrno(ServerFailover(dir, "mdt0", fo)), ENOENT);  // no cluster
  ClusterConfig c;
  c.servers = {{"mdt0", "mds", "127.0.0.1:4000", dir + "/mdt0"},
               {"ost0", "oss", "127.0.0.1:4001", dir + "/ost0"},
               {"dlm", "dlm", "127.0.0.1:4002", dir + "/dlm"}};
  ASSERT_TRUE(SaveConfig(dir + "/cluster.json", c).ok());
  absl::Status s = ServerFailover(dir, "ost7", fo);
  EXPECT_EQ(ToErrno(s), ENOENT);
  EXPECT_NE(std::string(s.message()).find("mdt0, ost0, dlm"),
            std::string::npos);
  // Unlike a stop, a failover of a server that is not running is an error
  // (there is nothing to fail over), forced or not; nothing is started.
  s = ServerFailover(dir, "ost0", fo);
  EXPECT_EQ(ToErrno(s), ESRCH);
  EXPECT_NE(std::string(s.message()).find("ost0 is not running"),
            std::string::npos)
      << s;
  fo.force = false;
  EXPECT_EQ(ToErrno(ServerFailover(dir, "mdt0", fo)), ESRCH);
  // The lock service has no forced failover.
  fo.force = true;
  s = ServerFailover(dir, "dlm", fo);
  EXPECT_EQ(ToErrno(s), EINVAL);
  EXPECT_NE(std::string(s.message()).find("no forced failover"),
            std::string::npos)
      << s;
}

TEST_F(CliTest, ClusterTest_StatusFormatsDlmCountsAndRpcCounts) {
  ServerState mds{"mdt0", "mds", "127.0.0.1:1", 10, "running", "0.1"};
  mds.rpc_counts = {{"Lookup", 5}, {"Create", 2}};
  ServerState dlm{"dlm", "dlm", "127.0.0.1:2", 11, "running", "0.1"};
  dlm.sessions = 3;
  dlm.locks = 17;
  dlm.rpc_counts = {{"Enqueue", 40}};
  const std::string text = FormatStatusText({mds, dlm});
  EXPECT_NE(text.find("sessions=3 locks=17"), std::string::npos) << text;
  EXPECT_NE(text.find("rpcs=7"), std::string::npos) << text;
  const std::string json = FormatStatusJson({mds, dlm});
  EXPECT_NE(json.find("\"Lookup\": 5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"sessions\": 3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"locks\": 17"), std::string::npos) << json;
  // Only the DLM carries sessions/locks.
  EXPECT_EQ(json.find("\"sessions\""), json.rfind("\"sessions\""));
}

TEST_F(CliTest, ConfigTest_RuntimeFieldsRoundTripAndValidate) {
  ClusterConfig c;
  c.servers = {{"mdt0", "mds", "127.0.0.1:4000", "/d/mdt0", "/opt/n1/bin"},
               {"ost0", "oss", "127.0.0.1:4001", "/d/ost0", "", "podman",
                "stripefs:1.0.0"}};
  const std::string json = ConfigToJson(c);
  absl::StatusOr<ClusterConfig> back = ConfigFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, c);
  // Empty fields are not written (older CLIs read the file unchanged).
  EXPECT_EQ(json.find("\"image\""), json.rfind("\"image\""));
  EXPECT_EQ(json.find("\"binary_dir\""), json.rfind("\"binary_dir\""));
  const std::string bad_runtime = R"({"servers": [{"target": "mdt0",
      "role": "mds", "address": "a:1", "data": "/d", "runtime": "docker"}]})";
  EXPECT_EQ(ToErrno(ConfigFromJson(bad_runtime).status()), EINVAL);
  const std::string no_image = R"({"servers": [{"target": "mdt0",
      "role": "mds", "address": "a:1", "data": "/d", "runtime": "podman"}]})";
  EXPECT_EQ(ToErrno(ConfigFromJson(no_image).status()), EINVAL);
}

TEST_F(CliTest, UpgradeTest_OrderDefaultsToMdsOssesThenDlm) {
  ClusterConfig c;
  c.servers = {{"dlm", "dlm", "127.0.0.1:4002", "/d/dlm"},
               {"ost1", "oss", "127.0.0.1:4004", "/d/ost1"},
               {"mdt0", "mds", "127.0.0.1:4000", "/d/mdt0"},
               {"ost0", "oss", "127.0.0.1:4001", "/d/ost0"}};
  absl::StatusOr<std::vector<std::string>> order = UpgradeOrder(c, {});
  ASSERT_TRUE(order.ok());
  // OSSs keep their cluster.json order (index order as `cluster up` writes).
  EXPECT_EQ(*order,
            (std::vector<std::string>{"mdt0", "ost1", "ost0", "dlm"}));
  order = UpgradeOrder(c, {"ost0", "dlm"});
  ASSERT_TRUE(order.ok());
  EXPECT_EQ(*order, (std::vector<std::string>{"ost0", "dlm"}));
  absl::Status unknown = UpgradeOrder(c, {"ost9"}).status();
  EXPECT_EQ(ToErrno(unknown), ENOENT);
  EXPECT_NE(std::string(unknown.message()).find("ost9"), std::string::npos);
  EXPECT_EQ(ToErrno(UpgradeOrder(c, {"mdt0", "mdt0"}).status()), EINVAL);
}

TEST_F(CliTest, UpgradeTest_ParsesReleasesAndImageTags) {
  EXPECT_EQ(ParseReleaseOutput("1.1.0\n"), "1.1.0");
  EXPECT_EQ(ParseReleaseOutput("stripefs-mds 1.0.0\n"), "1.0.0");
  EXPECT_EQ(ParseReleaseOutput("stripefs v2.10.3"), "2.10.3");
  EXPECT_EQ(ParseReleaseOutput("--listen is required\n"), std::nullopt);
  EXPECT_EQ(ParseReleaseOutput("1.1"), std::nullopt);
  EXPECT_EQ(ParseReleaseOutput("1.x.0"), std::nullopt);
  EXPECT_EQ(ParseReleaseOutput(""), std::nullopt);
  EXPECT_EQ(ImageRelease("stripefs:1.1.0"), "1.1.0");
  EXPECT_EQ(ImageRelease("localhost:5000/stripefs"), std::nullopt);
  EXPECT_EQ(ImageRelease("stripefs"), std::nullopt);
}

TEST_F(CliTest, StatusTest_ConnectionsParsedAndShown) {
  using Conns = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(ParseConnections("mount-1=2,mds=1"),
            (Conns{{"mount-1", "2"}, {"mds", "1"}}));
  EXPECT_EQ(ParseConnections(""), Conns{});
  EXPECT_EQ(ParseConnections("a=1, broken ,b=2"),
            (Conns{{"a", "1"}, {"broken", "?"}, {"b", "2"}}));
  ServerState mds{"mdt0", "mds", "127.0.0.1:1", 10, "running", "1.1.0"};
  mds.connections = "mount-a=2,mount-b=1";
  ServerState oss{"ost0", "oss", "127.0.0.1:2", 11, "running", "1.0.0"};
  const std::string text = FormatStatusText({mds, oss});
  EXPECT_NE(text.find("connections=mount-a:v2,mount-b:v1"), std::string::npos)
      << text;
  // No info["connections"] (an older server): "-".
  EXPECT_NE(text.find("release=1.0.0 connections=-"), std::string::npos)
      << text;
  const std::string json = FormatStatusJson({mds, oss});
  EXPECT_NE(json.find("\"client\": \"mount-b\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"connections\": null"), std::string::npos) << json;
}

TEST_F(CliTest, PodmanTest_RunArgvUsesHostNetworkAndBindMount) {
  ServerConfig s{"ost1", "oss", "127.0.0.1:4711", "/h/ost1", "", "podman",
                 "stripefs:1.0.0"};
  EXPECT_EQ(ContainerName(s), "stripefs-ost1-4711");
  std::vector<std::string> argv =
      PodmanRunArgv(s, {"--target", "ost1"}, {"STRIPEFS_X"});
  const std::string joined = absl::StrJoin(argv, " ");
  EXPECT_NE(joined.find("--network host"), std::string::npos) << joined;
  EXPECT_NE(joined.find("--volume /h/ost1:/h/ost1"), std::string::npos);
  EXPECT_NE(joined.find("--env STRIPEFS_X"), std::string::npos);
  EXPECT_NE(joined.find(
                "stripefs:1.0.0 /usr/local/bin/stripefs-oss --target ost1"),
            std::string::npos)
      << joined;
  EXPECT_EQ(argv.front(), "run");
}

TEST_F(CliTest, ProcTest_ReapChildGivesExitCode) {
  absl::StatusOr<pid_t> pid =
      SpawnDetached({"/bin/sh", "-c", "exit 3"}, TempDir() + "/log");
  ASSERT_TRUE(pid.ok());
  std::optional<int> code;
  for (int i = 0; i < 200 && !code.has_value(); ++i) {
    code = ReapChild(*pid);
    if (!code.has_value()) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(code, 3);
  EXPECT_EQ(ReapChild(*pid), std::nullopt);  // already reaped
}

// A directory of fake binaries: `stripefs --version` prints `release`, and
// stripefs-oss refuses to start as a real server's startup check does.
void WriteExecutable(const std::string& path, const std::string& text) {
  ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
}

TEST_F(CliTest, UpgradeTest_RefusedStartIsReportedAndStopsTheRoll) {
  const std::string dir = TempDir();
  const std::string bin = dir + "/bin";
  ASSERT_TRUE(MakeDirs(bin).ok());
  WriteExecutable(bin + "/stripefs", "#!/bin/sh\necho 9.8.7\n");
  WriteExecutable(bin + "/stripefs-oss",
                  "#!/bin/sh\necho 'ost0: refusing to start: release 9.8.7 "
                  "after an unclean stop of release 9.8.6' >&2\nexit 3\n");
  ASSERT_TRUE(BinaryRelease(bin, "oss").ok());
  EXPECT_EQ(*BinaryRelease(bin, "oss"), "9.8.7");
  EXPECT_EQ(ToErrno(BinaryRelease(dir, "oss").status()), ENOENT);
  ClusterConfig c;
  c.servers = {{"mdt0", "mds", "127.0.0.1:1", dir + "/mdt0"},
               {"ost0", "oss", "127.0.0.1:2", dir + "/ost0"},
               {"ost1", "oss", "127.0.0.1:3", dir + "/ost1"}};
  ASSERT_TRUE(SaveConfig(dir + "/cluster.json", c).ok());

  StartOptions so;
  so.bin_dir = bin;
  so.start_timeout = absl::Seconds(10);
  absl::Status s = ServerStart(dir, "ost0", so);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(std::string(s.message()).find("refusing to start: release 9.8.7"),
            std::string::npos)
      << s;
  // The binary dir was recorded for later starts.
  absl::StatusOr<ClusterConfig> saved = LoadConfig(dir + "/cluster.json");
  ASSERT_TRUE(saved.ok());
  absl::StatusOr<std::string> real_bin = RealPath(bin);
  ASSERT_TRUE(real_bin.ok());
  EXPECT_EQ(saved->Find("ost0")->binary_dir, *real_bin);
  EXPECT_EQ(saved->Find("ost1")->binary_dir, "");
  // A later start without --binary-dir uses the recorded one, not the
  // default beside the CLI.
  StartOptions later;
  later.default_bin_dir = dir + "/nobin";
  later.start_timeout = absl::Seconds(10);
  s = ServerStart(dir, "ost0", later);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  s = ServerStart(dir, "ost1", later);
  EXPECT_EQ(ToErrno(s), ENOENT) << s;
  EXPECT_NE(std::string(s.message()).find("/nobin/stripefs-oss"),
            std::string::npos)
      << s;

  // The roll stops at ost0: ost1 is never started (nor recorded).
  UpgradeOptions uo;
  uo.home = dir;
  uo.bin_dir = bin;
  uo.targets = {"ost0", "ost1"};
  uo.start_timeout = absl::Seconds(10);
  s = Upgrade(uo);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  saved = LoadConfig(dir + "/cluster.json");
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->Find("ost1")->binary_dir, "");
}

TEST_F(CliTest, ClusterTest_UpRejectsBadStripeDefaults) {
  const std::string dir = TempDir();
  UpOptions o;
  o.home = dir;
  o.oss_count = 2;
  o.stripe_count = 3;
  EXPECT_FALSE(ClusterUp(o).ok());
  o.stripe_count = 1;
  o.stripe_size = 1000;
  EXPECT_FALSE(ClusterUp(o).ok());
  EXPECT_NE(::access((dir + "/cluster.json").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace stripefs::cli
