// Component test: MdsService over real gRPC on 127.0.0.1 (port 0), core on
// the in-memory store with fake OSTs. Bad input gets an errno and the
// server stays up.
#include "common/version.h"
#include "mds/mds_service.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <thread>

#include "absl/time/clock.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "rpc/status.h"
#include "rpc/wire_v2.h"

namespace stripefs::mds {
namespace {

class MdsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = storage::NewMemKv();
    osts_ = std::make_unique<FakeOstPool>(2);
    MdsOptions opts;
    opts.default_stripe_count = -1;
    core_ = std::make_unique<MdsCore>(store_.get(), osts_.get(), RealClock(),
                                      opts);
    ASSERT_TRUE(core_->Start().ok());
    service_ = std::make_unique<MdsService>(core_.get(), "mdt0", 42);
    grpc::ServerBuilder builder;
    rpc::ConfigureServer(builder);
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    service_->RegisterWith(builder);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    channel_ = rpc::MakeChannel("127.0.0.1:" + std::to_string(port));
    stub_ = rpc::Mds::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    core_->Stop();
  }

  // Runs a call with a deadline; returns the errno (0 on success).
  template <typename Req, typename Rep, typename Fn>
  int Call(Fn fn, const Req& req, Rep* rep) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(10));
    return ToErrno(rpc::FromGrpc((stub_.get()->*fn)(&ctx, req, rep)));
  }

  rpc::MkdirRequest Mkdir(uint64_t parent, const std::string& name) {
    rpc::MkdirRequest r;
    r.mutable_hdr()->set_client_id(1);
    r.mutable_hdr()->set_xid(++xid_);
    r.set_parent(parent);
    r.set_name(name);
    r.set_mode(0755);
    return r;
  }

  bool ServerUp() {
    rpc::StatusRequest req;
    rpc::StatusReply rep;
    return Call(&rpc::Mds::Stub::Status, req, &rep) == 0 &&
           rep.state() == "running";
  }

  std::unique_ptr<storage::KvStore> store_;
  std::unique_ptr<FakeOstPool> osts_;
  std::unique_ptr<MdsCore> core_;
  std::unique_ptr<MdsService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rpc::Mds::Stub> stub_;
  uint64_t xid_ = 0;
};

TEST_F(MdsServiceTest, ConnectStatusAndConfig) {
  rpc::ConnectReply cr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Connect,
                 rpc::MakeConnectRequest(9, "client", "test"), &cr),
            0);
  EXPECT_EQ(cr.target(), "mdt0");
  EXPECT_EQ(cr.instance(), 42u);
  rpc::ConnectRequest bad = rpc::MakeConnectRequest(9, "client", "test");
  bad.set_proto_min(100);
  bad.set_proto_max(200);
  EXPECT_EQ(Call(&rpc::Mds::Stub::Connect, bad, &cr), EPROTO);

  rpc::GetConfigReply gc;
  ASSERT_EQ(Call(&rpc::Mds::Stub::GetConfig, rpc::GetConfigRequest(), &gc), 0);
  EXPECT_EQ(gc.root_ino(), 1u);
  EXPECT_EQ(gc.osts_size(), 2);

  rpc::StatusReply st;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Status, rpc::StatusRequest(), &st), 0);
  EXPECT_EQ(st.target(), "mdt0");
  EXPECT_EQ(st.state(), "running");
  EXPECT_GT(st.pid(), 0);
  EXPECT_EQ(st.rpc_counts().at("Connect"), 2u);
  EXPECT_EQ(st.rpc_counts().at("GetConfig"), 1u);
  // Only the answered Connect is listed, with its protocol.
  EXPECT_EQ(st.info().at("connections"),
            "test=" + std::to_string(rpc::kProtoMax));
  rpc::ConnectRequest old = rpc::MakeConnectRequest(10, "client", "old",
                                                    rpc::kReleaseN);
  ASSERT_EQ(Call(&rpc::Mds::Stub::Connect, old, &cr), 0);
  EXPECT_EQ(cr.proto(), 1u);
  ASSERT_EQ(Call(&rpc::Mds::Stub::Status, rpc::StatusRequest(), &st), 0);
  EXPECT_EQ(st.info().at("connections"),
            "test=" + std::to_string(rpc::kProtoMax) + ",old=1");
}

