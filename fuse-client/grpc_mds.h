// GrpcMds: MdsApi over the mount's MdsClient. Each method formats its
// request (credentials, and for a change the ReqHeader with this session's
// id and a fresh xid), sends it with MdsClient::Call (gate, deadline,
// resend with the same xid, recovery on a new instance: TargetClient's) and
// converts the reply into client types. The open and the sync go in the
// protocol negotiated with the server (versioned_calls.h). The one place
// where the filesystem's metadata requests meet protobuf. Thread-safe.
#pragma once

#include "fuse-client/mds_api.h"
#include "fuse-client/target_client.h"
#include "rpc/proto/mds.pb.h"

namespace stripefs::client {

class GrpcMds : public MdsApi {
 public:
  // mds must outlive this.
  explicit GrpcMds(MdsClient* mds) : mds_(mds) {}

  absl::StatusOr<Entry> Lookup(const OpCtx& ctx, uint64_t parent,
                               const std::string& name) override;
  absl::StatusOr<Entry> GetAttr(const OpCtx& ctx, uint64_t ino) override;
  absl::StatusOr<Entry> SetAttr(const OpCtx& ctx, uint64_t ino,
                                const AttrChange& change,
                                uint64_t handle) override;
  absl::StatusOr<Entry> Mknod(const OpCtx& ctx, uint64_t parent,
                              const std::string& name, uint32_t mode,
                              uint64_t rdev) override;
  absl::StatusOr<Entry> Mkdir(const OpCtx& ctx, uint64_t parent,
                              const std::string& name, uint32_t mode) override;
  absl::StatusOr<Entry> Symlink(const OpCtx& ctx, uint64_t parent,
                                const std::string& name,
                                const std::string& target) override;
  absl::StatusOr<Entry> Link(const OpCtx& ctx, uint64_t ino,
                             uint64_t new_parent,
                             const std::string& new_name) override;
  absl::Status Remove(const OpCtx& ctx, uint64_t parent,
                      const std::string& name, bool dir,
                      uint64_t exempt_child,
                      std::optional<Entry>* parent_after) override;
  absl::Status Rename(const OpCtx& ctx, uint64_t parent,
                      const std::string& name, uint64_t new_parent,
                      const std::string& new_name, uint32_t flags) override;
  absl::StatusOr<std::string> Readlink(const OpCtx& ctx, uint64_t ino) override;
  absl::StatusOr<Listing> Readdir(const OpCtx& ctx, uint64_t ino,
                                  uint64_t cookie, uint32_t max_entries,
                                  bool plus) override;
  absl::StatusOr<StatfsInfo> Statfs(const OpCtx& ctx) override;
  absl::Status Access(const OpCtx& ctx, uint64_t ino, uint32_t mask) override;
  absl::StatusOr<OpenResult> Create(const OpCtx& ctx, uint64_t parent,
                                    const std::string& name, uint32_t mode,
                                    uint32_t flags) override;
  absl::StatusOr<OpenResult> Open(const OpCtx& ctx, uint64_t ino,
                                  uint32_t flags,
                                  uint64_t reopen_handle) override;
  absl::Status Release(const OpCtx& ctx, uint64_t handle) override;
  absl::StatusOr<Entry> UpdateSize(const OpCtx& ctx, uint64_t ino,
                                   uint64_t size, Timespec mtime,
                                   bool kill_priv) override;
  absl::Status Sync(const OpCtx& ctx) override;
  absl::Status SetXattr(const OpCtx& ctx, uint64_t ino, const std::string& name,
                        const std::string& value, uint32_t flags) override;
  absl::StatusOr<std::string> GetXattr(const OpCtx& ctx, uint64_t ino,
                                       const std::string& name) override;
  absl::StatusOr<std::vector<std::string>> ListXattr(const OpCtx& ctx,
                                                     uint64_t ino) override;
  absl::Status RemoveXattr(const OpCtx& ctx, uint64_t ino,
                           const std::string& name) override;
  absl::StatusOr<Layout> SetLayout(const OpCtx& ctx, uint64_t ino,
                                   const LayoutChange& change) override;
  absl::StatusOr<Layout> GetLayout(const OpCtx& ctx, uint64_t ino) override;

  bool LeaseInDoubt() const override { return mds_->LeaseInDoubt(); }
  bool FailoverInProgress() const override { return mds_->gate().closed(); }
  absl::Status ConfirmLease(const InterruptFn& intr) override {
    return mds_->ConfirmLease(intr);
  }
  std::map<std::string, uint64_t> RpcCounts() const override {
    return mds_->RpcCounts();
  }
  void set_own_md_cache(bool on) override { own_md_cache_ = on; }
  void set_intent_locks(uint64_t dlm_client, uint64_t bits) override {
    intent_dlm_client_ = dlm_client;
    intent_bits_ = bits;
  }

 private:
  // The header of a namespace change (with own_md_cache when set).
  void FillOwnHeader(rpc::ReqHeader* hdr) {
    mds_->FillHeader(hdr);
    if (own_md_cache_) hdr->set_own_md_cache(true);
  }

  MdsClient* const mds_;
  bool own_md_cache_ = false;  // set before use
  uint64_t intent_dlm_client_ = 0;  // set before use
  uint64_t intent_bits_ = 0;
};

// Conversions between the wire and the client types (also for tests).
Timespec FromProto(const rpc::Timespec& t);
void ToProto(const Timespec& t, rpc::Timespec* out);
Attr FromProto(const rpc::Attr& a);
Layout FromProto(const rpc::Layout& l);
void ToProto(const Layout& l, rpc::Layout* out);
Entry FromProto(const rpc::Entry& e);

}  // namespace stripefs::client
