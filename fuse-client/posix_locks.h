// PosixLocks: fcntl record locks (F_GETLK/F_SETLK/F_SETLKW, also OFD locks,
// which the kernel passes with their own lock_owner) and flock(2) locks of a
// mount, made cluster-wide through the DLM. Thread-safe.
//
// Mapping: each (inode, owner) with any lock holds ONE in-use DLM EXTENT
// lock on "posix:<ino>" (record locks) or "flock:<ino>" (flock), PW when
// any of its ranges is a write lock and PR otherwise, over the hull of its
// ranges, taken with no_cache_match so that two owners of this mount never
// share a DLM lock (the DLM makes same-client locks conflict like anyone
// else's, which is what two owners need). One lock per owner means an owner
// never conflicts with itself; its exact ranges (POSIX merge/split) are kept
// here, for F_GETLK and for knowing when the DLM lock must change:
//  - nothing left: cancelled at once (never left in the LRU);
//  - write -> read only, same range: Convert down (atomic);
//  - more mode or a range the granted lock does not cover: cancel and take
//    anew (waiting or not as asked); when that fails the old lock is taken
//    back with no_wait (not atomic: another mount may slip in; logged).
// The DLM expands a granted extent lock to what nobody contends, so locks of
// two owners on disjoint byte ranges may conflict when the first was
// granted while the file was uncontended (ranges are exact only inside one
// owner and between owners of one mount in F_GETLK). Whole-file locks,
// flock and OFD locks are exact.
//
// F_GETLK answers from this mount's other owners first, then probes the DLM
// (outside the ranges owners of this mount hold) with a no_wait lock
// that is cancelled at once; pid is reported as 0 for a holder on another
// mount.
//
// Lock order: mu_ is never held across a DLM call. Operations of one owner
// on one inode are not serialized against each other (a process running
// fcntl on the same file from two threads at once may race).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dlm/dlm_client.h"

namespace stripefs::client {

enum class LockKind { kPosix, kFlock };
enum class LockType { kUnlock, kRead, kWrite };

// One lock (or conflict) over [start, end] inclusive.
struct RangeLock {
  LockType type = LockType::kUnlock;
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t pid = 0;
};

class PosixLocks : public dlm::LockHandler {
 public:
  explicit PosixLocks(dlm::DlmClient* dlm);
  ~PosixLocks() override;
  PosixLocks(const PosixLocks&) = delete;
  PosixLocks& operator=(const PosixLocks&) = delete;

  // Sets (or with kUnlock clears) `owner`'s lock on [start, end] of ino.
  // `file` identifies the open file the request came through (its locks
  // are dropped by DropFile). wait=false: EAGAIN when another owner holds a
  // conflicting lock; wait=true: waits, EINTR when interrupted() says so.
  absl::Status Set(LockKind kind, uint64_t ino, uint64_t owner,
                   const void* file, RangeLock lock, bool wait,
                   const std::function<bool()>& interrupted);
  // The first lock that would conflict with `lock` for `owner`; type
  // kUnlock when none does.
  absl::StatusOr<RangeLock> Get(LockKind kind, uint64_t ino, uint64_t owner,
                                RangeLock lock);
  // Drops every record lock of `owner` on ino (close(2) of any of its fds).
  void DropOwner(uint64_t ino, uint64_t owner);
  // Drops every lock taken through `file` (last close of an open file:
  // OFD and flock locks).
  void DropFile(const void* file);

  void OnBlocking(const dlm::LockInfo& lock, bool lost) override;

 private:
  struct Range {
    uint64_t start = 0;
    uint64_t end = 0;
    bool write = false;
  };
  using Key = std::tuple<int, uint64_t, uint64_t>;  // kind, ino, owner
  struct OwnerLocks {
    std::vector<Range> ranges;  // exact, non-overlapping
    uint64_t handle = 0;        // the DLM lock (0: none)
    dlm::LockSpec granted;      // its mode and (expanded) range
    const void* file = nullptr;
    uint32_t pid = 0;
  };

  static std::string Resource(LockKind kind, uint64_t ino);
  // Takes one DLM lock.
  absl::StatusOr<dlm::LockInfo> Take(LockKind kind, uint64_t ino,
                                     uint64_t start, uint64_t end, bool write,
                                     bool wait,
                                     const std::function<bool()>& interrupted);
  void Drop(uint64_t handle);
  void DropKey(const Key& key);

  dlm::DlmClient* const dlm_;
  absl::Mutex mu_;
  std::map<Key, OwnerLocks> owners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::client
