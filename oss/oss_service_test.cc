// Component tests: OssService through real gRPC on 127.0.0.1, in-process.
#include "oss/oss_service.h"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "common/version.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/status.h"
#include "rpc/wire_v2.h"

namespace stripefs::oss {
namespace {

class OssServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/oss_svc.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = ObjectStore::Open({.data_dir = dir_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    service_ = std::make_unique<OssService>(
        OssServiceOptions{.target = "ost7", .instance = 1234}, store_.get());
    int port = 0;
    auto server = StartOssServer(service_.get(), "127.0.0.1:0", &port);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = rpc::MakeChannel("127.0.0.1:" + std::to_string(port));
    stub_ = rpc::Oss::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    service_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint64_t NewObject() {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::PrecreateRequest req;
    req.set_count(1);
    rpc::PrecreateReply reply;
    grpc::Status s = stub_->Precreate(&ctx, req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(reply.count(), 1u);
    return reply.first_oid();
  }
  absl::Status Write(uint64_t oid, uint64_t off, const std::string& data,
                     rpc::WriteReply* reply = nullptr) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::WriteRequest req;
    req.mutable_hdr()->set_client_id(1);
    req.mutable_hdr()->set_xid(++xid_);
    req.set_oid(oid);
    req.set_offset(off);
    req.set_data(data);
    rpc::WriteReply r;
    return rpc::FromGrpc(stub_->Write(&ctx, req, reply ? reply : &r));
  }
  absl::Status Read(uint64_t oid, uint64_t off, uint32_t len,
                    rpc::ReadReply* reply) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::ReadRequest req;
    req.set_oid(oid);
    req.set_offset(off);
    req.set_length(len);
    return rpc::FromGrpc(stub_->Read(&ctx, req, reply));
  }
  // True when the server answers Status as a running ost7.
  bool ServerAnswers(rpc::StatusReply* out = nullptr) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(5));
    rpc::StatusReply reply;
    grpc::Status s = stub_->Status(&ctx, rpc::StatusRequest(), &reply);
    if (out != nullptr) *out = reply;
    return s.ok() && reply.target() == "ost7" && reply.state() == "running";
  }

  std::string dir_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<OssService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rpc::Oss::Stub> stub_;
  uint64_t xid_ = 0;
};

TEST_F(OssServiceTest, ConnectNegotiates) {
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx);
  rpc::ConnectReply reply;
  grpc::Status s = stub_->Connect(
      &ctx, rpc::MakeConnectRequest(9, "client", "test"), &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reply.target(), "ost7");
  EXPECT_EQ(reply.instance(), 1234u);
  EXPECT_EQ(reply.release(), kRelease);
  EXPECT_EQ(reply.proto(), rpc::kProtoMax);

  grpc::ClientContext ctx2;
  rpc::SetDeadline(ctx2);
  rpc::ConnectRequest bad = rpc::MakeConnectRequest(9, "client", "test");
  bad.set_proto_min(rpc::kProtoMax + 1);
  bad.set_proto_max(rpc::kProtoMax + 5);
  absl::Status st = rpc::FromGrpc(stub_->Connect(&ctx2, bad, &reply));
  EXPECT_EQ(ToErrno(st), EPROTO);
}

TEST_F(OssServiceTest, WriteReadRoundTripAndStatus) {
  uint64_t oid = NewObject();
  rpc::WriteReply wr;
  std::string data(1 << 20, 'q');
  ASSERT_TRUE(Write(oid, 4096, data, &wr).ok());
  EXPECT_EQ(wr.object_size(), 4096u + data.size());
  rpc::ReadReply rr;
  ASSERT_TRUE(Read(oid, 0, 2 << 20, &rr).ok());
  EXPECT_EQ(rr.object_size(), 4096u + data.size());
  ASSERT_EQ(rr.data().size(), 4096u + data.size());
  EXPECT_EQ(rr.data().substr(0, 4096), std::string(4096, '\0'));
  EXPECT_EQ(rr.data().substr(4096), data);

  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx);
  rpc::ObjAttrRequest ar;
  ar.set_oid(oid);
  rpc::ObjAttrReply attr;
  ASSERT_TRUE(stub_->ObjAttr(&ctx, ar, &attr).ok());
  EXPECT_EQ(attr.size(), 4096u + data.size());
  EXPECT_GE(attr.blocks() * 512, data.size());

  grpc::ClientContext sctx;
  rpc::SetDeadline(sctx);
  rpc::SyncRequest sync;
  sync.add_oids(oid);
  rpc::Empty empty;
  EXPECT_TRUE(stub_->Sync(&sctx, sync, &empty).ok());

  grpc::ClientContext fctx;
  rpc::SetDeadline(fctx);
  rpc::OssStatfsReply sf;
  ASSERT_TRUE(stub_->Statfs(&fctx, rpc::OssStatfsRequest(), &sf).ok());
  EXPECT_EQ(sf.objects(), 1u);
  EXPECT_GT(sf.total_bytes(), 0u);

  rpc::StatusReply status;
  ASSERT_TRUE(ServerAnswers(&status));
  EXPECT_EQ(status.release(), kRelease);
  EXPECT_EQ(status.instance(), 1234u);
  EXPECT_GT(status.pid(), 0);
  EXPECT_EQ(status.rpc_counts().at("Write"), 1u);
  EXPECT_EQ(status.rpc_counts().at("Read"), 1u);
  EXPECT_EQ(status.rpc_counts().at("Precreate"), 1u);
}

