#include "mds/md_locks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {

absl::StatusOr<MdLocks> MdLocker::LockInodes(std::vector<uint64_t> inos,
                                             const Exemption& exempt) {
  if (dlm_ == nullptr) return MdLocks();
  std::sort(inos.begin(), inos.end());
  inos.erase(std::unique(inos.begin(), inos.end()), inos.end());
  std::vector<uint64_t> handles;
  for (uint64_t ino : inos) {
    if (ino == 0) continue;
    dlm::LockSpec spec;
    spec.resource = {absl::StrCat("ino:", ino), dlm::LockType::kIbits};
    spec.mode = dlm::LockMode::kEX;
    spec.bits = kMdLockBits;
    dlm::LockOptions opts;
    opts.exempt_client = exempt.For(ino);
    absl::StatusOr<dlm::LockInfo> l = dlm_->Lock(spec, opts);
    if (!l.ok()) {
      for (uint64_t h : handles) dlm_->Release(h);
      spdlog::error("EX lock on ino:{} failed: {}", ino, l.status().ToString());
      return l.status();
    }
    handles.push_back(l->handle);
  }
  dlm::DlmClient* dlm = dlm_;
  return MdLocks([dlm, handles = std::move(handles)] {
    for (uint64_t h : handles) dlm->Release(h);
  });
}

absl::StatusOr<uint64_t> MdLocker::GrantFor(uint64_t owner, uint64_t xid,
                                            uint64_t ino, uint64_t bits) {
  if (dlm_ == nullptr) return absl::UnimplementedError("no lock service");
  bits &= kMdLockBits;
  if (owner == 0 || bits == 0) {
    return absl::InvalidArgumentError("intent lock without owner or bits");
  }
  dlm::LockSpec spec;
  spec.resource = {absl::StrCat("ino:", ino), dlm::LockType::kIbits};
  spec.mode = dlm::LockMode::kPR;
  spec.bits = bits;
  absl::StatusOr<dlm::LockInfo> l = dlm_->EnqueueFor(owner, xid, spec);
  if (!l.ok()) return l.status();
  return l->handle;
}

}  // namespace stripefs::mds
