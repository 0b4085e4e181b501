#include "fuse-client/config_watch.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {
namespace {

// How long a new target's first active-lock grant may take.
constexpr absl::Duration kNewTargetWait = absl::Seconds(30);

}  // namespace

absl::Status ApplyConfig(const rpc::GetConfigReply& config,
                         const TargetOptions& topts, OstSet* osts,
                         MountFailover* failover) {
  // Targets the cluster no longer has (`stripefs target remove`).
  for (const auto& [index, ost] : osts->all()) {
    bool listed = false;
    for (const rpc::OstInfo& o : config.osts()) listed |= o.index() == index;
    if (!listed && osts->Remove(index)) {
      spdlog::info("ost{} was removed from the cluster", index);
    }
  }
  for (const rpc::OstInfo& o : config.osts()) {
    if (osts->Get(o.index()) == nullptr) {
      absl::Status added = osts->Add(o.index(), o.address(), topts);
      // EEXIST: another thread's re-read added it first (and watches it).
      if (ToErrno(added) != EEXIST) {
        STRIPEFS_RETURN_IF_ERROR(added);
        if (failover != nullptr) {
          // Watched from here on, even if the first grant is late.
          STRIPEFS_RETURN_IF_ERROR(
              failover->AddOst(o.index(), kNewTargetWait));
        }
        spdlog::info("ost{} at {} joined", o.index(), o.address());
      }
    }
    const OstSet::State before = osts->state(o.index());
    const bool fail_io = !o.active() && o.fail_io();
    if (before.active == o.active() && before.fail_io == fail_io) continue;
    osts->SetState(o.index(), o.active(), fail_io);
    spdlog::info("ost{} is {}{}", o.index(),
                 o.active() ? "active" : "deactivated",
                 fail_io ? ": its I/O fails (EIO)" : "");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ConfigWatch>> ConfigWatch::Start(
    dlm::DlmClient* dlm, Fetch fetch, OstSet* osts, MountFailover* failover,
    TargetOptions topts) {
  std::unique_ptr<ConfigWatch> w(new ConfigWatch());
  // The MDS committed the change before it took EX: the callback alone
  // says there is news, so it is read at once (a stopped mount's PR may
  // hold the EX up until the DLM's callback timeout), and again once PR
  // is granted (any change made meanwhile).
  auto reread = [fetch = std::move(fetch), osts, failover,
                 topts]() -> absl::Status {
    absl::StatusOr<rpc::GetConfigReply> config = fetch();
    if (!config.ok()) {
      spdlog::warn("re-reading the configuration: {}",
                   config.status().ToString());
      return config.status();
    }
    return ApplyConfig(*config, topts, osts, failover);
  };
  dlm::ActiveWatchHooks hooks;
  hooks.pause = [reread] {
    if (absl::Status s = reread(); !s.ok()) {
      spdlog::warn("configuration changed: {} (read again once the lock "
                   "is back)",
                   s.ToString());
    }
  };
  hooks.resume = [reread](bool lost) { return reread(); };
  dlm::ActiveWatchOptions options;
  options.resource = dlm::kConfigResource;
  options.retry_max = absl::Seconds(2);
  auto started =
      dlm::ActiveWatch::Start(dlm, dlm::kConfigResource, std::move(hooks), options);
  if (!started.ok()) return started.status();
  w->watch_ = std::move(*started);
  return w;
}

void ConfigWatch::Stop() { watch_->Stop(); }

}  // namespace stripefs::client
