// MdsCore's side of `stripefs fsck` (docs/internals.md, "Consistency
// check"): the per-OST horizon and reserved ids, and the objects the
// namespace and the destroy queue reference, a page at a time. Read-only.
//
// An object id moves only one way through the MDS: precreated into a pool,
// handed out to a file, queued for destroy when the file goes, destroyed.
// fsck therefore takes FsckState first, lists the OSTs, then pages through
// the inodes (I keys) before the destroy queue (Q keys): an object that
// moves while fsck runs is always found in the place fsck reads later.
#include <sys/stat.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "mds/mds_core_checks.h"
#include "mds/records.h"

namespace stripefs::mds {

std::vector<FsckOst> MdsCore::FsckState() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<FsckOst> out;
  for (const auto& [idx, st] : ost_state_) {
    FsckOst o;
    o.ost = idx;
    o.horizon = st.pool.last_used;
    for (const auto& r : st.pool.ranges) {
      o.reserved.push_back(r);
      if (r.second > 0) o.horizon = std::max(o.horizon, r.second - 1);
    }
    // After a start: the previous instance's pool, between the last id in
    // use and the first one this instance got, is destroyed by the MDS
    // itself (EndPrecreate). Before that first precreate the horizon stays
    // at last_used, which leaves that pool out as well.
    if (st.orphans_from != 0 && st.lowest_new > st.orphans_from) {
      o.reserved.push_back({st.orphans_from, st.lowest_new});
    }
    out.push_back(std::move(o));
  }
  return out;
}

absl::StatusOr<FsckRefPage> MdsCore::ListObjectRefs(const std::string& after,
                                                    size_t max_refs) {
  // Bounds the time one page holds mu_ (directories have no objects).
  constexpr size_t kMaxKeys = 8192;
  if (max_refs == 0) max_refs = 1024;
  absl::ReaderMutexLock l(&mu_);
  absl::flat_hash_set<uint64_t> writing;
  for (const auto& [h, oh] : handles_) {
    if (IsWriteMode(oh.flags)) writing.insert(oh.ino);
  }
  FsckRefPage page;
  auto it = store_->NewIterator();
  it->Seek(after.empty() ? std::string("I") : after);
  if (it->Valid() && !after.empty() && it->key() == after) it->Next();
  size_t keys = 0;
  std::string last;
  while (true) {
    const bool inode = it->Valid() && it->key()[0] == 'I';
    const bool queued = it->Valid() && it->key()[0] == kDestroyPrefix[0];
    if (!inode && !queued) {
      STRIPEFS_RETURN_IF_ERROR(it->status());
      if (it->Valid() && it->key()[0] < kDestroyPrefix[0]) {
        it->Seek(kDestroyPrefix);  // the inodes are done: the queue
        continue;
      }
      return page;  // page.next empty: the last page
    }
    if (page.refs.size() >= max_refs || keys >= kMaxKeys) {
      page.next = last;
      return page;
    }
    last = std::string(it->key());
    ++keys;
    if (queued && it->key().size() == 13) {
      FsckRef r;
      r.kind = FsckRef::Kind::kDestroyQueued;
      r.ost = storage::DecodeBE32(it->key().substr(1));
      r.oid = storage::DecodeBE64(it->key().substr(5));
      page.refs.push_back(r);
    } else if (inode && it->key().size() == 9) {
      const uint64_t ino = storage::DecodeBE64(it->key().substr(1));
      absl::StatusOr<Inode> n = DecodeInode(it->value());
      if (!n.ok()) {
        return absl::Status(
            n.status().code(),
            absl::StrCat("inode ", ino, ": ", n.status().message()));
      }
      if (S_ISREG(n->mode)) {
        const auto& objects = n->layout.objects;
        for (size_t i = 0; i < objects.size(); ++i) {
          FsckRef r;
          r.kind = orphans_.contains(ino) ? FsckRef::Kind::kUnlinkedOpen
                                          : FsckRef::Kind::kFile;
          r.ost = objects[i].ost;
          r.oid = objects[i].oid;
          r.ino = ino;
          r.file_size = n->size;
          r.stripe_size = n->layout.stripe_size;
          r.stripe = static_cast<uint32_t>(i);
          r.stripe_count = static_cast<uint32_t>(objects.size());
          r.open_for_write = writing.contains(ino);
          page.refs.push_back(r);
        }
      }
    }
    it->Next();
  }
}

}  // namespace stripefs::mds
