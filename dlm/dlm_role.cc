#include "dlm/dlm_role.h"

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
#include "server/runner.h"
#include "storage/kv.h"

namespace stripefs::dlm {
namespace {

class DlmRole final : public server::ServerRole {
 public:
  DlmRole(std::string target, std::string data, LockManagerOptions options)
      : target_(std::move(target)),
        data_(std::move(data)),
        options_(options) {}

  absl::Status Open() override {
    auto kv = storage::OpenRocksKv(data_ + "/db");
    if (!kv.ok()) return kv.status();
    kv_ = std::move(*kv);
    return absl::OkStatus();
  }
  storage::KvStore& kv() override { return *kv_; }

  absl::Status Start(const server::StartContext& ctx) override {
    auto manager = LockManager::Open(kv_.get(), RealClock(), options_);
    if (!manager.ok()) {
      return absl::Status(manager.status().code(),
                          absl::StrCat("cannot load the lock table: ",
                                       manager.status().message()));
    }
    manager_ = std::move(*manager);
    service_ = std::make_unique<DlmService>(
        DlmServiceOptions{.target = target_, .instance = ctx.instance},
        manager_.get());
    return absl::OkStatus();
  }
  void Register(grpc::ServerBuilder& builder) override {
    ConfigureDlmServer(builder);
    builder.RegisterService(service_.get());
  }
  void SetStopping() override {
    stopping_ = true;
    service_->SetStopping();
    // Ends every Session stream, so that the server's shutdown need not
    // wait for them; clients reconnect to the next instance. Records a
    // clean shutdown in the lock table.
    closed_ = manager_->Close();
  }
  absl::Status Finish() override {
    // A failed start never got SetStopping.
    if (manager_ != nullptr && !stopping_) closed_ = manager_->Close();
    service_.reset();
    manager_.reset();
    return closed_;
  }
  void Abandon() override {}
  std::string Describe() const override {
    return absl::StrCat("callback timeout ",
                        absl::FormatDuration(options_.callback_timeout),
                        ", recovery window ",
                        absl::FormatDuration(options_.recovery_window));
  }

 private:
  const std::string target_;
  const std::string data_;
  const LockManagerOptions options_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<LockManager> manager_;
  std::unique_ptr<DlmService> service_;
  bool stopping_ = false;
  absl::Status closed_;
};

}  // namespace

std::unique_ptr<server::ServerRole> NewDlmRole(std::string target, std::string data,
                                               LockManagerOptions options) {
  return std::make_unique<DlmRole>(std::move(target), std::move(data), options);
}

}  // namespace stripefs::dlm

