// MdsCore: eviction of a dead client (its lease expired, see
// mds/client_leases.h): its open handles go, and with them the
// unlinked-while-open inodes only it kept.
#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"

namespace stripefs::mds {

absl::StatusOr<EvictResult> MdsCore::EvictClient(uint64_t client_id) {
  EvictResult out;
  if (client_id == 0) return out;
  absl::MutexLock l(&mu_);
  SuperUndo undo(this);  // DeleteInode counts inodes in sb_
  // What stays open once the client's handles go (as ExpireReopenWindow).
  absl::flat_hash_map<uint64_t, uint32_t> left = open_count_;
  std::vector<uint64_t> dropped;
  absl::flat_hash_set<uint64_t> inos;
  storage::WriteBatch b;
  for (const auto& [h, oh] : handles_) {
    // A kept handle pending reopen is the reopen window's to expire.
    if (oh.client_id != client_id || oh.reopen_pending) continue;
    dropped.push_back(h);
    b.Delete(HandleKey(h));
    inos.insert(oh.ino);
    if (--left[oh.ino] == 0) left.erase(oh.ino);
  }
  if (dropped.empty()) return out;
  std::vector<uint64_t> reclaimed;
  for (uint64_t ino : inos) {
    if (left.contains(ino) || !orphans_.contains(ino)) continue;
    absl::StatusOr<Inode> n = LoadInode(ino);
    if (n.ok() && n->nlink == 0) {
      DeleteInode(&b, *n);
    } else if (n.ok() || ToErrno(n.status()) == ENOENT) {
      b.Delete(OrphanKey(ino));
    } else {
      return n.status();  // nothing changed yet
    }
    reclaimed.push_back(ino);
  }
  STRIPEFS_RETURN_IF_ERROR(store_->Write(b));
  ++writes_;
  for (uint64_t h : dropped) handles_.erase(h);
  open_count_ = std::move(left);
  for (uint64_t ino : reclaimed) orphans_.erase(ino);
  out.handles = dropped.size();
  out.reclaimed = reclaimed.size();
  out.below_handle = *std::max_element(dropped.begin(), dropped.end()) + 1;
  return out;
}

}  // namespace stripefs::mds
