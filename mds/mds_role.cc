#include "mds/mds_role.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/client_leases.h"
#include "mds/config_notifier.h"
#include "mds/md_locks.h"
#include "mds/mds_core.h"
#include "mds/mds_service.h"
#include "mds/ost_pool.h"
#include "mds/target_registry.h"
#include "spdlog/spdlog.h"
#include "storage/kv.h"

namespace stripefs::mds {
namespace {



class MdsRole final : public server::ServerRole {
 public:
  MdsRole(std::string target, MdsFlags flags)
      : target_(std::move(target)), f_(std::move(flags)) {}

  absl::Status Open() override {
    std::error_code ec;
    std::filesystem::create_directories(f_.data, ec);
    if (ec || !std::filesystem::is_directory(f_.data)) {
      return Errno(EIO, absl::StrCat("unusable: ", ec.message()));
    }
    if (access(f_.data.c_str(), W_OK | X_OK) != 0) {
      return Errno(EACCES, "not writable");
    }
    auto store = storage::OpenRocksKv(f_.data + "/db");
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    return absl::OkStatus();
  }
  storage::KvStore& kv() override { return *store_; }

  absl::Status Start(const server::StartContext& ctx) override {
    // The store's target registry, merged with the --ost flags.
    STRIPEFS_ASSIGN_OR_RETURN(std::vector<OstTarget> targets,
                              LoadTargets(store_.get(), f_.osts));
    pool_ = NewGrpcOstPool(std::move(targets), ctx.instance);
    MdsOptions opts;
    opts.target = target_;
    opts.dlm_address = f_.dlm;
    opts.default_stripe_count = f_.stripe_count;
    opts.default_stripe_size = static_cast<uint32_t>(f_.stripe_size);
    // Open handles of the previous instance wait for their clients to
    // reopen them, whether it stopped cleanly or crashed: they are in the
    // store either way. Only a start forced past a refusal discards them,
    // as its clients are evicted.
    opts.keep_open_handles = !ctx.decision->evict_clients;
    opts.reopen_window = absl::Seconds(f_.reopen_window_s);
    opts.client_lease = absl::Seconds(f_.client_lease_s);
    opts.qos_threshold_rr = f_.qos_threshold_rr_pct / 100;
    opts.statfs_interval = absl::Seconds(f_.statfs_interval_s);
    // STRIPEFS_TEST_PRECREATE_BATCH (tests: a pool that runs dry often).
    ApplyTestPrecreateBatch(&opts.precreate_batch, &opts.precreate_low_water);
    core_ = std::make_unique<MdsCore>(store_.get(), pool_.get(), RealClock(),
                                      opts);
    STRIPEFS_RETURN_IF_ERROR(core_->Start());
    core_started_ = true;
    // With a lock service, changes to what clients cache are made under EX
    // metadata locks (mds/md_locks.h).
    locker_ = std::make_unique<MdLocker>(ctx.dlm);
    core_->set_md_locks(locker_.get());
    // Online target changes; mounts learn them through the config lock.
    notifier_ = std::make_unique<ConfigNotifier>(ctx.dlm);
    registry_ = std::make_unique<TargetRegistry>(
        store_.get(), pool_.get(), core_.get(),
        [n = notifier_.get()] { n->Notify(); });
    if (f_.client_lease_s > 0 && f_.client_lease_s < 15) {
      spdlog::warn(
          "--client-lease {}s is shorter than 3 mount keepalive periods (5 s "
          "each): an idle live mount may be evicted",
          f_.client_lease_s);
    }
    // Evicts dead clients (mds/client_leases.h).
    leases_ = std::make_unique<ClientLeases>(
        RealClock(), opts.client_lease,
        [this](uint64_t client_id) { return core_->EvictClient(client_id); });
    service_ = std::make_unique<MdsService>(core_.get(), target_, ctx.instance);
    service_->set_leases(leases_.get());
    service_->set_registry(registry_.get());
    return absl::OkStatus();
  }
  void Register(grpc::ServerBuilder& builder) override {
    service_->RegisterWith(builder);  // Mds, and MdsV2 in release N+1
  }
  void Serving(dlm::DlmClient* dlm) override {
    leases_->Start();
    // PR on active:ost<i>: calls to a stopping OSS wait.
    if (dlm != nullptr) pool_->WatchActive(dlm);
  }
  void StopAsked(server::StopKind kind) override {
    // No eviction once told to stop: during a controlled stop the clients'
    // requests (and their keepalive reconnects) are held, so their silence
    // is ours, and an eviction would delete the handles the next instance
    // keeps for them to reopen. (A forced failover stops it right after its
    // store turned read-only: nothing it evicts would be saved.)
    if (kind != server::StopKind::kForcedFailover) leases_->Stop();
  }
  void BeginForcedFailover() override {
    service_->BeginForcedFailover();
    store_->SetReadOnly(true);
    leases_->Stop();
  }
  void SetStopping() override { service_->SetStopping(); }
  void StoppedServing() override { pool_->StopWatching(); }
  absl::Status Finish() override {
    StopCore();
    return store_->Sync();
  }
  void Abandon() override { StopCore(); }  // EROFS met at worst, logged
  std::string Describe() const override {
    std::vector<std::string> osts;
    for (const auto& t : f_.osts) {
      osts.push_back(absl::StrCat(t.index, "=", t.address));
    }
    return absl::StrCat("osts=[", absl::StrJoin(osts, ","),
                        "] stripe_count=", f_.stripe_count,
                        " stripe_size=", f_.stripe_size);
  }

