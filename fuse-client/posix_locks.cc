#include "fuse-client/posix_locks.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errors.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {
namespace {

// How long a non-blocking request that conflicts waits for the conflicting
// lock to be released anyway (see Set).
constexpr absl::Duration kReleaseGrace = absl::Milliseconds(150);
constexpr absl::Duration kGracePoll = absl::Milliseconds(5);
// Bound of lost_handles_ (lost locks not stored when they were lost).
constexpr size_t kMaxLostHandles = 4096;

bool Overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) {
  return a0 <= b1 && b0 <= a1;
}

}  // namespace

PosixLocks::PosixLocks(dlm::DlmClient* dlm) : dlm_(dlm) {
  dlm_->RegisterHandler("posix:", this);
  dlm_->RegisterHandler("flock:", this);
}

PosixLocks::~PosixLocks() {
  dlm_->UnregisterHandler("posix:");
  dlm_->UnregisterHandler("flock:");
}

std::string PosixLocks::Resource(LockKind kind, uint64_t ino) {
  return absl::StrCat(kind == LockKind::kFlock ? "flock:" : "posix:", ino);
}

absl::StatusOr<dlm::LockInfo> PosixLocks::Take(
    LockKind kind, uint64_t ino, uint64_t start, uint64_t end, bool write,
    bool wait, const std::function<bool()>& interrupted,
    uint64_t carve_from) {
  dlm::LockSpec spec;
  spec.resource = {Resource(kind, ino), dlm::LockType::kExtent};
  spec.mode = write ? dlm::LockMode::kPW : dlm::LockMode::kPR;
  spec.start = start;
  spec.end = end;
  dlm::LockOptions opts;
  opts.interrupted = interrupted;
  opts.no_wait = !wait;
  opts.no_cache_match = true;  // never share a lock with another owner
  opts.exact = true;           // never widened: ranges of mounts are exact
  opts.carve_from = carve_from;
  return dlm_->Lock(spec, opts);
}

void PosixLocks::Drop(uint64_t handle) {
  if (absl::Status s = dlm_->Cancel(handle); !s.ok()) {
    spdlog::warn("cancel of record lock {}: {}", handle, s.ToString());
  }
}

void PosixLocks::Store(const Key& key, OwnerLocks n) {
  auto it = owners_.find(key);
  if (it != owners_.end()) {
    for (const Piece& p : it->second.pieces) by_handle_.erase(p.handle);
    // Lost while the caller worked on a copy: stays lost.
    if (it->second.lost) n.lost = true;
  }
  // Pieces lost (eviction) while the caller held no mu_ are not held.
  n.pieces.erase(std::remove_if(n.pieces.begin(), n.pieces.end(),
                                [&](const Piece& p) {
                                  mu_.AssertHeld();  // Store's caller's
                                  if (lost_handles_.erase(p.handle) == 0) {
                                    return false;
                                  }
                                  n.lost = true;
                                  return true;
                                }),
                 n.pieces.end());
  if (n.pieces.empty() && !n.lost) {
    if (it != owners_.end()) owners_.erase(it);
    return;
  }
  std::sort(n.pieces.begin(), n.pieces.end(),
            [](const Piece& a, const Piece& b) { return a.start < b.start; });
  for (const Piece& p : n.pieces) by_handle_[p.handle] = key;
  owners_[key] = std::move(n);
}

absl::Status PosixLocks::LoadOwner(const Key& key, OwnerLocks* o) {
  absl::MutexLock l(&mu_);
  auto it = owners_.find(key);
  if (it == owners_.end()) return absl::OkStatus();
  if (it->second.lost) {
    it->second.lost = false;
    OwnerLocks left = it->second;
    Store(key, std::move(left));
    return Errno(ENOLCK, "lock lost: the lock service evicted this mount");
  }
  *o = it->second;
  return absl::OkStatus();
}

absl::Status PosixLocks::AwaitNoConflict(
    LockKind kind, uint64_t ino, uint64_t owner, const RangeLock& lock,
    const std::function<bool()>& interrupted) {
  const absl::Time deadline = absl::Now() + kReleaseGrace;
  for (;;) {
    absl::StatusOr<RangeLock> c = Get(kind, ino, owner, lock);
    if (!c.ok()) return c.status();
    if (c->type == LockType::kUnlock) return absl::OkStatus();
    if (absl::Now() >= deadline || (interrupted && interrupted())) {
      return Errno(EAGAIN, absl::StrCat("[", lock.start, ", ", lock.end,
                                        "] of ino ", ino, " is locked"));
    }
    absl::SleepFor(kGracePoll);
  }
}

