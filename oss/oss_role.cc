#include "oss/oss_role.h"

#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/version.h"
#include "oss/object_locks.h"
#include "oss/object_store.h"
#include "oss/oss_service.h"
#include "server/runner.h"
#include "spdlog/spdlog.h"
#include "storage/on_disk_features.h"

namespace stripefs::oss {
namespace {

// The open-file cache and RocksDB need more than the default 1024 fds.
void RaiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      spdlog::warn("cannot raise the open-file limit");
    }
  }
}

class OssRole final : public server::ServerRole {
 public:
  OssRole(std::string target, std::string data, size_t max_open_files,
          uint32_t ost_index, uint64_t capacity_bytes)
      : target_(std::move(target)),
        data_(std::move(data)),
        max_open_files_(max_open_files),
        ost_index_(ost_index),
        capacity_bytes_(capacity_bytes) {}

  absl::Status Open() override {
    RaiseFdLimit();
    auto store = ObjectStore::Open(
        {.data_dir = data_,
         .max_open_files = max_open_files_,
         .capacity_bytes = capacity_bytes_});
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    return absl::OkStatus();
  }
  storage::KvStore& kv() override { return store_->kv(); }

  absl::Status Start(const server::StartContext& ctx) override {
#if STRIPEFS_PROTO_MAX >= 2
    // On-disk layout features of the record (storage/on_disk_features.h).
    if (ctx.decision->record.incompat & storage::kIncompatWideDirs) {
      if (absl::Status s = store_->UseWideDirs(); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("cannot move to wide_dirs: ",
                                                   s.message()));
      }
    }
#endif
    // Truncates, punches and destroys lock their objects first.
    if (ctx.dlm != nullptr) {
      locks_ = std::make_unique<ObjectLocks>(ctx.dlm, ost_index_);
      store_->set_object_locks(locks_.get());
    }
    service_ = std::make_unique<OssService>(
        OssServiceOptions{.target = target_, .instance = ctx.instance},
        store_.get());
    return absl::OkStatus();
  }
  void Register(grpc::ServerBuilder& builder) override {
    ConfigureOssServer(builder);
    service_->RegisterWith(builder);
  }
  void BeginForcedFailover() override {
    // UNAVAILABLE first, THEN the store refuses changes (EROFS, logged by
    // the service); the clients resend their idempotent writes to the next
    // instance.
    service_->BeginForcedFailover();
    store_->SetReadOnly(true);
  }
  void SetStopping() override { service_->SetStopping(); }
  absl::Status Finish() override { return store_->Close(); }
  void Abandon() override {
    if (absl::Status s = store_->Close(); !s.ok()) {
      spdlog::warn("forced failover: closing the store: {}", s.ToString());
    }
  }

 private:
  const std::string target_;
  const std::string data_;
  const size_t max_open_files_;
  const uint32_t ost_index_;
  const uint64_t capacity_bytes_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<ObjectLocks> locks_;
  std::unique_ptr<OssService> service_;
};

}  // namespace

std::unique_ptr<server::ServerRole> NewOssRole(std::string target, std::string data,
                                               size_t max_open_files,
                                               uint32_t ost_index,
                                               uint64_t capacity_bytes) {
  return std::make_unique<OssRole>(std::move(target), std::move(data),
                                   max_open_files, ost_index, capacity_bytes);
}

}  // namespace stripefs::oss

