// PosixLocks: fcntl record locks (F_GETLK/F_SETLK/F_SETLKW, also OFD locks,
// which the kernel passes with their own lock_owner) and flock(2) locks of a
// mount, made cluster-wide through the DLM. Thread-safe.
//
// Mapping: each range an owner (inode, lock_owner) holds is ONE in-use
// DLM EXTENT lock on "posix:<ino>" (record locks) or "flock:<ino>" (flock)
// over exactly that range (an `exact` enqueue: the DLM never widens it), PR
// for a read lock and PW for a write lock, taken with no_cache_match so two
// owners of this mount never share a DLM lock (the DLM makes same-client
// locks conflict like anyone else's, which is what two owners need). So two
// owners on different mounts holding disjoint (even adjacent) ranges never
// conflict. An owner's ranges never overlap each other; a request replaces
// whatever part of them it overlaps (POSIX split):
//  - nothing of the owner overlaps: the new range is enqueued (atomic);
//  - the same range, write -> read: Convert down (atomic);
//  - else the leftovers of the overlapped ranges outside the request are
//    first carved out of them (EnqueueRequest.carve_from: granted at once,
//    ahead of any waiter), and so is the request itself when it lies in
//    one range of at least its mode (read inside write); then the
//    overlapped locks are cancelled. So unlocking or down-converting a
//    sub-range is atomic: nobody slips into what the owner keeps.
//  - a request that needs more (write over read, or beyond the owner's
//    ranges) is then taken anew, waiting or not as asked; when that fails,
//    what the owner held inside its range is taken back with no_wait. Not
//    atomic (a waiter on another mount may slip in; that loss is logged).
//
// Release at close: the kernel drops flock and OFD locks at the last close
// of an open file only through FUSE_RELEASE, which it sends asynchronously
// after close(2) returned (FUSE keeps no local flock/OFD list, so nothing
// synchronous reaches us; FLUSH cannot tell a last close from a dup's). So
// a non-blocking request first checks for a conflict (F_GETLK's way, which
// changes nothing) and, while there is one, polls for up to 150 ms before
// failing with EAGAIN: a lock released by a close that returned on another
// mount is then granted (its RELEASE is already queued there), and a
// refused request leaves the owner's locks untouched. The price: a refused
// F_SETLK / LOCK_NB takes 150 ms and an accepted one one more DLM RPC.
//
// F_GETLK answers from this mount's other owners first, then asks the DLM
// (a test-only enqueue: nothing is created) for another mount's
// conflicting lock, whose exact range and mode are reported; pid is 0 for a
// holder on another mount.
//
// Lost locks: when the DLM evicted this mount (OnBlocking with lost=true)
// the owner's ranges on that lock are dropped (F_GETLK no longer reports
// them as held) and the owner's next Set on that inode fails once with
// ENOLCK, so a program learns that its lock was taken away.
//
// Lock order: mu_ is never held across a DLM call. Operations of one owner
// on one inode are not serialized against each other (a process running
// fcntl on the same file from two threads at once may race).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
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
  // One range held, with the DLM lock over exactly it.
  struct Piece {
    uint64_t start = 0;
    uint64_t end = 0;
    bool write = false;
    uint64_t handle = 0;
  };
  using Key = std::tuple<int, uint64_t, uint64_t>;  // kind, ino, owner
  struct OwnerLocks {
    std::vector<Piece> pieces;  // exact, non-overlapping
    const void* file = nullptr;
    uint32_t pid = 0;
    bool lost = false;  // a piece was lost (eviction): next Set fails once
  };

  static std::string Resource(LockKind kind, uint64_t ino);
  // Takes one exact DLM lock (carved out of the held lock `carve_from`
  // when not 0).
  absl::StatusOr<dlm::LockInfo> Take(LockKind kind, uint64_t ino,
                                     uint64_t start, uint64_t end, bool write,
                                     bool wait,
                                     const std::function<bool()>& interrupted,
                                     uint64_t carve_from = 0);
  void Drop(uint64_t handle);
  void DropKey(const Key& key);

  // The steps of Set.
  // Copies the owner's state into *o (left empty when it has none); ENOLCK
  // once after a piece was lost (eviction).
  absl::Status LoadOwner(const Key& key, OwnerLocks* o)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A non-blocking request: OK when no other owner holds a conflicting
  // lock, waiting up to kReleaseGrace for one to go; else EAGAIN.
  absl::Status AwaitNoConflict(LockKind kind, uint64_t ino, uint64_t owner,
                               const RangeLock& lock,
                               const std::function<bool()>& interrupted)
      ABSL_LOCKS_EXCLUDED(mu_);
  // When the request is exactly one held piece: keeps it (same mode) or
  // converts it down (write -> read), adding it to *n; false when the
  // request needs more.
  bool KeepOrConvert(const std::vector<Piece>& affected, const RangeLock& lock,
                     bool write, OwnerLocks* n);
  // Takes `p` again without waiting (a restored piece, or a leftover whose
  // carving failed) into *n; a failure is logged as a loss (`what`).
  void TakeBack(LockKind kind, uint64_t ino, Piece p, const char* what,
                OwnerLocks* n);
  // Cuts `want` out of the held piece `from` into *n before `from` goes,
  // so no waiter can slip into what the owner keeps. False if the DLM
  // refused.
  bool Carve(LockKind kind, uint64_t ino, const Piece& from, Piece want,
             OwnerLocks* n);
  // Stores the owner's new state (erases it when empty).
  void Store(const Key& key, OwnerLocks n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  dlm::DlmClient* const dlm_;
  absl::Mutex mu_;
  std::map<Key, OwnerLocks> owners_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Key> by_handle_ ABSL_GUARDED_BY(mu_);  // DLM lock
  // Locks reported lost while no owner had them stored (a Set in progress).
  std::set<uint64_t> lost_handles_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::client