bool PosixLocks::KeepOrConvert(const std::vector<Piece>& affected,
                               const RangeLock& lock, bool write,
                               OwnerLocks* n) {
  if (affected.size() != 1 || affected[0].start != lock.start ||
      affected[0].end != lock.end) {
    return false;
  }
  Piece p = affected[0];
  if (p.write == write) {
    n->pieces.push_back(p);  // already held as asked
    return true;
  }
  if (p.write && !write) {
    absl::StatusOr<dlm::LockInfo> c =
        dlm_->Convert(p.handle, dlm::LockMode::kPR);
    if (c.ok()) {
      p.write = false;
      n->pieces.push_back(p);
      return true;
    }
    spdlog::warn("down-conversion of record lock {}: {}", p.handle,
                 c.status().ToString());
  }
  return false;
}

void PosixLocks::TakeBack(LockKind kind, uint64_t ino, Piece p,
                          const char* what, OwnerLocks* n) {
  absl::StatusOr<dlm::LockInfo> t =
      Take(kind, ino, p.start, p.end, p.write, false, nullptr);
  if (!t.ok()) {
    spdlog::warn("record lock [{}, {}] of ino {} lost on a {}: {}", p.start,
                 p.end, ino, what, t.status().ToString());
    return;
  }
  p.handle = t->handle;
  n->pieces.push_back(p);
}

bool PosixLocks::Carve(LockKind kind, uint64_t ino, const Piece& from,
                       Piece want, OwnerLocks* n) {
  absl::StatusOr<dlm::LockInfo> t = Take(
      kind, ino, want.start, want.end, want.write, false, nullptr, from.handle);
  if (!t.ok()) {
    spdlog::warn("splitting record lock {} of ino {}: {}", from.handle, ino,
                 t.status().ToString());
    return false;
  }
  want.handle = t->handle;
  n->pieces.push_back(want);
  return true;
}

absl::Status PosixLocks::Set(LockKind kind, uint64_t ino, uint64_t owner,
                             const void* file, RangeLock lock, bool wait,
                             const std::function<bool()>& interrupted) {
  if (lock.end < lock.start) return Errno(EINVAL, "lock range ends first");
  const Key key{static_cast<int>(kind), ino, owner};
  const bool unlock = lock.type == LockType::kUnlock;
  const bool write = lock.type == LockType::kWrite;
  OwnerLocks o;
  if (absl::Status s = LoadOwner(key, &o); !s.ok()) return s;
  // The owner's pieces the request overlaps, and the rest.
  std::vector<Piece> affected;
  OwnerLocks n = o;
  n.pieces.clear();
  for (const Piece& p : o.pieces) {
    (Overlaps(p.start, p.end, lock.start, lock.end) ? affected : n.pieces)
        .push_back(p);
  }
  if (file != nullptr) n.file = file;
  if (!unlock) n.pid = lock.pid;
  if (unlock && affected.empty()) return absl::OkStatus();
  if (!unlock && !wait) {
    // Refuse before touching anything (so a refused request leaves the
    // owner's locks as they were). A conflicting flock/OFD lock whose last
    // close returned already is about to go (its FUSE_RELEASE is queued):
    // give it kReleaseGrace.
    if (absl::Status s = AwaitNoConflict(kind, ino, owner, lock, interrupted);
        !s.ok()) {
      return s;
    }
  }
  // The same range held: kept as it is, or converted down (atomic).
  if (!unlock && KeepOrConvert(affected, lock, write, &n)) {
    absl::MutexLock l(&mu_);
    Store(key, std::move(n));
    return absl::OkStatus();
  }

  // What the request does not cover of the pieces it overlaps stays held:
  // carved out of them before they go, so no waiter can slip into what
  // the owner keeps; taken again without waiting when carving failed.
  std::vector<Piece> retake;
  for (const Piece& p : affected) {
    if (p.start < lock.start) {
      Piece left{p.start, lock.start - 1, p.write, 0};
      if (!Carve(kind, ino, p, left, &n)) retake.push_back(left);
    }
    if (p.end > lock.end) {
      Piece right{lock.end + 1, p.end, p.write, 0};
      if (!Carve(kind, ino, p, right, &n)) retake.push_back(right);
    }
  }
  // A request inside one piece that gives at least its mode (a read lock
  // inside a write lock) is carved too: atomic.
  bool done = unlock;
  if (!done && affected.size() == 1 && affected[0].start <= lock.start &&
      affected[0].end >= lock.end && (affected[0].write || !write)) {
    done = Carve(kind, ino, affected[0], {lock.start, lock.end, write, 0}, &n);
  }
  for (const Piece& p : affected) Drop(p.handle);
  for (const Piece& p : retake) TakeBack(kind, ino, p, "split", &n);
  if (!done) {
    absl::StatusOr<dlm::LockInfo> t =
        Take(kind, ino, lock.start, lock.end, write, wait, interrupted);
    if (!t.ok()) {
      // The request fails as a whole: back to the old state (what the
      // old pieces held inside the request's range).
      for (const Piece& p : affected) {
        TakeBack(kind, ino,
                 {std::max(p.start, lock.start), std::min(p.end, lock.end),
                  p.write, 0},
                 "failed conversion", &n);
      }
      n.pid = o.pid;
      absl::MutexLock l(&mu_);
      Store(key, std::move(n));
      return t.status();
    }
    n.pieces.push_back({lock.start, lock.end, write, t->handle});
  }
  absl::MutexLock l(&mu_);
  Store(key, std::move(n));
  return absl::OkStatus();
}

