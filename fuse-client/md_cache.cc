#include "fuse-client/md_cache.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

MdCache::MdCache(dlm::DlmClient* dlm) : dlm_(dlm) {
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
  return dlm_->Lock(spec, opts);
}

std::optional<rpc::Entry> MdCache::GetAttr(uint64_t ino) {
  absl::MutexLock lock(&mu_);
  auto it = attrs_.find(ino);
  if (it == attrs_.end()) return std::nullopt;
  return it->second;
}

void MdCache::PutAttr(uint64_t ino, const rpc::Entry& e) {
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

std::shared_ptr<const std::vector<rpc::DirEntry>> MdCache::GetListing(
    uint64_t ino) {
  absl::MutexLock lock(&mu_);
  auto it = listings_.find(ino);
  return it == listings_.end() ? nullptr : it->second;
}

void MdCache::PutListing(uint64_t ino, std::vector<rpc::DirEntry> entries) {
  absl::MutexLock lock(&mu_);
  auto& d = dentries_[ino];
  for (rpc::DirEntry& e : entries) {
    e.clear_entry();
    d[e.name()] = e.ino();
  }
  listings_[ino] =
      std::make_shared<const std::vector<rpc::DirEntry>>(std::move(entries));
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
}

}  // namespace stripefs::client