TEST_F(OssServiceTest, UnknownObjectIsEnoentOverTheWire) {
  rpc::ReadReply rr;
  EXPECT_EQ(ToErrno(Read(424242, 0, 10, &rr)), ENOENT);
  EXPECT_EQ(ToErrno(Write(424242, 0, "x")), ENOENT);
  uint64_t oid = NewObject();
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx);
  rpc::DestroyRequest dr;
  dr.add_oids(oid);
  dr.add_oids(999999);  // unknown: skipped
  rpc::Empty empty;
  ASSERT_TRUE(stub_->Destroy(&ctx, dr, &empty).ok());
  EXPECT_EQ(ToErrno(Read(oid, 0, 10, &rr)), ENOENT);
  EXPECT_TRUE(ServerAnswers());
}

TEST_F(OssServiceTest, HugeOffsetsAreRefused) {
  uint64_t oid = NewObject();
  EXPECT_EQ(ToErrno(Write(oid, UINT64_MAX - 2, "abcdef")), EINVAL);
  EXPECT_EQ(ToErrno(Write(oid, uint64_t{1} << 62, "abc")), EFBIG);
  rpc::ReadReply rr;
  EXPECT_EQ(ToErrno(Read(oid, UINT64_MAX - 2, 100, &rr)), EINVAL);
  EXPECT_EQ(ToErrno(Read(oid, 0, UINT32_MAX, &rr)), EINVAL);

  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx);
  rpc::TruncateRequest tr;
  tr.set_oid(oid);
  tr.set_size(UINT64_MAX);
  rpc::Empty empty;
  EXPECT_EQ(ToErrno(rpc::FromGrpc(stub_->Truncate(&ctx, tr, &empty))), EFBIG);

  grpc::ClientContext pctx;
  rpc::SetDeadline(pctx);
  rpc::PrecreateRequest pr;
  pr.set_count(0);
  rpc::PrecreateReply prr;
  EXPECT_EQ(ToErrno(rpc::FromGrpc(stub_->Precreate(&pctx, pr, &prr))), EINVAL);

  // The object is unchanged and the server still serves.
  ASSERT_TRUE(Read(oid, 0, 10, &rr).ok());
  EXPECT_EQ(rr.object_size(), 0u);
  EXPECT_TRUE(ServerAnswers());
}

TEST_F(OssServiceTest, OversizedMessageIsRefusedAndServerStaysUp) {
  uint64_t oid = NewObject();
  absl::Status s = Write(oid, 0, std::string(rpc::kMaxMessageBytes + 4096, 'x'));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_TRUE(ServerAnswers());
  // Nothing was written, and normal writes still work.
  rpc::ReadReply rr;
  ASSERT_TRUE(Read(oid, 0, 10, &rr).ok());
  EXPECT_EQ(rr.object_size(), 0u);
  EXPECT_TRUE(Write(oid, 0, "fine").ok());
  ASSERT_TRUE(Read(oid, 0, 10, &rr).ok());
  EXPECT_EQ(rr.data(), "fine");
}

TEST_F(OssServiceTest, StatusListsConnectionsWithTheirProtocol) {
  for (const rpc::Build* b : {&rpc::kReleaseN, &rpc::kReleaseN1}) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::ConnectReply reply;
    ASSERT_TRUE(stub_->Connect(&ctx,
                               rpc::MakeConnectRequest(
                                   1, "client", b->release, *b),
                               &reply)
                    .ok());
  }
  rpc::StatusReply st;
  ASSERT_TRUE(ServerAnswers(&st));
  EXPECT_EQ(st.info().at("connections"),
            "1.0.0=1,1.1.0=" + std::to_string(rpc::kProtoMax));
}

