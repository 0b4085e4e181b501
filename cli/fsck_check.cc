#include "cli/fsck_check.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "fuse-client/stripe_map.h"

namespace stripefs::cli {
namespace {

using Key = std::pair<uint32_t, uint64_t>;  // ost, oid

bool IsFile(const FsckRefView& r) {
  return r.kind != FsckRefView::Kind::kDestroyQueued;
}

bool Reserved(const FsckOstView& v, uint64_t oid) {
  for (const auto& [first, end] : v.reserved) {
    if (oid >= first && oid < end) return true;
  }
  return false;
}

// Most bytes object `r` may hold: its share of the file's size.
uint64_t Expected(const FsckRefView& r) {
  return client::ObjectSizeForFileSize(r.stripe_size, r.stripe_count,
                                       r.file_size, r.stripe);
}

}  // namespace

FsckResult CompareObjects(const std::vector<FsckOstView>& osts,
                          const std::vector<FsckRefView>& refs) {
  FsckResult out;
  out.counts.refs = refs.size();
  // The file references of each object (the first one; a second file is a
  // shared object), and which objects anything references at all.
  absl::flat_hash_map<Key, const FsckRefView*> file_ref;
  absl::flat_hash_map<Key, bool> any_ref;
  for (const FsckRefView& r : refs) {
    const Key k{r.ost, r.oid};
    any_ref[k] = true;
    if (!IsFile(r)) continue;
    auto [it, added] = file_ref.emplace(k, &r);
    if (!added && it->second->ino != r.ino) {
      FsckFinding f;
      f.problem = FsckProblem::kShared;
      f.ost = r.ost;
      f.oid = r.oid;
      f.ino = it->second->ino;
      f.other_ino = r.ino;
      out.findings.push_back(f);
    }
  }
  absl::flat_hash_map<Key, uint64_t> listed;  // -> size
  absl::flat_hash_map<uint32_t, uint64_t> horizon;
  for (const FsckOstView& v : osts) horizon[v.ost] = v.horizon;
  for (const FsckOstView& v : osts) {
    for (const FsckObject& o : v.objects) {
      ++out.counts.objects;
      listed[{v.ost, o.oid}] = o.size;
      if (o.oid > v.horizon) {
        ++out.counts.above_horizon;
        continue;
      }
      if (any_ref.contains({v.ost, o.oid}) || Reserved(v, o.oid)) continue;
      FsckFinding f;
      f.problem = FsckProblem::kOrphan;
      f.ost = v.ost;
      f.oid = o.oid;
      f.object_size = o.size;
      out.findings.push_back(f);
    }
  }
  for (const auto& [k, r] : file_ref) {
    auto it = listed.find(k);
    FsckFinding f;
    f.ost = k.first;
    f.oid = k.second;
    f.ino = r->ino;
    if (it == listed.end()) {
      auto h = horizon.find(k.first);
      if (h != horizon.end() && k.second > h->second) {
        // Precreated after fsck started: the OSS was listed before it
        // existed (a file that took it and lost it since is no news).
        ++out.counts.above_horizon;
        continue;
      }
      f.problem = FsckProblem::kMissing;
      out.findings.push_back(f);
      continue;
    }
    if (r->open_for_write) {
      ++out.counts.size_unchecked;
      continue;
    }
    const uint64_t expected = Expected(*r);
    if (it->second > expected) {
      f.problem = FsckProblem::kWrongSize;
      f.file_size = r->file_size;
      f.object_size = it->second;
      f.expected_size = expected;
      out.findings.push_back(f);
    }
  }
  std::sort(out.findings.begin(), out.findings.end(),
            [](const FsckFinding& a, const FsckFinding& b) {
              return std::tie(a.ost, a.oid, a.problem, a.other_ino) <
                     std::tie(b.ost, b.oid, b.problem, b.other_ino);
            });
  return out;
}

std::string FormatFinding(const FsckFinding& f) {
  const std::string obj = absl::StrCat("ost", f.ost, " object ", f.oid);
  switch (f.problem) {
    case FsckProblem::kOrphan:
      return absl::StrCat("orphan: ", obj, " (", f.object_size,
                          " bytes): no file references it");
    case FsckProblem::kMissing:
      return absl::StrCat("missing: ", obj, " of inode ", f.ino,
                          " does not exist on its OST");
    case FsckProblem::kWrongSize:
      return absl::StrCat("wrong size: ", obj, " of inode ", f.ino, " holds ",
                          f.object_size, " bytes, at most ", f.expected_size,
                          " for the file's size ", f.file_size,
                          " (data beyond the end of the file)");
    case FsckProblem::kShared:
      return absl::StrCat("shared: ", obj, " is in the layouts of inodes ",
                          f.ino, " and ", f.other_ino);
  }
  return obj;
}

std::string FormatSummary(const FsckResult& r, uint64_t repaired) {
  std::map<FsckProblem, uint64_t> n;
  for (const FsckFinding& f : r.findings) ++n[f.problem];
  std::string out = absl::StrCat(
      "fsck: ", r.counts.objects, " objects on the OSTs, ", r.counts.refs,
      " references at the MDS: ", n[FsckProblem::kOrphan], " orphan, ",
      n[FsckProblem::kMissing], " missing, ", n[FsckProblem::kWrongSize],
      " wrong size, ", n[FsckProblem::kShared], " shared");
  if (repaired > 0) absl::StrAppend(&out, "; ", repaired, " orphans destroyed");
  absl::StrAppend(&out, "\n");
  if (r.counts.above_horizon > 0 || r.counts.size_unchecked > 0) {
    absl::StrAppend(&out, "fsck: not checked: ", r.counts.above_horizon,
                    " objects newer than the check, ", r.counts.size_unchecked,
                    " objects of files open for writing (size)\n");
  }
  return out;
}

int FsckExitCode(const FsckResult& r, uint64_t repaired) {
  if (r.findings.empty()) return 0;
  return repaired == r.findings.size() ? 1 : 4;
}

}  // namespace stripefs::cli
