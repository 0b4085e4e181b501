// MdsService: the gRPC adapter of the metadata service. Maps each Mds RPC
// onto MdsCore, converts records to messages and statuses with
// rpc::ToGrpc, and counts calls per method for the Status RPC. It decides
// nothing: which metadata locks a change takes is MdsCore's
// (mds_core_locks.cc).
// Thread-safe (the sync server calls it from many threads).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "common/version.h"
#include "grpcpp/grpcpp.h"
#include "mds/client_leases.h"
#include "mds/mds_core.h"
#include "mds/target_registry.h"
#include "rpc/proto/mds.grpc.pb.h"
#include "server/service_common.h"
#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/proto/mds_v2.grpc.pb.h"
#endif

namespace stripefs::mds {

class MdsService final : public rpc::Mds::Service {
 public:
  // core must outlive the service. instance changes every process start.
  MdsService(MdsCore* core, std::string target, uint64_t instance);

  // Reported by Status: "running" or "stopping".
  void SetStopping() { common_.SetStopping(); }
  // Forced failover (SIGUSR1, seed 002): from now on every RPC, also one
  // executing now when it finishes, answers UNAVAILABLE "failing over".
  // Call before the store turns read-only.
  void BeginForcedFailover() { common_.BeginForcedFailover(); }
  // Client leases (optional; must outlive the service; set before
  // serving): Connect tracks a client, Status with its client_id and every
  // request with its ReqHeader renew its lease.
  void set_leases(ClientLeases* leases) { leases_ = leases; }
  // Online target changes (MdsV2.SetTarget); none without it (ENOTSUP).
  void set_registry(TargetRegistry* registry) { registry_ = registry; }
  // Registers the services of every protocol this build speaks on
  // `builder`: Mds, and in release N+1 also MdsV2 (Open2).
  void RegisterWith(grpc::ServerBuilder& builder);

  grpc::Status Connect(grpc::ServerContext*, const rpc::ConnectRequest*,
                       rpc::ConnectReply*) override;
  grpc::Status Status(grpc::ServerContext*, const rpc::StatusRequest*,
                      rpc::StatusReply*) override;
  grpc::Status GetConfig(grpc::ServerContext*, const rpc::GetConfigRequest*,
                         rpc::GetConfigReply*) override;
  grpc::Status Lookup(grpc::ServerContext*, const rpc::LookupRequest*,
                      rpc::Entry*) override;
  grpc::Status GetAttr(grpc::ServerContext*, const rpc::GetAttrRequest*,
                       rpc::Entry*) override;
  grpc::Status SetAttr(grpc::ServerContext*, const rpc::SetAttrRequest*,
                       rpc::Entry*) override;
  grpc::Status Create(grpc::ServerContext*, const rpc::CreateRequest*,
                      rpc::CreateReply*) override;
  grpc::Status Open(grpc::ServerContext*, const rpc::OpenRequest*,
                    rpc::OpenReply*) override;
  grpc::Status Release(grpc::ServerContext*, const rpc::ReleaseRequest*,
                       rpc::ReleaseReply*) override;
#if STRIPEFS_PROTO_MAX >= 2
  // MdsV2.Open2 (protocol 2): translated into the Open path
  // (rpc/wire_v2.h), so both formats behave alike. Counted as Open and as
  // Open2.
  grpc::Status Open2(grpc::ServerContext*, const rpc::Open2Request*,
                     rpc::Open2Reply*);
  // MdsV2.Sync (protocol 2): MdsCore::Sync.
  grpc::Status SyncMds(grpc::ServerContext*, const rpc::SyncMdsRequest*,
                       rpc::SyncMdsReply*);
  // MdsV2.SetTarget (protocol 2): TargetRegistry.
  grpc::Status SetTarget(grpc::ServerContext*, const rpc::SetTargetRequest*,
                         rpc::SetTargetReply*);
  // MdsV2.FsckState and MdsV2.ListObjectRefs (stripefs fsck, read-only;
  // mds_service_fsck.cc).
  grpc::Status FsckState(grpc::ServerContext*, const rpc::FsckStateRequest*,
                         rpc::FsckStateReply*);
  grpc::Status ListObjectRefs(grpc::ServerContext*,
                              const rpc::ListObjectRefsRequest*,
                              rpc::ListObjectRefsReply*);
#endif
  grpc::Status Mknod(grpc::ServerContext*, const rpc::MknodRequest*,
                     rpc::Entry*) override;
  grpc::Status Mkdir(grpc::ServerContext*, const rpc::MkdirRequest*,
                     rpc::Entry*) override;
  grpc::Status Symlink(grpc::ServerContext*, const rpc::SymlinkRequest*,
                       rpc::Entry*) override;
  grpc::Status Link(grpc::ServerContext*, const rpc::LinkRequest*,
                    rpc::Entry*) override;
  grpc::Status Remove(grpc::ServerContext*, const rpc::RemoveRequest*,
                      rpc::RemoveReply*) override;
  grpc::Status Rename(grpc::ServerContext*, const rpc::RenameRequest*,
                      rpc::RenameReply*) override;
  grpc::Status Readlink(grpc::ServerContext*, const rpc::ReadlinkRequest*,
                        rpc::ReadlinkReply*) override;
  grpc::Status Readdir(grpc::ServerContext*, const rpc::ReaddirRequest*,
                       rpc::ReaddirReply*) override;
  grpc::Status Statfs(grpc::ServerContext*, const rpc::StatfsRequest*,
                      rpc::StatfsReply*) override;
  grpc::Status SetXattr(grpc::ServerContext*, const rpc::SetXattrRequest*,
                        rpc::XattrReply*) override;
  grpc::Status GetXattr(grpc::ServerContext*, const rpc::GetXattrRequest*,
                        rpc::GetXattrReply*) override;
  grpc::Status ListXattr(grpc::ServerContext*, const rpc::ListXattrRequest*,
                         rpc::ListXattrReply*) override;
  grpc::Status RemoveXattr(grpc::ServerContext*,
                           const rpc::RemoveXattrRequest*,
                           rpc::XattrReply*) override;
  grpc::Status Access(grpc::ServerContext*, const rpc::AccessRequest*,
                      rpc::AccessReply*) override;
  grpc::Status UpdateSize(grpc::ServerContext*, const rpc::UpdateSizeRequest*,
                          rpc::Entry*) override;
  grpc::Status SetLayout(grpc::ServerContext*, const rpc::SetLayoutRequest*,
                         rpc::LayoutReply*) override;
  grpc::Status GetLayout(grpc::ServerContext*, const rpc::GetLayoutRequest*,
                         rpc::LayoutReply*) override;

