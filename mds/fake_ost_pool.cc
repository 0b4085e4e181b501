#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "mds/ost_pool.h"

namespace stripefs::mds {

FakeOstPool::FakeOstPool(uint32_t n_osts) {
  for (uint32_t i = 0; i < n_osts; ++i) {
    targets_.push_back({.index = i, .address = absl::StrCat("fake:", i)});
  }
}

std::vector<OstTarget> FakeOstPool::Targets() const {
  absl::MutexLock l(&mu_);
  return targets_;
}

absl::Status FakeOstPool::AddTarget(const OstTarget& target) {
  absl::MutexLock l(&mu_);
  for (const OstTarget& t : targets_) {
    if (t.index == target.index) {
      return Errno(EEXIST, absl::StrCat("ost", target.index, " exists"));
    }
  }
  targets_.push_back(target);
  std::sort(targets_.begin(), targets_.end(),
            [](const OstTarget& a, const OstTarget& b) {
              return a.index < b.index;
            });
  return absl::OkStatus();
}

absl::Status FakeOstPool::SetTargetState(uint32_t index, bool active,
                                         bool fail_io) {
  absl::MutexLock l(&mu_);
  for (OstTarget& t : targets_) {
    if (t.index == index) {
      t.active = active;
      t.fail_io = fail_io;
      return absl::OkStatus();
    }
  }
  return Errno(ENOENT, absl::StrCat("no ost", index));
}

absl::Status FakeOstPool::RemoveTarget(uint32_t index) {
  absl::MutexLock l(&mu_);
  for (auto it = targets_.begin(); it != targets_.end(); ++it) {
    if (it->index == index) {
      targets_.erase(it);
      return absl::OkStatus();
    }
  }
  return Errno(ENOENT, absl::StrCat("no ost", index));
}

absl::StatusOr<ObjectRange> FakeOstPool::Precreate(uint32_t ost,
                                                   uint32_t count,
                                                   absl::Duration wait) {
  absl::MutexLock l(&mu_);
  ++precreate_calls_;
  last_precreate_wait_ = wait;
  ++blocked_;
  mu_.Await(absl::Condition(
      +[](bool* block) { return !*block; }, &block_));
  --blocked_;
  bool known = false;
  for (const OstTarget& t : targets_) known |= t.index == ost;
  if (!known) return Errno(EINVAL, "no such OST");
  if (failing_.count(ost)) return Errno(EIO, "OST unreachable (fake)");
  uint64_t& next = next_oid_[ost];
  if (next == 0) next = 1;
  ObjectRange r{next, count};
  for (uint32_t i = 0; i < count; ++i) objects_[ost].insert(next + i);
  next += count;
  return r;
}

absl::Status FakeOstPool::Destroy(uint32_t ost,
                                  const std::vector<uint64_t>& oids) {
  absl::MutexLock l(&mu_);
  if (failing_.count(ost)) return Errno(EIO, "OST unreachable (fake)");
  for (uint64_t oid : oids) {
    objects_[ost].erase(oid);
    destroyed_[ost].push_back(oid);
  }
  return absl::OkStatus();
}

absl::StatusOr<OstStatfs> FakeOstPool::Statfs(uint32_t ost) {
  absl::MutexLock l(&mu_);
  if (failing_.count(ost)) return Errno(EIO, "OST unreachable (fake)");
  OstStatfs s;
  s.total_bytes = 1ULL << 30;
  s.free_bytes = 1ULL << 29;
  s.avail_bytes = 1ULL << 29;
  if (auto it = space_.find(ost); it != space_.end()) {
    s.total_bytes = it->second.first;
    s.free_bytes = s.avail_bytes = it->second.second;
  }
  s.objects = objects_[ost].size();
  return s;
}

void FakeOstPool::SetFailing(uint32_t ost, bool failing) {
  absl::MutexLock l(&mu_);
  if (failing) {
    failing_.insert(ost);
  } else {
    failing_.erase(ost);
  }
}
void FakeOstPool::SetStatfs(uint32_t ost, uint64_t total_bytes,
                            uint64_t avail_bytes) {
  absl::MutexLock l(&mu_);
  space_[ost] = {total_bytes, avail_bytes};
}
void FakeOstPool::BlockPrecreates(bool blocked) {
  absl::MutexLock l(&mu_);
  block_ = blocked;
}
int FakeOstPool::blocked_precreates() const {
  absl::MutexLock l(&mu_);
  return blocked_;
}
bool FakeOstPool::Exists(uint32_t ost, uint64_t oid) const {
  absl::MutexLock l(&mu_);
  auto it = objects_.find(ost);
  return it != objects_.end() && it->second.count(oid) > 0;
}
size_t FakeOstPool::ObjectCount(uint32_t ost) const {
  absl::MutexLock l(&mu_);
  auto it = objects_.find(ost);
  return it == objects_.end() ? 0 : it->second.size();
}
int FakeOstPool::precreate_calls() const {
  absl::MutexLock l(&mu_);
  return precreate_calls_;
}
std::vector<uint64_t> FakeOstPool::destroyed(uint32_t ost) const {
  absl::MutexLock l(&mu_);
  auto it = destroyed_.find(ost);
  return it == destroyed_.end() ? std::vector<uint64_t>{} : it->second;
}

absl::Duration FakeOstPool::last_precreate_wait() const {
  absl::MutexLock l(&mu_);
  return last_precreate_wait_;
}

}  // namespace stripefs::mds
