// AttrInvalidator: makes the kernel forget the attributes it cached for an
// inode, so that a mount may let the kernel cache attributes for long
// (attr_timeout) when they are backed by a DLM lock: the lock's blocking
// callback calls Invalidate before the lock goes.
//
// fuse_lowlevel_notify_inval_inode with a negative offset touches
// attributes only (no page locks), so it is safe inside a lock callback.
// The kernel orders it against replies in flight: a GETATTR or LOOKUP reply
// for an inode the kernel knows is ignored when an invalidation came after
// the request was sent (attr_version). An inode the kernel does not know
// yet (ENOENT) may still be installed by a LOOKUP answered just before the
// callback, with the old attributes and a long timeout: for those the
// invalidation is repeated after each of kRetryDelays on a background thread.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stripefs::client {

class AttrInvalidator {
 public:
  // Returns 0 or a negative errno, like fuse_lowlevel_notify_inval_inode.
  using NotifyFn = std::function<int(uint64_t ino)>;
  static constexpr absl::Duration kRetryDelays[] = {absl::Milliseconds(20),
                                                    absl::Milliseconds(250)};
  // Retries queued at most (beyond it, the oldest are dropped and logged).
  static constexpr size_t kMaxQueued = 100000;

  explicit AttrInvalidator(NotifyFn notify);
  ~AttrInvalidator();
  AttrInvalidator(const AttrInvalidator&) = delete;
  AttrInvalidator& operator=(const AttrInvalidator&) = delete;

  void Invalidate(uint64_t ino);
  // Retries still queued (for tests).
  size_t Queued();

 private:
  void Run();

  const NotifyFn notify_;
  absl::Mutex mu_;
  std::multimap<absl::Time, uint64_t> retries_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace stripefs::client
