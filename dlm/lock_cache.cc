#include "dlm/lock_cache.h"

#include <algorithm>

namespace stripefs::dlm {

CachedLock& LockCache::Insert(const LockInfo& info) {
  by_resource_[info.spec.resource.Key()].insert(info.handle);
  CachedLock& c = locks_[info.handle];
  idle_.erase({c.last_used, info.handle});  // in use again if it was there
  c.info = info;
  c.users = 1;
  c.last_used = clock_->Now();
  return c;
}

CachedLock* LockCache::Find(uint64_t handle) {
  auto it = locks_.find(handle);
  return it == locks_.end() ? nullptr : &it->second;
}

CachedLock* LockCache::Match(const LockSpec& want, uint64_t exempt_client) {
  auto r = by_resource_.find(want.resource.Key());
  if (r == by_resource_.end()) return nullptr;
  for (uint64_t h : r->second) {
    CachedLock& c = locks_.at(h);
    if (c.info.exempt_client != 0 && c.info.exempt_client != exempt_client) {
      continue;
    }
    if (c.Ready() && !c.blocked && !c.cancelling && Covers(c.info.spec, want)) {
      return &c;
    }
  }
  return nullptr;
}

std::vector<LockInfo> LockCache::TakeUnused(const ResourceId& resource) {
  std::vector<LockInfo> out;
  auto r = by_resource_.find(resource.Key());
  if (r == by_resource_.end()) return out;
  for (uint64_t h : r->second) {
    CachedLock& c = locks_.at(h);
    if (c.Ready() && c.users == 0 && !c.cancelling) {
      c.blocked = true;
      MarkCancelling(c);
      out.push_back(c.info);
    }
  }
  return out;
}

std::vector<LockInfo> LockCache::TakeUnusedPrefix(const std::string& prefix) {
  std::vector<LockInfo> out;
  for (auto& [key, handles] : by_resource_) {
    for (uint64_t h : handles) {
      CachedLock& c = locks_.at(h);
      if (c.info.spec.resource.name.compare(0, prefix.size(), prefix) != 0) {
        break;  // one resource per key
      }
      if (c.Ready() && c.users == 0 && !c.cancelling) {
        c.blocked = true;
        MarkCancelling(c);
        out.push_back(c.info);
      }
    }
  }
  return out;
}

void LockCache::Use(CachedLock& lock) {
  idle_.erase({lock.last_used, lock.info.handle});
  ++lock.users;
  lock.last_used = clock_->Now();
}

void LockCache::Release(CachedLock& lock) {
  idle_.erase({lock.last_used, lock.info.handle});
  if (lock.users > 0) --lock.users;
  lock.last_used = clock_->Now();
  if (lock.users == 0 && !lock.cancelling) {
    idle_.insert({lock.last_used, lock.info.handle});
  }
}

void LockCache::MarkCancelling(CachedLock& c) {
  if (c.cancelling) return;
  idle_.erase({c.last_used, c.info.handle});
  c.cancelling = true;
  ++cancelling_;
}

void LockCache::Erase(uint64_t handle) {
  auto it = locks_.find(handle);
  if (it == locks_.end()) return;
  idle_.erase({it->second.last_used, handle});
  if (it->second.cancelling) --cancelling_;
  auto r = by_resource_.find(it->second.info.spec.resource.Key());
  if (r != by_resource_.end()) {
    r->second.erase(handle);
    if (r->second.empty()) by_resource_.erase(r);
  }
  locks_.erase(it);
}

std::vector<LockInfo> LockCache::CollectExpired() {
  // Locks still counted against max_count (not yet cancelling).
  size_t live = locks_.size() - cancelling_;
  const absl::Time now = clock_->Now();
  std::vector<LockInfo> out;
  for (auto it = idle_.begin(); it != idle_.end();) {
    CachedLock& c = locks_.at(it->second);
    ++it;  // MarkCancelling erases c's entry
    if (live <= options_.max_count && now - c.last_used <= options_.max_age) {
      break;  // the rest were used later
    }
    if (!c.info.granted) continue;  // still waiting: not the LRU's
    MarkCancelling(c);
    --live;
    out.push_back(c.info);
  }
  return out;
}

std::vector<uint64_t> LockCache::BlockedHeld(bool all) const {
  std::vector<uint64_t> out;
  for (const auto& [h, c] : locks_) {
    if (c.blocked && c.info.granted && (all || c.users > 0)) out.push_back(h);
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
