// LockManager: enqueue, convert, cancel, the grant/queue policy, extent
// expansion and eviction.
#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "dlm/lock_manager.h"
#include "spdlog/spdlog.h"

namespace stripefs::dlm {
namespace {

absl::Status ValidateSpec(const LockSpec& spec) {
  if (spec.resource.name.empty()) return Errno(EINVAL, "empty resource name");
  if (spec.resource.type == LockType::kExtent && spec.start > spec.end) {
    return Errno(EINVAL, "extent start after end");
  }
  if (spec.resource.type == LockType::kIbits &&
      (spec.bits == 0 || (spec.bits & ~kAllBits) != 0)) {
    return Errno(EINVAL, "bad inode bits");
  }
  return absl::OkStatus();
}

}  // namespace

bool LockManager::Blocks(const Lock& lock, LockMode mode, const Lock& other,
                         LockMode other_mode) {
  if (lock.exempt_client != 0 && other.rec.client_id == lock.exempt_client) {
    return false;
  }
  return Conflicts(lock.rec.spec, mode, other.rec.spec, other_mode);
}

bool LockManager::Grantable(const Resource& res, const Lock& lock,
                            size_t waiting_index) {
  if (in_recovery_) return false;
  for (uint64_t g : res.granted) {
    const Lock& other = locks_.at(g);
    if (g == lock.rec.handle) continue;
    if (Blocks(lock, lock.rec.req_mode, other, other.rec.spec.mode)) {
      return false;
    }
  }
  for (size_t i = 0; i < waiting_index; ++i) {
    const Lock& other = locks_.at(res.waiting[i]);
    if (Blocks(lock, lock.rec.req_mode, other, other.rec.req_mode)) {
      return false;
    }
  }
  return true;
}

void LockManager::SendBlocking(Lock& holder, const Lock& waiter, Txn& txn) {
  if (holder.bast_sent) return;
  holder.bast_sent = true;
  holder.deadline = clock_->Now() + options_.callback_timeout;
  holder.blocker = Info(waiter);
  txn.events.push_back({holder.rec.client_id,
                        {CallbackEvent::kBlocking, Info(holder),
                         holder.blocker, 0}});
}

void LockManager::Expand(Resource& res, Lock& lock) {
  LockSpec& s = lock.rec.spec;
  uint64_t lo = 0;
  uint64_t hi = kExtentEof;
  size_t contenders = 0;
  auto bound = [&](const Lock& other, LockMode other_mode) {
    if (other.rec.handle == lock.rec.handle) return;
    if (ModesCompatible(s.mode, other_mode)) return;
    ++contenders;
    const LockSpec& o = other.rec.spec;
    if (o.end < s.start) {
      lo = std::max(lo, o.end + 1);
    } else if (o.start > s.end) {
      hi = std::min(hi, o.start - 1);
    } else {
      lo = s.start;  // overlaps (a later waiter): no room on either side
      hi = s.end;
    }
  };
  for (uint64_t g : res.granted) {
    bound(locks_.at(g), locks_.at(g).rec.spec.mode);
  }
  for (uint64_t w : res.waiting) bound(locks_.at(w), locks_.at(w).rec.req_mode);
  lo = std::min(lo, s.start);
  hi = std::max(hi, s.end);
  if (contenders > options_.expand_contention_limit) {
    // Contended resource: grow at most to the surrounding aligned chunk.
    uint64_t chunk_lo = s.start / kExpandChunk * kExpandChunk;
    uint64_t chunk_hi = s.end / kExpandChunk * kExpandChunk;
    chunk_hi = chunk_hi > kExtentEof - kExpandChunk ? kExtentEof
                                                    : chunk_hi + kExpandChunk - 1;
    lo = std::max(lo, chunk_lo);
    hi = std::min(hi, chunk_hi);
  }
  s.start = lo;
  s.end = hi;
}

void LockManager::Reprocess(const std::string& key, Txn& txn) {
  auto rit = resources_.find(key);
  if (rit == resources_.end()) return;
  Resource& res = rit->second;
  // Conversions first: they already hold the resource.
  for (uint64_t h : res.granted) {
    Lock& lock = locks_.at(h);
    if (lock.rec.req_mode == lock.rec.spec.mode) continue;
    if (Grantable(res, lock, 0)) {
      lock.rec.spec.mode = lock.rec.req_mode;
      txn.locks.insert(h);
      txn.events.push_back(
          {lock.rec.client_id, {CallbackEvent::kCompletion, Info(lock), {}, 0}});
    } else if (!in_recovery_) {
      for (uint64_t g : res.granted) {
        Lock& other = locks_.at(g);
        if (g != h &&
            Blocks(lock, lock.rec.req_mode, other, other.rec.spec.mode)) {
          SendBlocking(other, lock, txn);
        }
      }
    }
  }
  // Then the FIFO queue: a waiter is granted only when it conflicts with no
  // granted lock and no earlier waiter.
  for (size_t i = 0; i < res.waiting.size();) {
    Lock& lock = locks_.at(res.waiting[i]);
    if (Grantable(res, lock, i)) {
      lock.rec.granted = true;
      lock.rec.spec.mode = lock.rec.req_mode;
      res.waiting.erase(res.waiting.begin() + i);
      if (res.id.type == LockType::kExtent && !lock.rec.exact) {
        Expand(res, lock);
      }
      res.granted.push_back(lock.rec.handle);
      txn.locks.insert(lock.rec.handle);
      txn.events.push_back(
          {lock.rec.client_id, {CallbackEvent::kCompletion, Info(lock), {}, 0}});
      continue;
    }
    if (!in_recovery_) {
      for (uint64_t g : res.granted) {
        Lock& other = locks_.at(g);
        if (Blocks(lock, lock.rec.req_mode, other, other.rec.spec.mode)) {
          SendBlocking(other, lock, txn);
        }
      }
    }
    ++i;
  }
  if (res.granted.empty() && res.waiting.empty()) resources_.erase(rit);
}

void LockManager::DropCompletion(uint64_t handle, Txn& txn) {
  txn.events.erase(
      std::remove_if(txn.events.begin(), txn.events.end(),
                     [&](const auto& e) {
                       return e.second.kind == CallbackEvent::kCompletion &&
                              e.second.lock.handle == handle;
                     }),
      txn.events.end());
}

void LockManager::ReprocessAll(Txn& txn) {
  std::vector<std::string> keys;
  for (const auto& [key, res] : resources_) keys.push_back(key);
  for (const std::string& key : keys) Reprocess(key, txn);
}

absl::StatusOr<LockInfo> LockManager::Enqueue(uint64_t client_id,
                                              uint64_t xid,
                                              const LockSpec& spec,
                                              bool no_wait, bool exact,
                                              uint64_t carve_from,
                                              uint64_t exempt_client) {
  absl::Status valid = ValidateSpec(spec);
  if (!valid.ok()) return valid;
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  if (auto it = by_xid_.find({client_id, xid}); it != by_xid_.end()) {
    auto lit = locks_.find(it->second);
    if (lit != locks_.end()) return Info(lit->second);
    return Errno(ESTALE, "the lock of this request was cancelled");
  }
  const std::string key = spec.resource.Key();
  Resource& res = resources_[key];
  res.id = spec.resource;

  Lock lock;
  lock.rec.handle = meta_.next_handle++;
  lock.rec.client_id = client_id;
  lock.rec.xid = xid;
  lock.rec.seq = meta_.next_seq++;
  lock.rec.spec = spec;
  lock.rec.req_mode = spec.mode;
  lock.rec.granted = false;
  lock.rec.exact = exact;
  // Exempting oneself means nothing (a client's own locks do conflict).
  if (exempt_client != client_id) lock.exempt_client = exempt_client;
  if (carve_from != 0) {
    auto src = locks_.find(carve_from);
    if (src == locks_.end() || src->second.rec.client_id != client_id ||
        !src->second.rec.granted ||
        spec.resource.type != LockType::kExtent ||
        !(src->second.rec.spec.resource == spec.resource) ||
        src->second.rec.spec.start > spec.start ||
        src->second.rec.spec.end < spec.end ||
        !ModeCovers(src->second.rec.spec.mode, spec.mode)) {
      if (res.granted.empty() && res.waiting.empty()) resources_.erase(key);
      return Errno(EINVAL, absl::StrCat("lock ", carve_from,
                                        " does not cover ", Describe(spec)));
    }
    for (uint64_t g : res.granted) {
      const Lock& other = locks_.at(g);
      if (g != carve_from &&
          Conflicts(spec, spec.mode, other.rec.spec, other.rec.spec.mode)) {
        return Errno(EAGAIN, absl::StrCat(Describe(spec), " is busy"));
      }
    }
    lock.rec.exact = true;
    lock.rec.granted = true;
    const uint64_t handle = lock.rec.handle;
    locks_[handle] = lock;
    res.granted.push_back(handle);
    (*c)->locks.insert(handle);
    by_xid_[{client_id, xid}] = handle;
    Txn txn;
    txn.meta = true;
    txn.locks.insert(handle);
    Commit(txn);
    return Info(locks_.at(handle));
  }
  if (no_wait && !Grantable(res, lock, res.waiting.size())) {
    if (res.granted.empty() && res.waiting.empty()) resources_.erase(key);
    return Errno(EAGAIN, absl::StrCat(Describe(spec), " is busy"));
  }
  const uint64_t handle = lock.rec.handle;
  locks_[handle] = lock;
  res.waiting.push_back(handle);
  (*c)->locks.insert(handle);
  by_xid_[{client_id, xid}] = handle;

  Txn txn;
  txn.meta = true;
  txn.locks.insert(handle);
  Reprocess(key, txn);
  // A lock granted at once needs no completion callback: the reply says it.
  DropCompletion(handle, txn);
  Commit(txn);
  return Info(locks_.at(handle));
}

absl::StatusOr<std::optional<LockInfo>> LockManager::Test(
    uint64_t client_id, const LockSpec& spec) {
  absl::Status valid = ValidateSpec(spec);
  if (!valid.ok()) return valid;
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  auto rit = resources_.find(spec.resource.Key());
  if (rit == resources_.end()) return std::nullopt;
  for (uint64_t g : rit->second.granted) {
    const Lock& other = locks_.at(g);
    if (other.rec.client_id == client_id) continue;
    if (Conflicts(spec, spec.mode, other.rec.spec, other.rec.spec.mode)) {
      return Info(other);
    }
  }
  return std::nullopt;
}

absl::StatusOr<LockInfo> LockManager::Convert(uint64_t client_id,
                                              uint64_t handle, LockMode mode) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  auto it = locks_.find(handle);
  if (it == locks_.end() || it->second.rec.client_id != client_id) {
    return Errno(ENOENT, absl::StrCat("no lock ", handle));
  }
  Lock& lock = it->second;
  if (!lock.rec.granted) {
    return Errno(EINVAL, absl::StrCat("lock ", handle, " is not granted"));
  }
  Txn txn;
  txn.locks.insert(handle);
  if (ModeCovers(lock.rec.spec.mode, mode)) {
    lock.rec.spec.mode = mode;  // down: always possible
  }
  lock.rec.req_mode = mode;
  Reprocess(lock.rec.spec.resource.Key(), txn);
  if (lock.rec.spec.mode == mode) DropCompletion(handle, txn);
  Commit(txn);
  LockInfo info = Info(lock);
  info.granted = lock.rec.spec.mode == mode;
  return info;
}

