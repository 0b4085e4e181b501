#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/cluster.h"
#include "cli/config.h"
#include "cli/layout.h"
#include "cli/proc.h"
#include "cli/size.h"
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

TEST_F(CliTest, SizeTest_ParsesPlainAndSuffixed) {
  EXPECT_EQ(ParseSize("4096").value(), 4096u);
  EXPECT_EQ(ParseSize("64K").value(), 65536u);
  EXPECT_EQ(ParseSize("64k").value(), 65536u);
  EXPECT_EQ(ParseSize("1M").value(), 1048576u);
  EXPECT_EQ(ParseSize("1MiB").value(), 1048576u);
  EXPECT_EQ(ParseSize("2MB").value(), 2u << 20);
  EXPECT_EQ(ParseSize("3G").value(), 3ull << 30);
  EXPECT_EQ(ParseSize("1T").value(), 1ull << 40);
  EXPECT_EQ(ParseSize("0").value(), 0u);
  EXPECT_EQ(ParseSize("512B").value(), 512u);
}

TEST_F(CliTest, SizeTest_RejectsGarbage) {
  for (const char* bad : {"", "M", "-1", "1X", "1.5M", "1MM", "abc", "1 M x",
                          "99999999999999999999", "20000000000T"}) {
    absl::StatusOr<uint64_t> s = ParseSize(bad);
    EXPECT_FALSE(s.ok()) << bad;
    if (!s.ok()) {
      EXPECT_EQ(ToErrno(s.status()), EINVAL) << bad;
    }
  }
}

TEST_F(CliTest, SizeTest_FormatsHumanSizes) {
  EXPECT_EQ(FormatSize(512), "512");
  EXPECT_EQ(FormatSize(65536), "64K");
  EXPECT_EQ(FormatSize(1536 * 1024), "1.5M");
  EXPECT_EQ(FormatSize(4ull << 30), "4G");
}

TEST_F(CliTest, SizeTest_StripeSizeMustBeMultipleOf64K) {
  EXPECT_TRUE(ValidateStripeSize(65536).ok());
  EXPECT_TRUE(ValidateStripeSize(4 << 20).ok());
  EXPECT_FALSE(ValidateStripeSize(0).ok());
  absl::Status s = ValidateStripeSize(100000);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("64K"), std::string::npos);
}

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

TEST_F(CliTest, LayoutTest_ParsesFileLayout) {
  absl::StatusOr<Layout> l = ParseLayout(
      "stripe_size=1048576 stripe_count=4 stripe_offset=-1 "
      "objects=0:17,1:17,2:18,3:19");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->stripe_size, 1048576u);
  EXPECT_EQ(l->stripe_count, 4);
  EXPECT_EQ(l->stripe_offset, -1);
  ASSERT_EQ(l->objects.size(), 4u);
  EXPECT_EQ(l->objects[2], (StripeObject{2, 18}));
  EXPECT_EQ(FormatLayout(*l),
            "stripe_size=1048576 stripe_count=4 stripe_offset=-1 "
            "objects=0:17,1:17,2:18,3:19");
}

TEST_F(CliTest, LayoutTest_ParsesDirectoryDefaultAndIgnoresUnknownKeys) {
  absl::StatusOr<Layout> l =
      ParseLayout("stripe_size=65536 stripe_count=-1 pool=fast\n");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->stripe_size, 65536u);
  EXPECT_EQ(l->stripe_count, -1);
  EXPECT_EQ(l->stripe_offset, -1);
  EXPECT_TRUE(l->objects.empty());
  std::string with_nul("stripe_size=65536 stripe_count=2", 32);
  with_nul.push_back('\0');
  EXPECT_TRUE(ParseLayout(with_nul).ok());
}

TEST_F(CliTest, LayoutTest_RejectsBadLayouts) {
  EXPECT_FALSE(ParseLayout("").ok());
  EXPECT_FALSE(ParseLayout("stripe_size=1M stripe_count=1").ok());
  EXPECT_FALSE(ParseLayout("stripe_size=65536").ok());
  EXPECT_FALSE(
      ParseLayout("stripe_size=65536 stripe_count=1 objects=0-1").ok());
}

TEST_F(CliTest, LayoutTest_RequestValidationAndSetText) {
  LayoutRequest r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(LayoutSetText(r), "");
  r.stripe_count = 4;
  EXPECT_EQ(LayoutSetText(r), "stripe_count=4");
  r.stripe_size = 1 << 20;
  r.stripe_offset = 2;
  EXPECT_TRUE(ValidateLayoutRequest(r).ok());
  EXPECT_EQ(LayoutSetText(r),
            "stripe_size=1048576 stripe_count=4 stripe_offset=2");
  r.stripe_size = 1000;
  EXPECT_FALSE(ValidateLayoutRequest(r).ok());
  r.stripe_size = 0;
  EXPECT_FALSE(ValidateLayoutRequest(r).ok());
  r.stripe_size = 65536;
  r.stripe_count = -2;
  EXPECT_FALSE(ValidateLayoutRequest(r).ok());
  r.stripe_count = -1;
  r.stripe_offset = -5;
  EXPECT_FALSE(ValidateLayoutRequest(r).ok());
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
  LayoutRequest r;
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
  absl::Status s = ClusterUp(o);
  EXPECT_FALSE(s.ok());
  // The DLM starts first, so its binary is the first one missed.
  EXPECT_NE(std::string(s.message()).find("stripefs-dlm"), std::string::npos);
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
  EXPECT_EQ(ToErrno(ServerStart(dir, "nope", dir + "/nobin")), ENOENT);
  // Stopping a server that is not running succeeds.
  EXPECT_TRUE(ServerStop(dir, "dlm").ok());
  s = ServerStart(dir, "dlm", dir + "/nobin");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("stripefs-dlm"), std::string::npos);
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