 private:
  void StopCore() {
    if (core_started_) core_->Stop();
    core_started_ = false;
    service_.reset();
    registry_.reset();
    notifier_.reset();
    core_.reset();
  }

  const std::string target_;
  const MdsFlags f_;
  std::unique_ptr<storage::KvStore> store_;
  std::unique_ptr<OstPool> pool_;
  std::unique_ptr<MdsCore> core_;
  bool core_started_ = false;
  std::unique_ptr<MdLocker> locker_;
  std::unique_ptr<ConfigNotifier> notifier_;
  std::unique_ptr<TargetRegistry> registry_;
  std::unique_ptr<ClientLeases> leases_;
  std::unique_ptr<MdsService> service_;
};

}  // namespace

absl::StatusOr<std::vector<OstTarget>> ParseOsts(
    const std::vector<std::string>& specs) {
  std::vector<OstTarget> targets;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    uint32_t idx = 0;
    if (eq == std::string::npos || eq + 1 >= spec.size() ||
        !absl::SimpleAtoi(spec.substr(0, eq), &idx)) {
      return Errno(EINVAL,
                   absl::StrCat("bad --ost '", spec, "': expected IDX=HOST:PORT"));
    }
    for (const auto& t : targets) {
      if (t.index == idx) {
        return Errno(EINVAL, absl::StrCat("duplicate --ost index ", spec));
      }
    }
    targets.push_back({idx, spec.substr(eq + 1), true});
  }
  std::sort(targets.begin(), targets.end(),
            [](const auto& a, const auto& b) { return a.index < b.index; });
  return targets;
}

std::string CheckLayoutFlags(const MdsFlags& f) {
  if (f.stripe_size == 0 || f.stripe_size % 65536 != 0 ||
      f.stripe_size > (1ULL << 32) - 65536) {
    return "--stripe-size must be a positive multiple of 65536 below 4 GiB";
  }
  if (f.stripe_count < -1 || f.stripe_count == 0 ||
      (f.stripe_count > 0 && !f.osts.empty() &&
       size_t(f.stripe_count) > f.osts.size())) {
    return "--stripe-count must be -1 or between 1 and the number of OSTs";
  }
  return "";
}

std::unique_ptr<server::ServerRole> NewMdsRole(std::string target,
                                               MdsFlags flags) {
  return std::make_unique<MdsRole>(std::move(target), std::move(flags));
}

}  // namespace stripefs::mds