void LockManager::RemoveLock(uint64_t handle, Txn& txn) {
  auto it = locks_.find(handle);
  if (it == locks_.end()) return;
  const LockRecord& rec = it->second.rec;
  auto rit = resources_.find(rec.spec.resource.Key());
  if (rit != resources_.end()) {
    auto& g = rit->second.granted;
    g.erase(std::remove(g.begin(), g.end(), handle), g.end());
    auto& w = rit->second.waiting;
    w.erase(std::remove(w.begin(), w.end(), handle), w.end());
  }
  auto cit = clients_.find(rec.client_id);
  if (cit != clients_.end()) cit->second.locks.erase(handle);
  by_xid_.erase({rec.client_id, rec.xid});
  for (auto& [id, g] : glimpses_) g.pending.erase(handle);
  locks_.erase(it);
  txn.locks.insert(handle);
}

absl::Status LockManager::Cancel(uint64_t client_id, uint64_t handle) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  auto it = locks_.find(handle);
  if (it == locks_.end()) return absl::OkStatus();
  if (it->second.rec.client_id != client_id) {
    return Errno(EPERM, absl::StrCat("lock ", handle, " belongs to client ",
                                     it->second.rec.client_id));
  }
  const std::string key = it->second.rec.spec.resource.Key();
  Txn txn;
  RemoveLock(handle, txn);
  Reprocess(key, txn);
  Commit(txn);
  return absl::OkStatus();
}

