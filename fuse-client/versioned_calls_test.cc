// The client picks the wire format from the protocol it negotiated: against
// a release N server (protocol 1 only, no protocol-2 services: a v2 call
// would get UNIMPLEMENTED) it sends Open/Write; against release N+1 it sends
// Open2/Write2 (in a release N+1 build). Fake servers over real gRPC.
#include "fuse-client/versioned_calls.h"

#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/version.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rpc/handshake.h"
#include "rpc/status.h"
#include "rpc/wire_v2.h"
#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/proto/mds_v2.grpc.pb.h"
#include "rpc/proto/oss_v2.grpc.pb.h"
#endif

namespace stripefs::client {
namespace {

// What the fake servers saw.
struct Seen {
  std::atomic<int> open{0}, open2{0}, write{0}, write2{0};
  std::atomic<uint32_t> last_flags{0};
  std::atomic<uint64_t> last_reopen{0};
  std::atomic<uint32_t> last_uid{0};
  std::string last_data;  // written by the single test thread's call only
};

class FakeMds final : public rpc::Mds::Service {
 public:
  FakeMds(const rpc::Build& build, Seen* seen) : build_(build), seen_(seen) {}
  grpc::Status Connect(grpc::ServerContext*, const rpc::ConnectRequest* req,
                       rpc::ConnectReply* reply) override {
    auto r = rpc::AnswerConnect(*req, "mdt0", 1, build_);
    if (r.ok()) *reply = *r;
    return rpc::ToGrpc(r.status());
  }
  grpc::Status Open(grpc::ServerContext*, const rpc::OpenRequest* req,
                    rpc::OpenReply* reply) override {
    seen_->open++;
    seen_->last_flags = req->flags();
    seen_->last_reopen = req->reopen_handle();
    seen_->last_uid = req->cred().uid();
    reply->set_handle(req->reopen_handle() ? req->reopen_handle() : 500);
    reply->mutable_entry()->mutable_attr()->set_ino(req->ino());
    return grpc::Status::OK;
  }

 private:
  const rpc::Build build_;
  Seen* const seen_;
};

class FakeOss final : public rpc::Oss::Service {
 public:
  FakeOss(const rpc::Build& build, Seen* seen) : build_(build), seen_(seen) {}
  grpc::Status Connect(grpc::ServerContext*, const rpc::ConnectRequest* req,
                       rpc::ConnectReply* reply) override {
    auto r = rpc::AnswerConnect(*req, "ost0", 1, build_);
    if (r.ok()) *reply = *r;
    return rpc::ToGrpc(r.status());
  }
  grpc::Status Write(grpc::ServerContext*, const rpc::WriteRequest* req,
                     rpc::WriteReply* reply) override {
    seen_->write++;
    seen_->last_data = req->data();
    reply->set_object_size(req->offset() + req->data().size());
    return grpc::Status::OK;
  }

 private:
  const rpc::Build build_;
  Seen* const seen_;
};

#if STRIPEFS_PROTO_MAX >= 2
class FakeMdsV2 final : public rpc::MdsV2::Service {
 public:
  explicit FakeMdsV2(Seen* seen) : seen_(seen) {}
  grpc::Status Open2(grpc::ServerContext*, const rpc::Open2Request* req,
                     rpc::Open2Reply* reply) override {
    seen_->open2++;
    auto v1 = rpc::FromOpen2(*req);
    if (!v1.ok()) return rpc::ToGrpc(v1.status());
    seen_->last_flags = v1->flags();
    seen_->last_reopen = v1->reopen_handle();
    seen_->last_uid = v1->cred().uid();
    rpc::OpenReply r;
    r.set_handle(v1->reopen_handle() ? v1->reopen_handle() : 600);
    r.mutable_entry()->mutable_attr()->set_ino(req->ino());
    *reply = rpc::ToOpen2Reply(r, *req);
    return grpc::Status::OK;
  }

 private:
  Seen* const seen_;
};

class FakeOssV2 final : public rpc::OssV2::Service {
 public:
  explicit FakeOssV2(Seen* seen) : seen_(seen) {}
  grpc::Status Write2(grpc::ServerContext*, const rpc::Write2Request* req,
                      rpc::Write2Reply* reply) override {
    seen_->write2++;
    if (absl::Status s = rpc::VerifyWriteCrc(*req); !s.ok()) {
      return rpc::ToGrpc(s);
    }
    seen_->last_data = req->data();
    reply->set_object_size(req->offset() + req->data().size());
    return grpc::Status::OK;
  }