absl::StatusOr<RangeLock> PosixLocks::Get(LockKind kind, uint64_t ino,
                                          uint64_t owner, RangeLock lock) {
  const bool write = lock.type == LockType::kWrite;
  {
    absl::MutexLock l(&mu_);
    auto it = owners_.lower_bound(Key{static_cast<int>(kind), ino, 0});
    for (; it != owners_.end() &&
           std::get<0>(it->first) == static_cast<int>(kind) &&
           std::get<1>(it->first) == ino;
         ++it) {
      if (std::get<2>(it->first) == owner) continue;
      for (const Piece& p : it->second.pieces) {
        if (!Overlaps(p.start, p.end, lock.start, lock.end)) continue;
        if (write || p.write) {
          return RangeLock{p.write ? LockType::kWrite : LockType::kRead,
                           p.start, p.end, it->second.pid};
        }
      }
    }
  }
  // Other mounts: the DLM names a conflicting lock without creating one.
  dlm::LockSpec spec;
  spec.resource = {Resource(kind, ino), dlm::LockType::kExtent};
  spec.mode = write ? dlm::LockMode::kPW : dlm::LockMode::kPR;
  spec.start = lock.start;
  spec.end = lock.end;
  absl::StatusOr<std::optional<dlm::LockInfo>> c = dlm_->Test(spec);
  if (!c.ok()) return c.status();
  if (!c->has_value()) return RangeLock{};
  const dlm::LockInfo& held = **c;
  const bool held_write = held.spec.mode == dlm::LockMode::kPW ||
                          held.spec.mode == dlm::LockMode::kEX;
  return RangeLock{held_write ? LockType::kWrite : LockType::kRead,
                   held.spec.start, held.spec.end, 0};
}

void PosixLocks::DropKey(const Key& key) {
  std::vector<Piece> pieces;
  {
    absl::MutexLock l(&mu_);
    auto it = owners_.find(key);
    if (it == owners_.end()) return;
    pieces = it->second.pieces;
    for (const Piece& p : pieces) by_handle_.erase(p.handle);
    owners_.erase(it);
  }
  for (const Piece& p : pieces) Drop(p.handle);
}

void PosixLocks::DropOwner(uint64_t ino, uint64_t owner) {
  DropKey(Key{static_cast<int>(LockKind::kPosix), ino, owner});
}

void PosixLocks::DropFile(const void* file) {
  std::vector<Key> keys;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [key, o] : owners_) {
      if (o.file == file) keys.push_back(key);
    }
  }
  for (const Key& k : keys) DropKey(k);
}

void PosixLocks::OnBlocking(const dlm::LockInfo& lock, bool lost) {
  // Locks in use are never cancelled on a blocking callback; only a lost
  // lock (eviction) matters: it is no longer held.
  if (!lost) return;
  absl::MutexLock l(&mu_);
  auto h = by_handle_.find(lock.handle);
  if (h == by_handle_.end()) {
    // Not stored (yet): a Set in progress may store it; Store drops it.
    if (lost_handles_.size() < kMaxLostHandles) {
      lost_handles_.insert(lock.handle);
    }
    return;
  }
  const Key key = h->second;
  by_handle_.erase(h);
  auto it = owners_.find(key);
  if (it == owners_.end()) return;
  auto& pieces = it->second.pieces;
  pieces.erase(std::remove_if(pieces.begin(), pieces.end(),
                              [&](const Piece& p) {
                                return p.handle == lock.handle;
                              }),
               pieces.end());
  it->second.lost = true;
  spdlog::warn("{} lock [{}, {}] on {} lost (lock service eviction)",
               std::get<0>(key) == static_cast<int>(LockKind::kFlock)
                   ? "flock"
                   : "record",
               lock.spec.start, lock.spec.end, lock.spec.resource.name);
}

}  // namespace stripefs::client