#if STRIPEFS_PROTO_MAX >= 2
// Open2 (protocol 2) goes down the Open path: same handle semantics, same
// errors, O_TRUNC truncates; a malformed intent is EINVAL.
TEST_F(MdsServiceTest, Open2IsServedLikeOpen) {
  rpc::CreateRequest cr;
  cr.mutable_hdr()->set_client_id(1);
  cr.mutable_hdr()->set_xid(++xid_);
  cr.set_parent(1);
  cr.set_name("f");
  cr.set_mode(S_IFREG | 0644);
  cr.set_flags(O_CREAT | O_WRONLY);
  rpc::CreateReply created;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Create, cr, &created), 0);
  const uint64_t ino = created.entry().attr().ino();
  rpc::UpdateSizeRequest us;
  us.mutable_hdr()->set_client_id(1);
  us.mutable_hdr()->set_xid(++xid_);
  us.set_ino(ino);
  us.set_size(5000);
  rpc::Entry e;
  ASSERT_EQ(Call(&rpc::Mds::Stub::UpdateSize, us, &e), 0);

  auto v2 = rpc::MdsV2::NewStub(channel_);
  auto open2 = [&](uint32_t flags, uint64_t cookie, rpc::Open2Reply* out) {
    rpc::OpenRequest v1;
    v1.mutable_hdr()->set_client_id(1);
    v1.mutable_hdr()->set_xid(++xid_);
    v1.set_ino(ino);
    v1.set_flags(flags);
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(10));
    return ToErrno(
        rpc::FromGrpc(v2->Open2(&ctx, rpc::ToOpen2(v1, cookie), out)));
  };
  rpc::Open2Reply r;
  ASSERT_EQ(open2(O_RDONLY, 77, &r), 0);
  EXPECT_NE(r.handle(), 0u);
  EXPECT_EQ(r.client_cookie(), 77u);
  EXPECT_FALSE(r.reopened());
  EXPECT_FALSE(r.truncated());
  EXPECT_EQ(r.entry().attr().size(), 5000u);
  const uint64_t first = r.handle();
  ASSERT_EQ(open2(O_RDWR | O_TRUNC, 78, &r), 0);
  EXPECT_NE(r.handle(), first);
  EXPECT_TRUE(r.truncated());
  EXPECT_EQ(r.entry().attr().size(), 0u);

  rpc::Open2Request bad;
  bad.set_ino(ino);  // no access mode
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, absl::Seconds(10));
  EXPECT_EQ(ToErrno(rpc::FromGrpc(v2->Open2(&ctx, bad, &r))), EINVAL);

  rpc::StatusReply st;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Status, rpc::StatusRequest(), &st), 0);
  EXPECT_EQ(st.rpc_counts().at("Open2"), 3u);
  EXPECT_EQ(st.rpc_counts().at("Open"), 2u);  // the two that got through
}
#endif

TEST_F(MdsServiceTest, CreateStatReaddirRemove) {
  rpc::CreateRequest c;
  c.mutable_hdr()->set_client_id(1);
  c.mutable_hdr()->set_xid(1);
  c.set_parent(1);
  c.set_name("file");
  c.set_mode(0640);
  c.set_flags(O_CREAT | O_EXCL | O_RDWR);
  rpc::CreateReply cr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Create, c, &cr), 0);
  EXPECT_NE(cr.handle(), 0u);
  EXPECT_EQ(cr.entry().attr().mode(), S_IFREG | 0640u);
  EXPECT_EQ(cr.entry().layout().objects_size(), 2);  // stripe count -1
  const uint64_t handle = cr.handle();
  // The same request resent (same xid) is answered from its reply record.
  ASSERT_EQ(Call(&rpc::Mds::Stub::Create, c, &cr), 0);
  EXPECT_EQ(cr.handle(), handle);
  c.mutable_hdr()->set_xid(2);  // a new request is executed
  EXPECT_EQ(Call(&rpc::Mds::Stub::Create, c, &cr), EEXIST);

  rpc::GetAttrRequest ga;
  ga.set_ino(cr.entry().attr().ino());
  rpc::Entry e;
  ASSERT_EQ(Call(&rpc::Mds::Stub::GetAttr, ga, &e), 0);
  EXPECT_EQ(e.attr().nlink(), 1u);

  rpc::ReaddirRequest rd;
  rd.set_ino(1);
  rd.set_plus(true);
  rpc::ReaddirReply rr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Readdir, rd, &rr), 0);
  ASSERT_EQ(rr.entries_size(), 1);
  EXPECT_EQ(rr.entries(0).name(), "file");
  EXPECT_EQ(rr.entries(0).entry().attr().ino(), ga.ino());
  EXPECT_TRUE(rr.eof());

  rpc::RemoveRequest rm;
  rm.set_parent(1);
  rm.set_name("file");
  rpc::RemoveReply rmr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Remove, rm, &rmr), 0);
  // Still open: attributes stay readable until release.
  ASSERT_EQ(Call(&rpc::Mds::Stub::GetAttr, ga, &e), 0);
  EXPECT_EQ(e.attr().nlink(), 0u);
  rpc::ReleaseRequest rel;
  rel.set_handle(cr.handle());
  rpc::ReleaseReply relr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Release, rel, &relr), 0);
  EXPECT_EQ(Call(&rpc::Mds::Stub::GetAttr, ga, &e), ENOENT);
}

