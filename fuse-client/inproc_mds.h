// InprocMds: MdsApi over an MdsCore in the same process, for unit tests of
// Fs with no server and no mount (fs_test.cc). It maps each call onto the
// MdsCore method the MDS service would call, with the caller's credentials
// and, for a change, a request id of its own (client_id, counting xids);
// the metadata locks the service takes are left out (tests run without a
// lock service). Test-only: its CMake target (stripefs_client_inproc) is
// linked by tests, never by stripefs-mount. Thread-safe (as MdsCore).
//
//   auto store = storage::NewMemKv();
//   mds::FakeOstPool osts(2);
//   mds::MdsCore core(store.get(), &osts, RealClock(), {});
//   ASSERT_TRUE(core.Start().ok());
//   InprocMds mds(&core);
//   Fs fs(&mds, &objects, nullptr, {});
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fuse-client/mds_api.h"
#include "mds/mds_core.h"

namespace stripefs::client {

class InprocMds : public MdsApi {
 public:
  // core must outlive this. client_id: the session id of the requests
  // (MdsCore keeps reply records and handle owners by it).
  explicit InprocMds(mds::MdsCore* core, uint64_t client_id = 1)
      : core_(core), client_id_(client_id) {}

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

  // Calls per method, as GrpcMds counts its RPCs.
  std::map<std::string, uint64_t> RpcCounts() const override;
  void set_own_md_cache(bool on) override { own_md_cache_ = on; }

 private:
  mds::ReqId NextReq() { return {client_id_, next_xid_.fetch_add(1) + 1}; }
  // A namespace change's request id (own_md_cache when set).
  mds::ReqId NextOwnReq() {
    mds::ReqId r = NextReq();
    r.own_md_cache = own_md_cache_;
    return r;
  }
  bool own_md_cache_ = false;  // set before use
  void Count(const char* method);

  mds::MdsCore* const core_;
  const uint64_t client_id_;
  std::atomic<uint64_t> next_xid_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::client
