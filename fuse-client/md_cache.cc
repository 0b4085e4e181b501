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
  held_.insert(ino);
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

uint64_t MdCache::GenLocked(uint64_t ino) {
  auto it = gens_.find(ino);
  return it == gens_.end() ? gen_floor_ : it->second;
}

uint64_t MdCache::BumpLocked(uint64_t ino) {
  // Bound the table: forgetting every generation moves the floor past all
  // of them, so every fill in flight is refused (never a stale one kept).
  if (gens_.size() >= 65536) {
    gens_.clear();
    gen_floor_ = ++next_gen_;
  }
  return gens_[ino] = ++next_gen_;
}

bool MdCache::FillOkLocked(uint64_t ino, uint64_t gen) {
  if (pending_.contains(ino)) return false;
  return gen == kAnyGen || GenLocked(ino) == gen;
}

uint64_t MdCache::Gen(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  return GenLocked(ino);
}

std::optional<Entry> MdCache::GetAttr(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  if (pending_.contains(ino)) return std::nullopt;
  auto it = attrs_.find(ino);
  if (it == attrs_.end()) return std::nullopt;
  return it->second;
}

void MdCache::CancelEarly(uint64_t ino) {
  dlm_->CancelUnused({absl::StrCat(kInoPrefix, ino), dlm::LockType::kIbits});
}

bool MdCache::HasAttr(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  return attrs_.contains(ino) && !pending_.contains(ino);
}

bool MdCache::PutAttr(uint64_t ino, const Entry& e, uint64_t gen) {
  absl::MutexLock lock(&mu_);
  if (!FillOkLocked(ino, gen)) return false;
  attrs_[ino] = e;
  return true;
}

std::optional<uint64_t> MdCache::GetDentry(uint64_t parent,
                                           const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (pending_.contains(parent)) return std::nullopt;
  auto d = dentries_.find(parent);
  const bool complete = complete_.contains(parent);
  if (d == dentries_.end()) {
    return complete ? std::optional<uint64_t>(0) : std::nullopt;
  }
  auto it = d->second.find(name);
  if (it == d->second.end()) {
    return complete ? std::optional<uint64_t>(0) : std::nullopt;
  }
  return it->second;
}

bool MdCache::WorthProbing(uint64_t dir) {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (pending_.contains(dir) || complete_.contains(dir) ||
      big_.contains(dir)) {
    return false;
  }
  // Not a directory whose lock was lately asked back soon after it was
  // taken, twice in a row (renames cancel it each time): its listing
  // would not last. Once is common (a chmod right after a mkdir).
  auto c = contention_.find(dir);
  return c == contention_.end() ||
         (c->second.bypass_until <= now && c->second.quick < 2);
}

void MdCache::MarkBig(uint64_t dir, uint64_t gen) {
  absl::MutexLock lock(&mu_);
  if (FillOkLocked(dir, gen)) big_.insert(dir);
}

bool MdCache::PutDentry(uint64_t parent, const std::string& name,
                        uint64_t ino, uint64_t gen) {
  absl::MutexLock lock(&mu_);
  if (!FillOkLocked(parent, gen)) return false;
  auto& d = dentries_[parent];
  // Bound a huge directory's negative entries: start afresh.
  if (d.size() >= 65536) {
    d.clear();
    complete_.erase(parent);
  }
  d[name] = ino;
  return true;
}

std::shared_ptr<const std::vector<DirEntry>> MdCache::GetListing(
    uint64_t ino) {
  absl::MutexLock lock(&mu_);
  if (pending_.contains(ino)) return nullptr;
  auto it = listings_.find(ino);
  return it == listings_.end() ? nullptr : it->second;
}

bool MdCache::PutListing(uint64_t ino, std::vector<DirEntry> entries,
                         uint64_t gen) {
  absl::MutexLock lock(&mu_);
  if (!FillOkLocked(ino, gen)) return false;
  auto& d = dentries_[ino];
  for (DirEntry& e : entries) {
    e.entry.reset();
    d[e.name] = e.ino;
  }
  listings_[ino] =
      std::make_shared<const std::vector<DirEntry>>(std::move(entries));
  if (d.size() < 65536) complete_.insert(ino);
  big_.erase(ino);
  return true;
}

void MdCache::DropLocked(uint64_t ino) {
  attrs_.erase(ino);
  dentries_.erase(ino);
  listings_.erase(ino);
  complete_.erase(ino);
  big_.erase(ino);
  BumpLocked(ino);
}

void MdCache::Drop(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  DropLocked(ino);
}

MdCache::Intent MdCache::PrepareIntent() {
  Intent in;
  in.token = dlm_->PrepareAdopt();
  absl::MutexLock lock(&mu_);
  in.gen_mark = next_gen_;
  return in;
}

bool MdCache::AdoptIntent(const Intent& in, const Entry* e, uint64_t handle) {
  std::optional<dlm::LockInfo> offered;
  if (e != nullptr && handle != 0) {
    dlm::LockInfo info;
    info.handle = handle;
    info.client_id = dlm_->client_id();
    info.spec.resource = {absl::StrCat(kInoPrefix, e->attr.ino),
                          dlm::LockType::kIbits};
    info.spec.mode = dlm::LockMode::kPR;
    info.spec.bits = kMdBits;
    info.granted = true;
    offered = info;
  }
  absl::StatusOr<dlm::LockInfo> l = dlm_->Adopt(in.token, offered);
  if (!l.ok()) {
    if (offered.has_value()) {
      spdlog::debug("md cache: intent lock {}: {}", handle,
                    l.status().ToString());
    }
    return false;
  }
  const uint64_t ino = e->attr.ino;
  NoteTaken(ino);
  bool cached = false;
  {
    absl::MutexLock lock(&mu_);
    // Generations only grow: ino not bumped since PrepareIntent means no
    // drop of it since the request left (one after this is applied to the
    // entry cached here).
    if (!pending_.contains(ino) && GenLocked(ino) <= in.gen_mark) {
      attrs_[ino] = *e;
      cached = true;
    }
  }
  Release(*l);
  return cached;
}

MdCache::Change MdCache::BeginChange(uint64_t dir) {
  absl::MutexLock lock(&mu_);
  ++pending_[dir];
  Change c;
  c.dir = dir;
  c.gen = BumpLocked(dir);
  c.held = held_.contains(dir);
  return c;
}

void MdCache::EndChange(const Change& c, bool ok, const std::string& name,
                        uint64_t child, uint64_t changed,
                        const Entry* dir_after) {
  absl::MutexLock lock(&mu_);
  auto p = pending_.find(c.dir);
  if (p != pending_.end() && --p->second <= 0) pending_.erase(p);
  if (changed != 0 && changed != c.dir) DropLocked(changed);
  // Applied only under a lock held since before the request: no drop (and
  // no other own change) of dir in between, or the cache of dir goes.
  if (!ok || !c.held || GenLocked(c.dir) != c.gen) {
    DropLocked(c.dir);
    return;
  }
  if (dir_after != nullptr && dir_after->attr.ino == c.dir) {
    attrs_[c.dir] = *dir_after;
  } else {
    attrs_.erase(c.dir);
  }
  listings_.erase(c.dir);
  auto& d = dentries_[c.dir];
  if (d.size() >= 65536) {
    d.clear();
    complete_.erase(c.dir);
  }
  // A complete directory stays complete: the name is set either way.
  d[name] = child;
  // A fill that read dir before this change landed is refused.
  BumpLocked(c.dir);
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
  {
    absl::MutexLock l(&mu_);
    held_.erase(ino);
    DropLocked(ino);
  }
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