// Seed 002: once a forced failover began every RPC answers UNAVAILABLE
// "failing over" — a request executing at that moment (held before its
// commit) meets the read-only store and its EROFS never reaches the
// client; a request that completed before is not answered again (the next
// instance answers its resend from the reply record); nothing is stored.
TEST_F(MdsServiceTest, ForcedFailoverAnswersUnavailableNeverTheResult) {
  rpc::MkdirRequest done = Mkdir(1, "done");
  rpc::Entry e;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Mkdir, done, &e), 0);
  ASSERT_TRUE(fault::Configure("mds.before_commit=delay:800*1", 1).ok());
  rpc::MkdirRequest held = Mkdir(1, "held");
  grpc::Status in_flight;
  std::thread t([&] {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(10));
    rpc::Entry out;
    in_flight = stub_->Mkdir(&ctx, held, &out);
  });
  for (int i = 0; i < 200 && fault::Fired("mds.before_commit") == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(fault::Fired("mds.before_commit"), 1u);
  service_->BeginForcedFailover();
  store_->SetReadOnly(true);
  t.join();
  ASSERT_TRUE(fault::Configure("", 1).ok());
  EXPECT_EQ(in_flight.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(in_flight.error_message(), server::kFailingOverMessage);
  EXPECT_EQ(ToErrno(core_->Lookup(Cred{}, 1, "held").status()), ENOENT);

  // Everything else, the resend of the completed request, reads and
  // Status included, is UNAVAILABLE too.
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, absl::Seconds(10));
  grpc::Status resend = stub_->Mkdir(&ctx, done, &e);
  EXPECT_EQ(resend.error_code(), grpc::StatusCode::UNAVAILABLE);
  rpc::GetAttrRequest ga;
  ga.set_ino(1);
  grpc::ClientContext ctx2;
  rpc::SetDeadline(ctx2, absl::Seconds(10));
  EXPECT_EQ(stub_->GetAttr(&ctx2, ga, &e).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(ServerUp());
  EXPECT_TRUE(core_->Lookup(Cred{}, 1, "done").ok());
}

TEST_F(MdsServiceTest, NonsenseGetsErrorsAndServerStaysUp) {
  rpc::Entry e;
  // Unknown inodes.
  rpc::GetAttrRequest ga;
  ga.set_ino(123456789);
  EXPECT_EQ(Call(&rpc::Mds::Stub::GetAttr, ga, &e), ENOENT);
  ga.set_ino(0);
  EXPECT_EQ(Call(&rpc::Mds::Stub::GetAttr, ga, &e), ENOENT);
  rpc::LookupRequest lk;
  lk.set_parent(999);
  lk.set_name("x");
  EXPECT_EQ(Call(&rpc::Mds::Stub::Lookup, lk, &e), ENOENT);
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(999, "x"), &e), ENOENT);
  rpc::ReleaseRequest rel;
  rel.set_handle(77);
  rpc::ReleaseReply relr;
  EXPECT_EQ(Call(&rpc::Mds::Stub::Release, rel, &relr), EBADF);
  EXPECT_TRUE(ServerUp());

  // Names.
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(1, std::string(256, 'n')), &e),
            ENAMETOOLONG);
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(1, "a/b"), &e), EINVAL);
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(1, ""), &e), EINVAL);
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(1, "."), &e), EEXIST);
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(1, ".."), &e), EEXIST);
  lk.set_parent(1);
  lk.set_name(std::string(1000, 'n'));
  EXPECT_EQ(Call(&rpc::Mds::Stub::Lookup, lk, &e), ENAMETOOLONG);
  EXPECT_TRUE(ServerUp());

  // A file to abuse.
  rpc::CreateRequest c;
  c.set_parent(1);
  c.set_name("f");
  c.set_mode(0644);
  c.set_flags(O_CREAT | O_RDWR);
  rpc::CreateReply cr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Create, c, &cr), 0);
  const uint64_t ino = cr.entry().attr().ino();

  // Negative (as uint64) and huge sizes.
  rpc::SetAttrRequest sa;
  sa.set_ino(ino);
  sa.set_valid(rpc::SETATTR_SIZE);
  sa.set_size(static_cast<uint64_t>(int64_t{-1}));
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetAttr, sa, &e), EFBIG);
  rpc::UpdateSizeRequest us;
  us.set_ino(ino);
  us.set_size(static_cast<uint64_t>(int64_t{-4096}));
  EXPECT_EQ(Call(&rpc::Mds::Stub::UpdateSize, us, &e), EFBIG);
  us.set_size(10);
  us.mutable_mtime()->set_nsec(2000000000);
  EXPECT_EQ(Call(&rpc::Mds::Stub::UpdateSize, us, &e), EINVAL);
  rpc::SetLayoutRequest sl;
  sl.set_ino(ino);
  sl.set_stripe_size(12345);
  rpc::LayoutReply lr;
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetLayout, sl, &lr), EINVAL);
  sl.set_stripe_size(0);
  sl.set_stripe_count(-7);
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetLayout, sl, &lr), EINVAL);
  sl.set_stripe_count(3);
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetLayout, sl, &lr), EINVAL);
  sl.set_stripe_count(0);
  sl.set_stripe_offset(5);
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetLayout, sl, &lr), EINVAL);
  rpc::RenameRequest rn;
  rn.set_parent(1);
  rn.set_name("f");
  rn.set_new_parent(1);
  rn.set_new_name("g");
  rn.set_flags(0xff);
  rpc::RenameReply rnr;
  EXPECT_EQ(Call(&rpc::Mds::Stub::Rename, rn, &rnr), EINVAL);
  rpc::ReaddirRequest rd;
  rd.set_ino(ino);  // not a directory
  rpc::ReaddirReply rr;
  EXPECT_EQ(Call(&rpc::Mds::Stub::Readdir, rd, &rr), ENOTDIR);
  rd.set_ino(1);
  rd.set_cookie(~0ULL);
  ASSERT_EQ(Call(&rpc::Mds::Stub::Readdir, rd, &rr), 0);
  EXPECT_TRUE(rr.eof());
  EXPECT_TRUE(ServerUp());

  // Oversized message: refused by the transport, server keeps serving.
  rpc::SetXattrRequest sx;
  sx.set_ino(ino);
  sx.set_name("user.huge");
  sx.set_value(std::string(rpc::kMaxMessageBytes + 1024, 'x'));
  rpc::XattrReply xr;
  EXPECT_NE(Call(&rpc::Mds::Stub::SetXattr, sx, &xr), 0);
  sx.set_value(std::string(70000, 'x'));
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetXattr, sx, &xr), E2BIG);
  sx.set_name("user." + std::string(300, 'n'));
  sx.set_value("v");
  EXPECT_EQ(Call(&rpc::Mds::Stub::SetXattr, sx, &xr), ERANGE);
  rpc::GetXattrRequest gx;
  gx.set_ino(ino);
  gx.set_name("user.none");
  rpc::GetXattrReply gxr;
  EXPECT_EQ(Call(&rpc::Mds::Stub::GetXattr, gx, &gxr), ENODATA);
  EXPECT_TRUE(ServerUp());
  rpc::StatusReply st;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Status, rpc::StatusRequest(), &st), 0);
  EXPECT_GE(st.rpc_counts().at("Mkdir"), 6u);
}

