#include "fuse-client/posix_locks.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {
namespace {

struct Interval {
  uint64_t start;
  uint64_t end;  // inclusive
};

bool Overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) {
  return a0 <= b1 && b0 <= a1;
}

// The parts of [s, e] not covered by `cover`.
std::vector<Interval> Subtract(uint64_t s, uint64_t e,
                               std::vector<Interval> cover) {
  std::sort(cover.begin(), cover.end(),
            [](const Interval& a, const Interval& b) {
              return a.start < b.start;
            });
  std::vector<Interval> out;
  uint64_t pos = s;
  bool done = false;
  for (const Interval& c : cover) {
    if (done) break;
    if (c.end < pos || c.start > e) continue;
    if (c.start > pos) out.push_back({pos, c.start - 1});
    if (c.end >= e) {
      done = true;
    } else {
      pos = std::max(pos, c.end + 1);
    }
  }
  if (!done && pos <= e) out.push_back({pos, e});
  return out;
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
    bool wait, const std::function<bool()>& interrupted) {
  dlm::LockSpec spec;
  spec.resource = {Resource(kind, ino), dlm::LockType::kExtent};
  spec.mode = write ? dlm::LockMode::kPW : dlm::LockMode::kPR;
  spec.start = start;
  spec.end = end;
  dlm::LockOptions opts;
  opts.interrupted = interrupted;
  opts.no_wait = !wait;
  opts.no_cache_match = true;  // never share a lock with another owner
  return dlm_->Lock(spec, opts);
}

void PosixLocks::Drop(uint64_t handle) {
  if (absl::Status s = dlm_->Cancel(handle); !s.ok()) {
    spdlog::warn("cancel of record lock {}: {}", handle, s.ToString());
  }
}

absl::Status PosixLocks::Set(LockKind kind, uint64_t ino, uint64_t owner,
                             const void* file, RangeLock lock, bool wait,
                             const std::function<bool()>& interrupted) {
  if (lock.end < lock.start) return Errno(EINVAL, "lock range ends first");
  const Key key{static_cast<int>(kind), ino, owner};
  const bool unlock = lock.type == LockType::kUnlock;
  OwnerLocks o;
  {
    absl::MutexLock l(&mu_);
    auto it = owners_.find(key);
    if (it != owners_.end()) o = it->second;
  }
  if (unlock && o.handle == 0) return absl::OkStatus();
  // The owner's new ranges: [start, end] replaces whatever it overlapped.
  std::vector<Range> ranges;
  for (const Range& r : o.ranges) {
    if (!Overlaps(r.start, r.end, lock.start, lock.end)) {
      ranges.push_back(r);
      continue;
    }
    if (r.start < lock.start) ranges.push_back({r.start, lock.start - 1, r.write});
    if (r.end > lock.end) ranges.push_back({lock.end + 1, r.end, r.write});
  }
  if (!unlock) {
    ranges.push_back({lock.start, lock.end, lock.type == LockType::kWrite});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.start < b.start; });
  if (ranges.empty()) {
    DropKey(key);
    return absl::OkStatus();
  }
  bool write = false;
  uint64_t lo = ranges.front().start, hi = 0;
  for (const Range& r : ranges) {
    write = write || r.write;
    hi = std::max(hi, r.end);
  }
  const dlm::LockMode need = write ? dlm::LockMode::kPW : dlm::LockMode::kPR;
  OwnerLocks n = o;
  n.ranges = std::move(ranges);
  if (file != nullptr) n.file = file;
  if (!unlock) n.pid = lock.pid;
  const bool covers =
      o.handle != 0 && o.granted.start <= lo && o.granted.end >= hi;
  if (covers && o.granted.mode == need) {
    // Same DLM lock.
  } else if (covers && need == dlm::LockMode::kPR) {
    absl::StatusOr<dlm::LockInfo> c = dlm_->Convert(o.handle, need);
    if (c.ok()) {
      n.granted = c->spec;
    } else {
      spdlog::warn("down-conversion of record lock {}: {}", o.handle,
                   c.status().ToString());
    }
  } else {
    if (o.handle != 0) Drop(o.handle);
    absl::StatusOr<dlm::LockInfo> t =
        Take(kind, ino, lo, hi, write, wait, interrupted);
    if (!t.ok()) {
      // The request fails as a whole: back to the old state.
      if (o.handle != 0) {
        absl::StatusOr<dlm::LockInfo> back =
            Take(kind, ino, o.granted.start, o.granted.end,
                 o.granted.mode == dlm::LockMode::kPW, false, nullptr);
        absl::MutexLock l(&mu_);
        if (back.ok()) {
          o.handle = back->handle;
          o.granted = back->spec;
          owners_[key] = o;
        } else {
          spdlog::warn("record lock of ino {} lost on a failed conversion: {}",
                       ino, back.status().ToString());
          owners_.erase(key);
        }
      }
      return t.status();
    }
    n.handle = t->handle;
    n.granted = t->spec;
  }
  absl::MutexLock l(&mu_);
  owners_[key] = std::move(n);
  return absl::OkStatus();
}

absl::StatusOr<RangeLock> PosixLocks::Get(LockKind kind, uint64_t ino,
                                          uint64_t owner, RangeLock lock) {
  const bool write = lock.type == LockType::kWrite;
  std::vector<Interval> mine;
  {
    absl::MutexLock l(&mu_);
    auto it = owners_.lower_bound(Key{static_cast<int>(kind), ino, 0});
    for (; it != owners_.end() &&
           std::get<0>(it->first) == static_cast<int>(kind) &&
           std::get<1>(it->first) == ino;
         ++it) {
      // Inside what an owner of this mount holds no other mount can
      // conflict; between owners here the exact ranges decide.
      if (it->second.handle != 0) {
        mine.push_back({it->second.granted.start, it->second.granted.end});
      }
      if (std::get<2>(it->first) == owner) continue;
      for (const Range& r : it->second.ranges) {
        if (!Overlaps(r.start, r.end, lock.start, lock.end)) continue;
        if (write || r.write) {
          return RangeLock{r.write ? LockType::kWrite : LockType::kRead,
                           r.start, r.end, it->second.pid};
        }
      }
    }
  }
  // Other mounts: probe without waiting (no callbacks are sent), outside
  // what owners of this mount hold.
  for (const Interval& r : Subtract(lock.start, lock.end, mine)) {
    absl::StatusOr<dlm::LockInfo> n =
        Take(kind, ino, r.start, r.end, write, false, nullptr);
    if (n.ok()) {
      Drop(n->handle);
      continue;
    }
    if (ToErrno(n.status()) != EAGAIN) return n.status();
    LockType held = LockType::kWrite;
    if (write) {
      absl::StatusOr<dlm::LockInfo> rd =
          Take(kind, ino, r.start, r.end, false, false, nullptr);
      if (rd.ok()) {
        Drop(rd->handle);
        held = LockType::kRead;
      }
    }
    return RangeLock{held, r.start, r.end, 0};
  }
  return RangeLock{};
}

void PosixLocks::DropKey(const Key& key) {
  uint64_t handle = 0;
  {
    absl::MutexLock l(&mu_);
    auto it = owners_.find(key);
    if (it == owners_.end()) return;
    handle = it->second.handle;
    owners_.erase(it);
  }
  if (handle != 0) Drop(handle);
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
  if (lost) {
    spdlog::warn("record lock {} on {} lost (lock service eviction)",
                 lock.handle, lock.spec.resource.name);
  }
  // Locks in use are never cancelled on a blocking callback; nothing to do.
}

}  // namespace stripefs::client
