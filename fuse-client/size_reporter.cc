#include "fuse-client/size_reporter.h"

#include <utility>
#include <vector>

namespace stripefs::client {

SizeReporter::SizeReporter(ReportFn report, absl::Duration delay)
    : report_(std::move(report)), delay_(delay) {
  thread_ = std::thread([this] { Loop(); });
}

SizeReporter::~SizeReporter() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void SizeReporter::Add(uint64_t ino, std::shared_ptr<InodeState> st) {
  absl::MutexLock l(&mu_);
  // An inode already pending keeps its (earlier) due time.
  pending_.try_emplace(ino, Pending{std::move(st), absl::Now() + delay_});
}

void SizeReporter::Kick(uint64_t ino) {
  absl::MutexLock l(&mu_);
  auto it = pending_.find(ino);
  if (it != pending_.end()) it->second.due = absl::InfinitePast();
}

void SizeReporter::Loop() {
  for (;;) {
    std::vector<std::shared_ptr<InodeState>> due;
    bool stopping;
    {
      absl::MutexLock l(&mu_);
      absl::Time next = absl::InfiniteFuture();
      for (const auto& [ino, p] : pending_) next = std::min(next, p.due);
      // Wakes on a Kick (due moves to the past), an Add or stop_.
      auto ready = [this, next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (stop_) return true;
        for (const auto& [ino, p] : pending_) {
          if (p.due < next || p.due <= absl::Now()) return true;
        }
        return false;
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready),
                            std::min(next, absl::Now() + absl::Seconds(1)));
      stopping = stop_;
      const absl::Time now = absl::Now();
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (stopping || it->second.due <= now) {
          due.push_back(std::move(it->second.st));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& st : due) report_(st);
    if (stopping) return;
  }
}

}  // namespace stripefs::client