TEST_F(MdsServiceTest, StatfsSumsOsts) {
  rpc::StatfsReply sr;
  ASSERT_EQ(Call(&rpc::Mds::Stub::Statfs, rpc::StatfsRequest(), &sr), 0);
  EXPECT_EQ(sr.bsize(), 4096u);
  EXPECT_EQ(sr.blocks(), 2 * ((1ULL << 30) / 4096));
  EXPECT_EQ(sr.files() - sr.ffree(), 1u);
  EXPECT_EQ(sr.namelen(), 255u);
}

// A minimal OSS speaking the real protocol, to drive the gRPC OstPool.
class FakeOss final : public rpc::Oss::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*, const rpc::ConnectRequest* req,
                       rpc::ConnectReply* reply) override {
    connects_++;
    auto r = rpc::AnswerConnect(*req, "ost0", 5);
    if (r.ok()) *reply = *r;
    return rpc::ToGrpc(r.status());
  }
  grpc::Status Precreate(grpc::ServerContext*, const rpc::PrecreateRequest* req,
                         rpc::PrecreateReply* reply) override {
    if (connects_ == 0) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no handshake");
    absl::MutexLock l(&mu_);
    reply->set_first_oid(next_);
    reply->set_count(req->count());
    next_ += req->count();
    return grpc::Status::OK;
  }
  grpc::Status Destroy(grpc::ServerContext*, const rpc::DestroyRequest* req,
                       rpc::Empty*) override {
    absl::MutexLock l(&mu_);
    for (uint64_t oid : req->oids()) destroyed_.push_back(oid);
    return grpc::Status::OK;
  }
  grpc::Status Statfs(grpc::ServerContext*, const rpc::OssStatfsRequest*,
                      rpc::OssStatfsReply* reply) override {
    reply->set_total_bytes(1 << 20);
    reply->set_free_bytes(1 << 19);
    reply->set_avail_bytes(1 << 18);
    return grpc::Status::OK;
  }
  std::vector<uint64_t> destroyed() {
    absl::MutexLock l(&mu_);
    return destroyed_;
  }
  std::atomic<int> connects_{0};

 private:
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 100;
  std::vector<uint64_t> destroyed_ ABSL_GUARDED_BY(mu_);
};

