#include "fuse-client/md_cache.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

MdCache::MdCache(dlm::DlmClient* dlm, Clock* clock)
    : dlm_(dlm), clock_(clock != nullptr ? clock : RealClock()) {
  dlm_->RegisterHandler(kInoPrefix, this);
}

MdCache::~MdCache() { dlm_->UnregisterHandler(kInoPrefix); }

absl::StatusOr<dlm::LockInfo> MdCache::LockInode(
    uint64_t ino, const InterruptFn& interrupted) {
  dlm::LockSpec spec;
  spec.resource = {absl::StrCat(kInoPrefix, ino), dlm::LockType::kIbits};
  spec.mode = dlm::LockMode::kPR;
  spec.bits = kMdBits;
  dlm::LockOptions opts;
  opts.interrupted = interrupted;
  absl::StatusOr<dlm::LockInfo> l = dlm_->Lock(spec, opts);
  if (l.ok()) NoteTaken(ino);
  return l;
}

void MdCache::NoteTaken(uint64_t ino) {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto [it, added] = contention_.try_emplace(
      ino, Contention{now, absl::InfinitePast(), kBypassMin});
  // The first use since the lock was (re)taken starts its life.
  if (!added && it->second.taken == absl::InfinitePast()) {
    it->second.taken = now;
  }
}

bool MdCache::Bypassed(uint64_t ino) {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = contention_.find(ino);
  if (it == contention_.end() || it->second.bypass_until <= now) return false;
  ++bypassed_;
  return true;
}

void MdCache::InheritBypass(uint64_t parent, uint64_t child) {
  absl::MutexLock lock(&mu_);
  auto p = contention_.find(parent);
  if (p == contention_.end()) return;
  absl::Time until = p->second.bypass_until;
  Contention& c = contention_.try_emplace(
      child, Contention{absl::InfinitePast(), absl::InfinitePast(),
                        kBypassMin}).first->second;
  c.bypass_until = std::max(c.bypass_until, until);
}

uint64_t MdCache::BypassCount() {
  absl::MutexLock lock(&mu_);
  return bypassed_;
}

std::optional<Entry> MdCache::GetAttr(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  auto it = attrs_.find(ino);
  if (it == attrs_.end()) return std::nullopt;
  return it->second;
}

void MdCache::CancelEarly(uint64_t ino) {
  dlm_->CancelUnused({absl::StrCat(kInoPrefix, ino), dlm::LockType::kIbits});
}

bool MdCache::HasAttr(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  return attrs_.contains(ino);
}

void MdCache::PutAttr(uint64_t ino, const Entry& e) {
  absl::MutexLock lock(&mu_);
  attrs_[ino] = e;
}

std::optional<uint64_t> MdCache::GetDentry(uint64_t parent,
                                           const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto d = dentries_.find(parent);
  if (d == dentries_.end()) return std::nullopt;
  auto it = d->second.find(name);
  if (it == d->second.end()) return std::nullopt;
  return it->second;
}

void MdCache::PutDentry(uint64_t parent, const std::string& name,
                        uint64_t ino) {
  absl::MutexLock lock(&mu_);
  auto& d = dentries_[parent];
  // Bound a huge directory's negative entries: start afresh.
  if (d.size() >= 65536) d.clear();
  d[name] = ino;
}

std::shared_ptr<const std::vector<DirEntry>> MdCache::GetListing(
    uint64_t ino) {
  absl::MutexLock lock(&mu_);
  auto it = listings_.find(ino);
  return it == listings_.end() ? nullptr : it->second;
}

void MdCache::PutListing(uint64_t ino, std::vector<DirEntry> entries) {
  absl::MutexLock lock(&mu_);
  auto& d = dentries_[ino];
  for (DirEntry& e : entries) {
    e.entry.reset();
    d[e.name] = e.ino;
  }
  listings_[ino] =
      std::make_shared<const std::vector<DirEntry>>(std::move(entries));
}

void MdCache::Drop(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  attrs_.erase(ino);
  dentries_.erase(ino);
  listings_.erase(ino);
}

void MdCache::OnBlocking(const dlm::LockInfo& lock, bool lost) {
  if (lock.spec.resource.type != dlm::LockType::kIbits) return;
  const std::string& name = lock.spec.resource.name;
  uint64_t ino = 0;
  if (name.size() <= sizeof(kInoPrefix) - 1 ||
      !absl::SimpleAtoi(name.substr(sizeof(kInoPrefix) - 1), &ino)) {
    spdlog::warn("md cache: blocking callback for unexpected lock {}", name);
    return;
  }
  Drop(ino);
  if (on_drop_) on_drop_(ino);
  if (lost || !adaptive_) return;
  absl::Time now = clock_->Now();
  absl::MutexLock l(&mu_);
  auto it = contention_.find(ino);
  if (it == contention_.end()) return;
  Contention& c = it->second;
  if (c.taken != absl::InfinitePast() && now - c.taken < kContendedLife) {
    // Asked back soon after it was taken, again and again: stop locking
    // for a while, and longer each time the contention goes on.
    if (++c.quick >= kContendedRevokes) {
      c.bypass_until = now + c.window;
      c.window = std::min(c.window * 2, kBypassMax);
    }
    c.taken = absl::InfinitePast();
  } else if (c.bypass_until <= now) {
    // A long-lived lock: nothing to remember.
    contention_.erase(it);
  } else {
    c.taken = absl::InfinitePast();
  }
  // Bound the table (inodes never revoked again would stay forever).
  if (contention_.size() > 65536) {
    absl::erase_if(contention_, [now](const auto& kv) {
      return kv.second.bypass_until <= now;
    });
  }
}

}  // namespace stripefs::client
