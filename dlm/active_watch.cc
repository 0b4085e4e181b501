#include "dlm/active_watch.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "spdlog/spdlog.h"

namespace stripefs::dlm {

std::string ActiveResource(const std::string& target) {
  return absl::StrCat("active:", target);
}

ActiveWatch::ActiveWatch(DlmClient* dlm, std::string target,
                         ActiveWatchHooks hooks, ActiveWatchOptions options)
    : dlm_(dlm),
      target_(std::move(target)),
      resource_(options.resource.empty() ? ActiveResource(target_)
                                         : options.resource),
      hooks_(std::move(hooks)),
      options_(options) {}

absl::StatusOr<std::unique_ptr<ActiveWatch>> ActiveWatch::Start(
    DlmClient* dlm, std::string target, ActiveWatchHooks hooks,
    ActiveWatchOptions options) {
  if (dlm == nullptr || target.empty() || !hooks.pause || !hooks.resume) {
    return Errno(EINVAL, "ActiveWatch needs a DLM client, a target and hooks");
  }
  std::unique_ptr<ActiveWatch> w(
      new ActiveWatch(dlm, std::move(target), std::move(hooks), options));
  dlm->RegisterHandler(w->resource_, w.get());
  w->thread_ = std::thread([p = w.get()] { p->Run(); });
  return w;
}

ActiveWatch::~ActiveWatch() { Stop(); }

void ActiveWatch::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  dlm_->UnregisterHandler(resource_);
  uint64_t h = 0;
  {
    absl::MutexLock l(&mu_);
    h = handle_;
    handle_ = 0;
    active_ = false;
  }
  if (h != 0) dlm_->Release(h);
}

bool ActiveWatch::WaitActive(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return resumes_ > 0 || stopping_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  return resumes_ > 0;
}

bool ActiveWatch::active() const {
  absl::MutexLock l(&mu_);
  return active_;
}

uint64_t ActiveWatch::resumes() const {
  absl::MutexLock l(&mu_);
  return resumes_;
}

void ActiveWatch::OnBlocking(const LockInfo& lock, bool lost) {
  if (lock.spec.resource.name != resource_) return;
  // lost=false: the cancel after our own Release; nothing to do.
  if (!lost) return;
  absl::MutexLock l(&mu_);
  lost_handle_ = lock.handle;
}

void ActiveWatch::OnBlockedInUse(const LockInfo& lock) {
  if (lock.spec.resource.name != resource_) return;
  absl::MutexLock l(&mu_);
  blocked_handle_ = lock.handle;
}

bool ActiveWatch::Nap(absl::Duration d) {
  absl::MutexLock l(&mu_);
  auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || (handle_ != 0 && (blocked_handle_ == handle_ ||
                                          lost_handle_ == handle_));
  };
  return !mu_.AwaitWithTimeout(absl::Condition(&wake), d);
}

bool ActiveWatch::Acquire() {
  LockOptions opts;
  opts.no_cache_match = true;
  opts.interrupted = [this] {
    absl::MutexLock l(&mu_);
    return stopping_;
  };
  LockSpec spec;
  spec.resource = {resource_, LockType::kPlain};
  spec.mode = LockMode::kPR;
  for (;;) {
    absl::StatusOr<LockInfo> got = dlm_->Lock(spec, opts);
    absl::MutexLock l(&mu_);
    if (got.ok()) {
      handle_ = got->handle;
      if (stopping_) return false;  // Stop() releases it
      return true;
    }
    if (stopping_ || ToErrno(got.status()) == ESHUTDOWN) return false;
    spdlog::warn("{}: cannot take PR on {}: {}; retrying", target_, resource_,
                 got.status().ToString());
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.retry_max);
  }
}

void ActiveWatch::Run() {
  bool lost = false;
  absl::Time paused_at = absl::InfinitePast();
  uint64_t evictions = dlm_->Evictions();
  for (;;) {
    if (!Acquire()) return;
    // Evicted since the previous grant (the lock may have been asked back
    // first, then lost while this client could not answer, e.g. stopped):
    // the previous PR was lost, not cancelled.
    const uint64_t now_evictions = dlm_->Evictions();
    if (now_evictions != evictions) lost = true;
    evictions = now_evictions;
    // Granted: resume until it works (or the lock is wanted again).
    absl::Duration backoff = options_.retry_min;
    int failures = 0;
    for (;;) {
      {
        absl::MutexLock l(&mu_);
        if (stopping_) return;
        if (blocked_handle_ == handle_ || lost_handle_ == handle_) break;
      }
      absl::Status s = hooks_.resume(lost);
      if (s.ok()) {
        absl::MutexLock l(&mu_);
        active_ = true;
        ++resumes_;
        if (paused_at != absl::InfinitePast()) {
          spdlog::info("{}: active again{}, {} after the pause", target_,
                       lost ? " (after eviction)" : "",
                       absl::FormatDuration(absl::Now() - paused_at));
        }
        break;
      }
      // One line at the first failure, then every 10th.
      if (failures++ % 10 == 0) {
        spdlog::warn("{}: resume failed ({} tries): {}; retrying", target_,
                     failures, s.ToString());
      }
      Nap(backoff);
      backoff = std::min(backoff * 2, options_.retry_max);
    }
    lost = false;
    uint64_t h = 0;
    {
      absl::MutexLock l(&mu_);
      auto wanted = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || blocked_handle_ == handle_ ||
               lost_handle_ == handle_;
      };
      mu_.Await(absl::Condition(&wanted));
      if (stopping_) return;
      lost = lost_handle_ == handle_;
      active_ = false;
      h = handle_;
      handle_ = 0;
    }
    if (lost) {
      spdlog::warn(
          "{}: the active lock was lost (evicted by the DLM?); "
          "holding requests until it is granted again",
          target_);
    } else {
      spdlog::info("{}: the server asks for the target; holding requests",
                   target_);
    }
    const absl::Time t0 = absl::Now();
    paused_at = t0;
    hooks_.pause();
    if (absl::Now() - t0 > absl::Seconds(1)) {
      spdlog::warn("{}: pausing took {}", target_,
                   absl::FormatDuration(absl::Now() - t0));
    }
    // The library cancels the asked-back lock once unused; a lost one is
    // gone already (Release is then a no-op).
    dlm_->Release(h);
  }
}

}  // namespace stripefs::dlm
