// LockCache: the client-side table of locks a DlmClient holds or waits for,
// with per-lock use counts and an LRU over unused granted locks (limits on
// count and on age since last use). A granted lock that covers a new
// request is reused instead of enqueuing again. No gRPC types.
//
// Thread-safety: not thread-safe; DlmClient guards it with its mutex.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "dlm/lock_types.h"

namespace stripefs::dlm {

struct LockCacheOptions {
  // Unused granted locks beyond this many are cancelled, least recently
  // used first. Default 4096.
  size_t max_count = 4096;
  // Unused granted locks not used for this long are cancelled. Default 5 min.
  absl::Duration max_age = absl::Minutes(5);
};

struct CachedLock {
  LockInfo info;          // as granted (range may be wider than asked)
  int users = 0;          // Lock() calls not yet Release()d
  bool blocked = false;   // asked back by the DLM: no new users
  bool cancelling = false;  // handed to the cancel path (MarkCancelling)
  absl::Time last_used;

  bool Ready() const { return info.granted; }
};

class LockCache {
 public:
  LockCache(LockCacheOptions options, Clock* clock)
      : options_(options), clock_(clock) {}

  // Adds a lock (waiting or granted) with one user.
  CachedLock& Insert(const LockInfo& info);
  CachedLock* Find(uint64_t handle);
  // A granted, not blocked lock that covers `want`, or null. A lock
  // granted with an own-change exemption matches only a request with the
  // same exemption (`exempt_client`); one without matches any.
  CachedLock* Match(const LockSpec& want, uint64_t exempt_client = 0);
  // Granted locks on `resource` that nobody uses and that are not being
  // cancelled; each is marked blocked and cancelling (early cancel).
  std::vector<LockInfo> TakeUnused(const ResourceId& resource);
  // The same for every resource whose name starts with `prefix`.
  std::vector<LockInfo> TakeUnusedPrefix(const std::string& prefix);
  // One more / one less user. Release stamps the LRU time.
  void Use(CachedLock& lock);
  void Release(CachedLock& lock);
  void Erase(uint64_t handle);
  // Hands a lock to the cancel path: it leaves the LRU and stops counting
  // against max_count. The only way `cancelling` is set.
  void MarkCancelling(CachedLock& c);

  // Unused granted locks the LRU wants gone (over max_count, oldest first,
  // or unused for longer than max_age); each is marked cancelling.
  std::vector<LockInfo> CollectExpired();
  // Handles of locks asked back and not yet cancelled that this client is
  // still working on (to Touch, so the DLM's callback timeout does not
  // evict it): those in use; with `all`, also those waiting for or running
  // their handler (set while a handler does real work, e.g. writes dirty
  // data back to an OSS that is slow or cut off).
  std::vector<uint64_t> BlockedHeld(bool all) const;
  // Every granted lock (to Replay after a reconnect).
  std::vector<LockInfo> Granted() const;
  std::vector<uint64_t> Handles() const;
  size_t size() const { return locks_.size(); }

 private:
  const LockCacheOptions options_;
  Clock* const clock_;

  std::map<uint64_t, CachedLock> locks_;
  // The LRU: locks nobody uses and that are not cancelling, by last use
  // (oldest first), so CollectExpired costs what it takes, not the cache.
  std::set<std::pair<absl::Time, uint64_t>> idle_;
  size_t cancelling_ = 0;  // locks_ marked cancelling
  // Resource key -> handles of its locks (Match and TakeUnused look up
  // one resource instead of scanning the cache).
  std::map<std::string, std::set<uint64_t>> by_resource_;
};

}  // namespace stripefs::dlm