TEST(GrpcOstPoolTest, PrecreateDestroyStatfsThroughRealOss) {
  FakeOss oss;
  grpc::ServerBuilder builder;
  rpc::ConfigureServer(builder);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&oss);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto pool = NewGrpcOstPool({{0, "127.0.0.1:" + std::to_string(port), true}}, 1);
  auto store = storage::NewMemKv();
  MdsOptions opts;
  opts.background_threads = false;
  opts.precreate_batch = 16;
  MdsCore core(store.get(), pool.get(), RealClock(), opts);
  ASSERT_TRUE(core.Start().ok());
  auto c = core.Create({1, 1}, Cred{}, kRootIno, "f", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(oss.connects_.load(), 1);
  ASSERT_EQ(c->inode.layout.objects.size(), 1u);
  EXPECT_EQ(c->inode.layout.objects[0].oid, 100u);
  ASSERT_TRUE(core.Release({1, 2}, c->handle).ok());
  ASSERT_TRUE(core.Remove({1, 3}, Cred{}, kRootIno, "f", false).ok());
  auto d = core.DrainDestroyQueue();
  ASSERT_TRUE(d.ok()) << d.status();
  // 1..99 existed on the OST before this MDT used it: orphans (no file
  // here has them), destroyed with the first precreate's answer.
  std::vector<uint64_t> want;
  for (uint64_t oid = 1; oid <= 100; ++oid) want.push_back(oid);
  EXPECT_EQ(oss.destroyed(), want);
  auto sf = core.Statfs();
  ASSERT_TRUE(sf.ok());
  EXPECT_EQ(sf->blocks, (1u << 20) / 4096);
  EXPECT_EQ(sf->bavail, (1u << 18) / 4096);
  server->Shutdown();
  // The OST is gone: the pool is still full, creates go on without it.
  auto c2 = core.Create({1, 4}, Cred{}, kRootIno, "g", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ(c2->inode.layout.objects[0].oid, 101u);
  core.Stop();
}

// A reply lost by the fault points (`drop`) reaches the client as gRPC
// UNAVAILABLE, the code a cut connection gives, so it resends with the same
// xid; the resent mkdir is answered from its reply record, not EEXIST.
TEST_F(MdsServiceTest, DroppedRepliesAreUnavailableAndResendsAnsweredOnce) {
  ASSERT_TRUE(fault::Configure("mds.after_commit=drop", 1).ok());
  rpc::MkdirRequest mk = Mkdir(1, "d");
  rpc::Entry e;
  {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(10));
    grpc::Status gs = stub_->Mkdir(&ctx, mk, &e);
    EXPECT_EQ(gs.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(gs.error_message().find("reply dropped"), std::string::npos);
  }
  ASSERT_EQ(Call(&rpc::Mds::Stub::Mkdir, mk, &e), 0);
  const uint64_t ino = e.attr().ino();
  EXPECT_NE(ino, 0u);
  // Reads too, once the core answered (mds.before_reply).
  ASSERT_TRUE(fault::Configure("mds.before_reply=drop", 1).ok());
  rpc::GetAttrRequest ga;
  ga.set_ino(ino);
  {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(10));
    EXPECT_EQ(stub_->GetAttr(&ctx, ga, &e).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  ASSERT_EQ(Call(&rpc::Mds::Stub::GetAttr, ga, &e), 0);
  EXPECT_EQ(e.attr().ino(), ino);
  ASSERT_TRUE(fault::Configure("", 1).ok());
  EXPECT_EQ(Call(&rpc::Mds::Stub::Mkdir, Mkdir(1, "d"), &e), EEXIST);
}

}  // namespace
}  // namespace stripefs::mds
