// SizeReporter: deferred size reports of extending writes (docs/internals.md
// "Data coherence"). With write-behind, a write that grows a file may leave
// its new size unreported for a short while: its PW data locks then stay in
// use (the DLM cannot give them to another mount) until the size is on the
// MDS. This thread reports such inodes `delay` after their first unreported
// write, or at once when Kick()ed (another party asked for one of the held
// locks: DataLocks::OnBlockedInUse), through the report function, which
// reports the size and releases the held locks. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stripefs::client {

struct InodeState;

class SizeReporter {
 public:
  using ReportFn = std::function<void(const std::shared_ptr<InodeState>&)>;

  SizeReporter(ReportFn report, absl::Duration delay);
  // Reports everything still pending, then stops.
  ~SizeReporter();
  SizeReporter(const SizeReporter&) = delete;
  SizeReporter& operator=(const SizeReporter&) = delete;

  // st has an unreported size: report it within the delay.
  void Add(uint64_t ino, std::shared_ptr<InodeState> st);
  // Report ino now (if pending). Quick: no RPC, no waiting.
  void Kick(uint64_t ino);

 private:
  struct Pending {
    std::shared_ptr<InodeState> st;
    absl::Time due;
  };
  void Loop();

  const ReportFn report_;
  const absl::Duration delay_;
  absl::Mutex mu_;
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace stripefs::client