void LockManager::Evict(uint64_t client_id, const Lock& culprit,
                        std::string_view why, Txn& txn) {
  auto cit = clients_.find(client_id);
  if (cit == clients_.end()) return;
  Client& c = cit->second;
  spdlog::warn("evicting client {} ({}): lock {} ({}) {}", client_id, c.name,
               culprit.rec.handle, Describe(culprit.rec.spec), why);
  std::set<std::string> keys;
  std::vector<uint64_t> handles(c.locks.begin(), c.locks.end());
  for (uint64_t h : handles) {
    keys.insert(locks_.at(h).rec.spec.resource.Key());
    RemoveLock(h, txn);
  }
  txn.events.erase(std::remove_if(txn.events.begin(), txn.events.end(),
                                  [&](const auto& e) {
                                    return e.first == client_id;
                                  }),
                   txn.events.end());
  c.events.clear();
  txn.clients.insert(client_id);
  recovering_.erase(client_id);
  if (c.session_gen == 0) {
    clients_.erase(cit);
  } else {
    CallbackEvent ev;
    ev.kind = CallbackEvent::kEvicted;
    ev.lock = Info(culprit);
    c.events.push_back(ev);
    c.evicted = true;
  }
  for (const std::string& key : keys) Reprocess(key, txn);
}

}  // namespace stripefs::dlm
