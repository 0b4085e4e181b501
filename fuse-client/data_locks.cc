#include "fuse-client/data_locks.h"

#include <fuse_lowlevel.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

DataLocks::DataLocks(dlm::DlmClient* dlm) : dlm_(dlm) {
  inval_thread_ = std::thread([this] { InvalLoop(); });
  dlm_->RegisterHandler(kDataPrefix, this);
}

DataLocks::~DataLocks() {
  dlm_->UnregisterHandler(kDataPrefix);
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  inval_thread_.join();
}

void DataLocks::set_session(fuse_session* se) {
  absl::MutexLock l(&mu_);
  se_ = se;
  if (se == nullptr) {
    queue_.clear();
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !busy_; };
    mu_.Await(absl::Condition(&idle));
  }
}

absl::StatusOr<dlm::LockInfo> DataLocks::Lock(uint64_t ino, bool write,
                                              const InterruptFn& interrupted) {
  dlm::LockSpec spec;
  spec.resource = {absl::StrCat(kDataPrefix, ino), dlm::LockType::kPlain};
  spec.mode = write ? dlm::LockMode::kPW : dlm::LockMode::kPR;
  dlm::LockOptions opts;
  opts.interrupted = interrupted;
  if (!write) return dlm_->Lock(spec, opts);
  {
    absl::MutexLock l(&mu_);
    ++pending_writes_[ino];
  }
  absl::StatusOr<dlm::LockInfo> r = dlm_->Lock(spec, opts);
  absl::MutexLock l(&mu_);
  if (--pending_writes_[ino] == 0) pending_writes_.erase(ino);
  return r;
}

void DataLocks::Release(const dlm::LockInfo& lock) {
  dlm_->Release(lock.handle);
}

uint64_t DataLocks::Gen() const {
  absl::MutexLock l(&mu_);
  return gen_;
}

void DataLocks::OnBlocking(const dlm::LockInfo& lock, bool lost) {
  uint64_t ino = 0;
  const std::string& name = lock.spec.resource.name;
  if (!absl::SimpleAtoi(absl::string_view(name).substr(sizeof(kDataPrefix) - 1),
                        &ino)) {
    return;
  }
  auto inval = std::make_shared<Inval>();
  inval->ino = ino;
  absl::MutexLock l(&mu_);
  ++gen_;
  if (se_ == nullptr || stop_) return;
  if (lock.spec.mode == dlm::LockMode::kPR && !lost &&
      pending_writes_.contains(ino)) {
    return;  // our own write upgrades: its pages are locked and current
  }
  queue_.push_back(inval);
  auto done = [&inval]() { return inval->done; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), kInvalWait)) {
    spdlog::warn("page invalidation of ino {} still busy after {}; giving "
                 "the data lock back anyway",
                 ino, absl::FormatDuration(kInvalWait));
  }
}

void DataLocks::InvalLoop() {
  for (;;) {
    std::shared_ptr<Inval> next;
    fuse_session* se;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      next = queue_.front();
      queue_.pop_front();
      se = se_;
      if (se == nullptr) continue;
      busy_ = true;
    }
    int rc = fuse_lowlevel_notify_inval_inode(se, next->ino, 0, 0);
    if (rc != 0 && rc != -ENOENT) {
      spdlog::warn("page invalidation of ino {}: {}", next->ino, strerror(-rc));
    }
    absl::MutexLock l(&mu_);
    busy_ = false;
    next->done = true;
  }
}

}  // namespace stripefs::client