 private:
  Seen* const seen_;
};
#endif

// One fake server of release `build`: Mds and Oss, plus the protocol-2
// services when the release has them (and this build can compile them).
class FakeCluster {
 public:
  explicit FakeCluster(const rpc::Build& build)
      : mds_(build, &seen),
        oss_(build, &seen)
#if STRIPEFS_PROTO_MAX >= 2
        ,
        mds2_(&seen),
        oss2_(&seen)
#endif
  {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(&mds_);
    b.RegisterService(&oss_);
#if STRIPEFS_PROTO_MAX >= 2
    if (build.protocols.max >= 2) {
      b.RegisterService(&mds2_);
      b.RegisterService(&oss2_);
    }
#endif
    server_ = b.BuildAndStart();
  }
  ~FakeCluster() { server_->Shutdown(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  bool ok() const { return server_ != nullptr && port_ != 0; }

  Seen seen;

 private:
  FakeMds mds_;
  FakeOss oss_;
#if STRIPEFS_PROTO_MAX >= 2
  FakeMdsV2 mds2_;
  FakeOssV2 oss2_;
#endif
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TargetOptions Options() {
  TargetOptions o;
  o.client_id = 9;
  o.deadline = absl::Seconds(5);
  o.retry_window = absl::ZeroDuration();
  return o;
}

// Opens twice (new, then a reopen) and writes once; returns the protocol
// the client negotiated.
uint32_t Exercise(FakeCluster& c) {
  MdsClient mds(c.address(), Options());
  EXPECT_TRUE(mds.Connect().ok());
  rpc::OpenReply reply;
  auto cred = [](uint32_t uid) {
    return [uid](rpc::Cred* c) { c->set_uid(uid); };
  };
  absl::Status s = OpenInProtocol(
      mds,
      {.ino = 42, .flags = O_WRONLY | O_APPEND, .fill_cred = cred(1000)}, {},
      &reply);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(reply.entry().attr().ino(), 42u);
  EXPECT_EQ(c.seen.last_flags.load(), uint32_t{O_WRONLY | O_APPEND});
  EXPECT_EQ(c.seen.last_uid.load(), 1000u);
  s = OpenInProtocol(mds,
                     {.ino = 42,
                      .flags = O_RDWR,
                      .reopen_handle = 77,
                      .fill_cred = cred(1001)},
                     {}, &reply);
  EXPECT_EQ(c.seen.last_uid.load(), 1001u);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(reply.handle(), 77u);
  EXPECT_EQ(c.seen.last_reopen.load(), 77u);

  OstClient ost("ost0", c.address(), Options());
  EXPECT_TRUE(ost.Connect().ok());
  const std::string data = "some bytes of a stripe";
  rpc::WriteReply w;
  s = WriteInProtocol(
      ost, {.oid = 5, .offset = 10, .data = data.data(), .len = data.size()},
      {}, &w);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(w.object_size(), 10 + data.size());
  EXPECT_EQ(c.seen.last_data, data);
  EXPECT_EQ(mds.proto(), ost.proto());
  return mds.proto();
}

TEST(VersionedCallsTest, AgainstReleaseNTheClientSendsProtocolOne) {
  FakeCluster c(rpc::kReleaseN);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Exercise(c), 1u);
  EXPECT_EQ(c.seen.open.load(), 2);
  EXPECT_EQ(c.seen.open2.load(), 0);
  EXPECT_EQ(c.seen.write.load(), 1);
  EXPECT_EQ(c.seen.write2.load(), 0);
#if STRIPEFS_PROTO_MAX >= 2
  // What a protocol-2 request would have got from release N.
  auto v2 = rpc::OssV2::NewStub(grpc::CreateChannel(
      c.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  rpc::Write2Reply r;
  EXPECT_EQ(v2->Write2(&ctx, rpc::Write2Request(), &r).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
#endif
}

TEST(VersionedCallsTest, AgainstReleaseNPlusOneTheClientSendsItsHighest) {
  FakeCluster c(rpc::kReleaseN1);
  ASSERT_TRUE(c.ok());
  const uint32_t proto = Exercise(c);
#if STRIPEFS_PROTO_MAX >= 2
  // Release N+1 on both sides: protocol 2, Open2 and Write2 (with a crc the
  // fake server verified).
  EXPECT_EQ(proto, 2u);
  EXPECT_EQ(c.seen.open.load(), 0);
  EXPECT_EQ(c.seen.open2.load(), 2);
  EXPECT_EQ(c.seen.write.load(), 0);
  EXPECT_EQ(c.seen.write2.load(), 1);
#else
  // A release N client speaks protocol 1 to anyone.
  EXPECT_EQ(proto, 1u);
  EXPECT_EQ(c.seen.open.load(), 2);
  EXPECT_EQ(c.seen.write.load(), 1);
#endif
}

}  // namespace
}  // namespace stripefs::client
