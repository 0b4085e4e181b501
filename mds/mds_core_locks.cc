// MdsCore: which metadata locks a change takes. The core decides (each
// change names its inodes and names here, before it takes mu_); the taking
// is MdLockTaker's (md_lock_taker.h). Which change locks what:
//  - setattr, open with O_TRUNC, setxattr, removexattr, size update,
//    setlayout: the inode;
//  - mknod, mkdir, symlink: the parent;  link: the inode and the new parent;
//  - create, unlink/rmdir: the parent and what the name resolves to;
//  - rename: both parents and what both names resolve to.
// The namespace changes (not rename, not attribute changes) of a request
// with own_md_cache take the locks of the directories they change (not of
// the inodes names resolve to, nor link's inode) with the own-change
// exemption for the asking mount (Exempt): that mount's PR locks on those
// directories stay, it updates its cache itself (fuse-client/md_cache.h).
// An unlink/rmdir also exempts the removed inode when the mount named it
// (RemoveRequest.exempt_child: it drops that inode's cache itself).
#include <algorithm>

#include "mds/mds_core.h"

namespace stripefs::mds {
namespace {

// A name that keeps moving is chased this many times, then the change
// goes on with the locks it has.
constexpr int kLastTry = 4;

}  // namespace

absl::StatusOr<MdLocks> MdsCore::LockInodes(std::vector<uint64_t> inos,
                                            const Exemption& exempt) {
  if (!md_locks_->enabled()) return MdLocks();
  return md_locks_->LockInodes(std::move(inos), exempt);
}

absl::StatusOr<MdsCore::NameLocks> MdsCore::LockNames(
    std::vector<uint64_t> inos, const std::vector<NameRef>& names,
    int attempt, uint64_t exempt_client, uint64_t exempt_child) {
  if (!md_locks_->enabled()) return NameLocks(MdLocks(), {}, true);
  Exemption exempt{exempt_client, inos};
  std::vector<uint64_t> resolved;
  for (const auto& [parent, name] : names) {
    // Root's view: which inode the name is, whatever the caller may see.
    absl::StatusOr<Inode> n = Lookup(Cred{}, parent, name);
    resolved.push_back(n.ok() ? n->ino : 0);
    // The inode the asking mount named (and drops itself): exempt too.
    if (n.ok() && exempt_child != 0 && n->ino == exempt_child) {
      exempt.inos.push_back(exempt_child);
    }
  }
  inos.insert(inos.end(), resolved.begin(), resolved.end());
  absl::StatusOr<MdLocks> held =
      md_locks_->LockInodes(std::move(inos), exempt);
  if (!held.ok()) return held.status();
  return NameLocks(std::move(*held), std::move(resolved),
                   attempt >= kLastTry);
}

}  // namespace stripefs::mds
