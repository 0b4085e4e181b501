// The MDS's side of `stripefs fsck` (docs/internals.md, "Consistency
// check"): which objects the MDS knows of on each OST, as plain types of
// MdsCore's interface (mds_core_fsck.cc). No RPC types.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stripefs::mds {

// One OST as the MDS sees it when fsck starts.
struct FsckOst {
  uint32_t ost = 0;
  // Highest object id the MDS has had from the OST (handed out or pooled).
  // Objects above it may be precreates in flight or later: fsck leaves
  // them alone.
  uint64_t horizon = 0;
  // Ids [first, end) at or below the horizon that are not orphans though
  // no file holds them: the precreated pool not handed out yet, and after
  // a restart the previous instance's pool that the MDS destroys itself
  // once its first precreate told where the new ids start.
  std::vector<std::pair<uint64_t, uint64_t>> reserved;
};

// An object the MDS references.
struct FsckRef {
  enum class Kind { kFile, kUnlinkedOpen, kDestroyQueued };
  Kind kind = Kind::kFile;
  uint32_t ost = 0;
  uint64_t oid = 0;
  // kFile, kUnlinkedOpen: the inode, its size and layout, this object's
  // index in it, and whether a handle has it open for writing (its size
  // at the MDS may lag the data a writer sent).
  uint64_t ino = 0;
  uint64_t file_size = 0;
  uint32_t stripe_size = 0;
  uint32_t stripe = 0;
  uint32_t stripe_count = 0;
  bool open_for_write = false;
};

// A page of ListObjectRefs; `next` is the cursor of the next page (empty:
// that was the last).
struct FsckRefPage {
  std::vector<FsckRef> refs;
  std::string next;
};

}  // namespace stripefs::mds
