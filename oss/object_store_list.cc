// ObjectStore::ListObjects: the objects of the target in id order, for
// stripefs fsck. Reads the KV records of existing objects and stats each
// object's file without entering the open-file cache (a scan of every
// object must not evict the files clients are using).
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "oss/object_store.h"

namespace stripefs::oss {
namespace {

absl::Status About(uint64_t oid, const absl::Status& s) {
  return absl::Status(s.code(),
                      absl::StrCat("object ", oid, ": ", s.message()));
}

}  // namespace

absl::StatusOr<std::vector<ObjectStore::ListedObject>> ObjectStore::ListObjects(
    uint64_t after, size_t max, bool* done) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  *done = false;
  std::vector<ListedObject> out;
  if (after == UINT64_MAX) {
    *done = true;
    return out;
  }
  const std::string prefix = ObjectKey(0).substr(0, 1);
  std::vector<uint64_t> oids;
  {
    auto it = kv_->NewIterator();
    for (it->Seek(ObjectKey(after + 1));
         it->Valid() && it->key().starts_with(prefix) && oids.size() < max;
         it->Next()) {
      if (it->key().size() != 9) continue;
      oids.push_back(storage::DecodeBE64(it->key().substr(1)));
    }
    if (absl::Status s = it->status(); !s.ok()) return s;
    *done = !it->Valid() || !it->key().starts_with(prefix);
  }
  for (uint64_t oid : oids) {
    ListedObject o{oid, 0};
    auto f = disk_->Open(PathOf(oid), /*create=*/false);
    if (f.ok()) {
      auto st = (*f)->Stat();
      if (!st.ok()) return About(oid, st.status());
      o.size = st->size;
    } else if (ToErrno(f.status()) != ENOENT) {
      // ENOENT: an object never written (no file yet), or one destroyed
      // since its record was read (fsck checks its findings again).
      return About(oid, f.status());
    }
    out.push_back(o);
  }
  return out;
}

}  // namespace stripefs::oss
