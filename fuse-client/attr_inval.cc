#include "fuse-client/attr_inval.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "spdlog/spdlog.h"

namespace stripefs::client {

AttrInvalidator::AttrInvalidator(NotifyFn notify)
    : notify_(std::move(notify)), thread_([this] { Run(); }) {}

AttrInvalidator::~AttrInvalidator() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void AttrInvalidator::Invalidate(uint64_t ino) {
  int rc = notify_(ino);
  if (rc == 0) return;
  if (rc != -ENOENT) {
    spdlog::warn("attribute invalidation of inode {}: {}", ino, strerror(-rc));
  }
  // ENOENT: not in the kernel now, but a lookup may be installing it.
  absl::Time now = absl::Now();
  absl::MutexLock l(&mu_);
  for (absl::Duration d : kRetryDelays) retries_.emplace(now + d, ino);
  if (retries_.size() > kMaxQueued) {
    spdlog::warn("attribute invalidation retries: {} queued, dropping the "
                 "oldest",
                 retries_.size());
    while (retries_.size() > kMaxQueued) retries_.erase(retries_.begin());
  }
}

size_t AttrInvalidator::Queued() {
  absl::MutexLock l(&mu_);
  return retries_.size();
}

void AttrInvalidator::Run() {
  absl::MutexLock l(&mu_);
  while (!stop_) {
    if (retries_.empty()) {
      mu_.Await(absl::Condition(
          +[](AttrInvalidator* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
               self->mu_) { return self->stop_ || !self->retries_.empty(); },
          this));
      continue;
    }
    absl::Time now = absl::Now();
    auto first = retries_.begin();
    if (first->first > now) {
      // Short naps: an earlier retry may be queued meanwhile.
      mu_.AwaitWithTimeout(absl::Condition(&stop_),
                           std::min(first->first - now, absl::Milliseconds(10)));
      continue;
    }
    uint64_t ino = first->second;
    retries_.erase(first);
    mu_.Unlock();
    int rc = notify_(ino);
    if (rc != 0 && rc != -ENOENT) {
      spdlog::warn("attribute invalidation of inode {}: {}", ino,
                   strerror(-rc));
    }
    mu_.Lock();
  }
}

}  // namespace stripefs::client
