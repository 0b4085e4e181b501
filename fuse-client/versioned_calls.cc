#include "fuse-client/versioned_calls.h"

#include <memory>

#include "common/version.h"
#include "rpc/wire_v2.h"
#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/proto/mds_v2.grpc.pb.h"
#include "rpc/proto/oss_v2.grpc.pb.h"
#endif

namespace stripefs::client {
namespace {

// TargetClient::Call formats one request object after the gate and sends it
// through `stub->*fn`; these carry the request in whichever format the
// negotiated protocol asks for and send it to the matching service.
struct OpenCall {
  bool v2 = false;
  rpc::OpenRequest v1;
#if STRIPEFS_PROTO_MAX >= 2
  rpc::Open2Request v2_req;
#endif
};

class OpenDispatch {
 public:
  explicit OpenDispatch(MdsClient* mds) : mds_(mds) {}
  grpc::Status Send(grpc::ClientContext* ctx, const OpenCall& c,
                    rpc::OpenReply* reply) {
#if STRIPEFS_PROTO_MAX >= 2
    if (c.v2) {
      auto stub = rpc::MdsV2::NewStub(mds_->channel());
      rpc::Open2Reply r2;
      grpc::Status gs = stub->Open2(ctx, c.v2_req, &r2);
      if (gs.ok()) *reply = rpc::FromOpen2Reply(std::move(r2));
      return gs;
    }
#endif
    return mds_->stub()->Open(ctx, c.v1, reply);
  }

 private:
  MdsClient* const mds_;
};

struct WriteCall {
  bool v2 = false;
  rpc::WriteRequest v1;
#if STRIPEFS_PROTO_MAX >= 2
  rpc::Write2Request v2_req;
#endif
};

class WriteDispatch {
 public:
  explicit WriteDispatch(OstClient* ost) : ost_(ost) {}
  grpc::Status Send(grpc::ClientContext* ctx, const WriteCall& c,
                    rpc::WriteReply* reply) {
#if STRIPEFS_PROTO_MAX >= 2
    if (c.v2) {
      auto stub = rpc::OssV2::NewStub(ost_->channel());
      rpc::Write2Reply r2;
      grpc::Status gs = stub->Write2(ctx, c.v2_req, &r2);
      if (gs.ok()) reply->set_object_size(r2.object_size());
      return gs;
    }
#endif
    return ost_->stub()->Write(ctx, c.v1, reply);
  }

 private:
  OstClient* const ost_;
};

struct SyncCall {
  bool v2 = false;
#if STRIPEFS_PROTO_MAX >= 2
  rpc::SyncMdsRequest req;
#endif
};

class SyncDispatch {
 public:
  explicit SyncDispatch(MdsClient* mds) : mds_(mds) {}
  grpc::Status Send(grpc::ClientContext* ctx, const SyncCall& c,
                    rpc::Empty* reply) {
#if STRIPEFS_PROTO_MAX >= 2
    if (c.v2) {
      auto stub = rpc::MdsV2::NewStub(mds_->channel());
      rpc::SyncMdsReply r;
      return stub->Sync(ctx, c.req, &r);
    }
#endif
    return grpc::Status::OK;  // protocol 1: nothing to ask
  }

 private:
  MdsClient* const mds_;
};

}  // namespace

absl::Status SyncMdsInProtocol(MdsClient& mds, const InterruptFn& intr) {
  SyncDispatch dispatch(&mds);
  rpc::Empty reply;
  return mds.TargetClient::Call(
      &dispatch, &SyncDispatch::Send, "Sync", intr,
      [&](SyncCall& c) {
        c.v2 = rpc::UsesV2(mds.proto());
#if STRIPEFS_PROTO_MAX >= 2
        if (c.v2) mds.FillHeader(c.req.mutable_hdr());
#endif
      },
      &reply);
}

absl::Status OpenInProtocol(MdsClient& mds, const OpenArgs& args,
                            const InterruptFn& intr, rpc::OpenReply* reply) {
  OpenDispatch dispatch(&mds);
  return mds.TargetClient::Call(
      &dispatch, &OpenDispatch::Send, "Open", intr,
      [&](OpenCall& c) {
        rpc::OpenRequest& r = c.v1;
        mds.FillHeader(r.mutable_hdr());
        if (args.fill_cred) args.fill_cred(r.mutable_cred());
        r.set_ino(args.ino);
        r.set_flags(args.flags);
        r.set_reopen_handle(args.reopen_handle);
        c.v2 = rpc::UsesV2(mds.proto());
#if STRIPEFS_PROTO_MAX >= 2
        if (c.v2) c.v2_req = rpc::ToOpen2(r, args.cookie);
#endif
      },
      reply);
}

absl::Status WriteInProtocol(OstClient& ost, const WriteArgs& args,
                             const InterruptFn& intr, rpc::WriteReply* reply) {
  WriteDispatch dispatch(&ost);
  return ost.TargetClient::Call(
      &dispatch, &WriteDispatch::Send, "Write", intr,
      [&](WriteCall& c) {
        c.v2 = rpc::UsesV2(ost.proto());
#if STRIPEFS_PROTO_MAX >= 2
        if (c.v2) {
          rpc::Write2Request& r = c.v2_req;
          ost.FillHeader(r.mutable_hdr());
          r.set_oid(args.oid);
          r.set_offset(args.offset);
          r.set_data_crc(rpc::DataCrc32(args.data, args.len));
          if (args.owned != nullptr) {
            r.set_data(std::move(*args.owned));
          } else {
            r.set_data(args.data, args.len);
          }
          r.set_sync(args.sync);
          return;
        }
#endif
        rpc::WriteRequest& r = c.v1;
        ost.FillHeader(r.mutable_hdr());
        r.set_oid(args.oid);
        r.set_offset(args.offset);
        if (args.owned != nullptr) {
          r.set_data(std::move(*args.owned));
        } else {
          r.set_data(args.data, args.len);
        }
        r.set_sync(args.sync);
      },
      reply);
}

}  // namespace stripefs::client
