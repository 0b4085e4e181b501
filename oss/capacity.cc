#include "oss/capacity.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"

namespace stripefs::oss {

uint64_t Capacity::used() const {
  absl::MutexLock l(&mu_);
  return used_;
}

void Capacity::Loaded(uint64_t oid, uint64_t size) {
  absl::MutexLock l(&mu_);
  uint64_t& s = size_[oid];
  used_ = used_ - s + size;
  s = size;
}

absl::Status Capacity::Charge(uint64_t oid, uint64_t end) {
  absl::MutexLock l(&mu_);
  auto it = size_.find(oid);
  const uint64_t now = it == size_.end() ? 0 : it->second;
  if (end <= now) return absl::OkStatus();
  const uint64_t grow = end - now;
  if (used_ + grow > limit_) {
    return Errno(ENOSPC, absl::StrCat("object ", oid, ": the target's ",
                                      limit_, "-byte capacity is used up (",
                                      used_, " bytes in objects)"));
  }
  used_ += grow;
  size_[oid] = end;
  return absl::OkStatus();
}

void Capacity::Truncated(uint64_t oid, uint64_t size) {
  absl::MutexLock l(&mu_);
  auto it = size_.find(oid);
  if (it == size_.end() || size >= it->second) return;
  used_ -= it->second - size;
  it->second = size;
}

void Capacity::Destroyed(uint64_t oid) {
  absl::MutexLock l(&mu_);
  auto it = size_.find(oid);
  if (it == size_.end()) return;
  used_ -= it->second;
  size_.erase(it);
}

storage::DiskSpace Capacity::Apply(const storage::DiskSpace& disk) const {
  const uint64_t left = limit_ - std::min(used(), limit_);
  storage::DiskSpace s;
  s.total_bytes = std::min(disk.total_bytes, limit_);
  s.free_bytes = std::min(disk.free_bytes, left);
  s.avail_bytes = std::min(disk.avail_bytes, left);
  return s;
}

}  // namespace stripefs::oss
