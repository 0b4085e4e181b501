#include "mds/config_notifier.h"

#include <algorithm>

#include "dlm/active_watch.h"
#include "dlm/dlm_client.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {

ConfigNotifier::ConfigNotifier(dlm::DlmClient* dlm) : dlm_(dlm) {
  if (dlm_ != nullptr) thread_ = std::thread([this] { Run(); });
}

ConfigNotifier::~ConfigNotifier() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ConfigNotifier::Notify() {
  absl::MutexLock l(&mu_);
  pending_ = true;
}

uint64_t ConfigNotifier::done() const {
  absl::MutexLock l(&mu_);
  return done_;
}

void ConfigNotifier::Run() {
  const dlm::LockSpec spec{{dlm::kConfigResource, dlm::LockType::kPlain},
                           dlm::LockMode::kEX};
  dlm::LockOptions opts;
  opts.no_cache_match = true;
  opts.interrupted = [this] {
    absl::MutexLock l(&mu_);
    return stop_;
  };
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &ConfigNotifier::Woken));
      if (stop_) return;
      pending_ = false;
    }
    absl::StatusOr<dlm::LockInfo> l = dlm_->Lock(spec, opts);
    if (!l.ok()) {
      spdlog::warn("config lock: {} (retrying)", l.status().ToString());
      absl::MutexLock m(&mu_);
      pending_ = true;
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff)) return;
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = absl::Milliseconds(100);
    dlm_->Release(l->handle);
    if (absl::Status s = dlm_->Cancel(l->handle); !s.ok()) {
      spdlog::warn("config lock: cancel: {}", s.ToString());
    }
    absl::MutexLock m(&mu_);
    ++done_;
  }
}

}  // namespace stripefs::mds
