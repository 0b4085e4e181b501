#include "dlm/lock_cache.h"

#include <algorithm>

namespace stripefs::dlm {

CachedLock& LockCache::Insert(const LockInfo& info) {
  CachedLock& c = locks_[info.handle];
  c.info = info;
  c.users = 1;
  c.last_used = clock_->Now();
  return c;
}

CachedLock* LockCache::Find(uint64_t handle) {
  auto it = locks_.find(handle);
  return it == locks_.end() ? nullptr : &it->second;
}

CachedLock* LockCache::Match(const LockSpec& want) {
  for (auto& [h, c] : locks_) {
    if (c.Ready() && !c.blocked && !c.cancelling && Covers(c.info.spec, want)) {
      return &c;
    }
  }
  return nullptr;
}

void LockCache::Use(CachedLock& lock) {
  ++lock.users;
  lock.last_used = clock_->Now();
}

void LockCache::Release(CachedLock& lock) {
  if (lock.users > 0) --lock.users;
  lock.last_used = clock_->Now();
}

void LockCache::Erase(uint64_t handle) { locks_.erase(handle); }

std::vector<LockInfo> LockCache::CollectExpired() {
  std::vector<CachedLock*> idle;
  for (auto& [h, c] : locks_) {
    if (c.users == 0 && c.info.granted && !c.cancelling) idle.push_back(&c);
  }
  std::sort(idle.begin(), idle.end(), [](CachedLock* a, CachedLock* b) {
    return a->last_used < b->last_used;
  });
  // Locks still counted against max_count (not yet cancelling).
  size_t live = 0;
  for (auto& [h, c] : locks_) live += c.cancelling ? 0 : 1;
  const absl::Time now = clock_->Now();
  std::vector<LockInfo> out;
  for (CachedLock* c : idle) {
    if (live > options_.max_count || now - c->last_used > options_.max_age) {
      c->cancelling = true;
      --live;
      out.push_back(c->info);
    }
  }
  return out;
}

std::vector<uint64_t> LockCache::InUseBlocked() const {
  std::vector<uint64_t> out;
  for (const auto& [h, c] : locks_) {
    if (c.blocked && c.users > 0) out.push_back(h);
  }
  return out;
}

std::vector<LockInfo> LockCache::Granted() const {
  std::vector<LockInfo> out;
  for (const auto& [h, c] : locks_) {
    if (c.info.granted) out.push_back(c.info);
  }
  return out;
}

std::vector<uint64_t> LockCache::Handles() const {
  std::vector<uint64_t> out;
  for (const auto& [h, c] : locks_) out.push_back(h);
  return out;
}

}  // namespace stripefs::dlm