  enum Method : int {
    kConnect, kStatus, kGetConfig, kLookup, kGetAttr, kSetAttr, kCreate,
    kOpen, kRelease, kMknod, kMkdir, kSymlink, kLink, kRemove, kRename,
    kReadlink, kReaddir, kStatfs, kSetXattr, kGetXattr, kListXattr,
    kRemoveXattr, kAccess, kUpdateSize, kSetLayout, kGetLayout, kOpen2,
    kSync, kSetTarget, kFsckState, kListObjectRefs, kNumMethods
  };

 private:
  // Counts the call, renews the client's lease; the answer
  // (server::ServiceCommon::Finish, fault point mds.before_reply).
  grpc::Status Finish(Method m, const absl::Status& s, uint64_t client_id = 0,
                      uint64_t xid = 0);

  MdsCore* const core_;
  ClientLeases* leases_ = nullptr;
  TargetRegistry* registry_ = nullptr;
  server::ServiceCommon common_;
#if STRIPEFS_PROTO_MAX >= 2
  // Service MdsV2 on the same server, forwarding to this one.
  class V2 final : public rpc::MdsV2::Service {
   public:
    explicit V2(MdsService* s) : s_(s) {}
    grpc::Status Open2(grpc::ServerContext* ctx, const rpc::Open2Request* req,
                       rpc::Open2Reply* reply) override {
      return s_->Open2(ctx, req, reply);
    }
    grpc::Status Sync(grpc::ServerContext* ctx, const rpc::SyncMdsRequest* req,
                      rpc::SyncMdsReply* reply) override {
      return s_->SyncMds(ctx, req, reply);
    }
    grpc::Status SetTarget(grpc::ServerContext* ctx,
                           const rpc::SetTargetRequest* req,
                           rpc::SetTargetReply* reply) override {
      return s_->SetTarget(ctx, req, reply);
    }
    grpc::Status FsckState(grpc::ServerContext* ctx,
                           const rpc::FsckStateRequest* req,
                           rpc::FsckStateReply* reply) override {
      return s_->FsckState(ctx, req, reply);
    }
    grpc::Status ListObjectRefs(grpc::ServerContext* ctx,
                                const rpc::ListObjectRefsRequest* req,
                                rpc::ListObjectRefsReply* reply) override {
      return s_->ListObjectRefs(ctx, req, reply);
    }

   private:
    MdsService* const s_;
  };
  V2 v2_{this};
#endif
};

// Record -> message conversions (also used by tests).
void ToProto(const Inode& n, rpc::Attr* out);
void ToProto(const Layout& l, rpc::Layout* out);
void ToProto(const Inode& n, rpc::Entry* out);

}  // namespace stripefs::mds