#if STRIPEFS_PROTO_MAX >= 2
// Write2 checks the crc32 of its data: a damaged payload is refused with
// EIO and nothing is written; a good one is stored as Write stores it.
TEST_F(OssServiceTest, Write2VerifiesTheDataCrc) {
  const uint64_t oid = NewObject();
  auto v2 = rpc::OssV2::NewStub(channel_);
  auto write2 = [&](const std::string& data, uint32_t crc) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::Write2Request req;
    req.mutable_hdr()->set_client_id(1);
    req.mutable_hdr()->set_xid(++xid_);
    req.set_oid(oid);
    req.set_offset(10);
    req.set_data(data);
    req.set_data_crc(crc);
    rpc::Write2Reply reply;
    absl::Status s = rpc::FromGrpc(v2->Write2(&ctx, req, &reply));
    return std::make_pair(s, reply.object_size());
  };
  const std::string data = "checksummed bytes";
  const uint32_t good = rpc::DataCrc32(data.data(), data.size());
  auto [bad_status, bad_size] = write2(data, good ^ 1);
  EXPECT_EQ(ToErrno(bad_status), EIO);
  rpc::ReadReply rr;
  ASSERT_TRUE(Read(oid, 0, 100, &rr).ok());
  EXPECT_EQ(rr.object_size(), 0u) << "nothing written";

  auto [ok_status, size] = write2(data, good);
  ASSERT_TRUE(ok_status.ok()) << ok_status;
  EXPECT_EQ(size, 10 + data.size());
  ASSERT_TRUE(Read(oid, 10, 100, &rr).ok());
  EXPECT_EQ(rr.data(), data);
  rpc::StatusReply st;
  ASSERT_TRUE(ServerAnswers(&st));
  EXPECT_EQ(st.rpc_counts().at("Write2"), 2u);
  EXPECT_EQ(st.rpc_counts().at("Write"), 0u);
}
#endif

// Seed 002: once a forced failover began every RPC answers UNAVAILABLE
// "failing over" (never its real result), a write executing at that moment
// meets the read-only store and is answered UNAVAILABLE too (its EROFS
// never reaches the client), and the store refuses every change while
// reads keep working.
TEST_F(OssServiceTest, ForcedFailoverAnswersUnavailableAndStoreIsReadOnly) {
  const uint64_t oid = NewObject();
  const uint64_t other = NewObject();
  ASSERT_TRUE(Write(oid, 0, "before").ok());
  // A write that is executing (held at oss.before_write) when it begins.
  ASSERT_TRUE(fault::Configure("oss.before_write=delay:800*1", 1).ok());
  absl::Status in_flight;
  std::thread writer([&] { in_flight = Write(oid, 0, "during"); });
  for (int i = 0; i < 200 && fault::Fired("oss.before_write") == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(fault::Fired("oss.before_write"), 1u);
  service_->BeginForcedFailover();
  store_->SetReadOnly(true);
  writer.join();
  ASSERT_TRUE(fault::Configure("", 1).ok());
  EXPECT_TRUE(absl::IsUnavailable(in_flight)) << in_flight;
  EXPECT_EQ(in_flight.message(), server::kFailingOverMessage);

  // New requests, reads and Status included: UNAVAILABLE.
  absl::Status w = Write(oid, 0, "after");
  EXPECT_TRUE(absl::IsUnavailable(w)) << w;
  rpc::ReadReply rr;
  EXPECT_TRUE(absl::IsUnavailable(Read(oid, 0, 100, &rr)));
  EXPECT_FALSE(ServerAnswers());

  // The store: reads work, every change is EROFS, nothing changed.
  std::string got;
  ASSERT_TRUE(store_->Read(oid, 0, 100, &got).ok());
  EXPECT_EQ(got, "before");
  EXPECT_EQ(ToErrno(store_->Write(oid, 0, "x", false).status()), EROFS);
  EXPECT_EQ(ToErrno(store_->Write(other, 0, "x", true).status()), EROFS);
  EXPECT_EQ(ToErrno(store_->Truncate(oid, 1)), EROFS);
  EXPECT_EQ(ToErrno(store_->Punch(oid, 0, 4096)), EROFS);
  EXPECT_EQ(ToErrno(store_->Precreate(1).status()), EROFS);
  EXPECT_EQ(ToErrno(store_->Destroy({oid})), EROFS);
  EXPECT_EQ(ToErrno(store_->Sync({oid})), EROFS);
  ASSERT_TRUE(store_->Read(oid, 0, 100, &got).ok());
  EXPECT_EQ(got, "before");
  EXPECT_EQ(store_->object_count(), 2u);
  absl::StatusOr<ObjectAttr> attr = store_->GetAttr(other);
  ASSERT_TRUE(attr.ok()) << attr.status();
  EXPECT_EQ(attr->size, 0u);
}

}  // namespace
}  // namespace stripefs::oss
