// stripefs fsck's comparison (docs/internals.md, "Consistency check"): the
// objects each OSS lists against the objects the MDS references. Pure
// functions over lists, no RPC; thread-safe (no shared state).
//
// What is inconsistent:
//  - orphan: an object on an OST at or below the MDS's horizon for that OST
//    (the highest id the MDS has had from it; above it are precreates in
//    flight), not in a reserved range (pools) and referenced by nothing:
//    no file, no file unlinked while open, not in the destroy queue.
//  - missing: an object a file's layout names that its OST does not have
//    (at or below the horizon: a newer one may postdate the OST's list).
//  - wrong size: an object holding bytes past the file's end. Under the
//    RAID-0 layout a file of size S makes object i exactly
//    ObjectSizeForFileSize(stripe_size, objects, S, i) long when every byte
//    is written (truncate sets it so); a shorter object is a hole (sparse
//    files are fine), a longer one has data beyond EOF that no read shows.
//    Files open for writing are not size-checked: their size at the MDS
//    may lag what a writer has already sent to the OSTs.
//  - shared: an object in the layouts of two files.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace stripefs::cli {

struct FsckObject {
  uint64_t oid = 0;
  uint64_t size = 0;
};

// One OST: the MDS's view (horizon, reserved ranges) and the OSS's list.
struct FsckOstView {
  uint32_t ost = 0;
  uint64_t horizon = 0;
  std::vector<std::pair<uint64_t, uint64_t>> reserved;  // [first, end)
  std::vector<FsckObject> objects;
};

struct FsckRefView {
  enum class Kind { kFile, kUnlinkedOpen, kDestroyQueued };
  Kind kind = Kind::kFile;
  uint32_t ost = 0;
  uint64_t oid = 0;
  uint64_t ino = 0;  // files
  uint64_t file_size = 0;
  uint32_t stripe_size = 0;
  uint32_t stripe = 0;
  uint32_t stripe_count = 0;
  bool open_for_write = false;
};

enum class FsckProblem { kOrphan, kMissing, kWrongSize, kShared };

struct FsckFinding {
  FsckProblem problem = FsckProblem::kOrphan;
  uint32_t ost = 0;
  uint64_t oid = 0;
  uint64_t ino = 0;        // missing, wrong size, shared: the file
  uint64_t other_ino = 0;  // shared: the other file
  uint64_t file_size = 0;  // wrong size
  uint64_t object_size = 0;
  uint64_t expected_size = 0;  // wrong size: the most the object may hold
  bool operator==(const FsckFinding&) const = default;
};

struct FsckCounts {
  uint64_t objects = 0;  // listed by the OSSs
  // Objects listed or referenced above the horizon: not checked (newer
  // than fsck's start).
  uint64_t above_horizon = 0;
  uint64_t refs = 0;            // references from the MDS
  uint64_t size_unchecked = 0;  // objects of files open for writing
};

struct FsckResult {
  std::vector<FsckFinding> findings;  // by OST, then oid
  FsckCounts counts;
};

// Compares; `osts` must hold every OST the MDS and the OSSs know (a
// reference to another OST is a missing object).
FsckResult CompareObjects(const std::vector<FsckOstView>& osts,
                          const std::vector<FsckRefView>& refs);

// One line, e.g. "orphan: ost1 object 42 (4096 bytes), no file references
// it".
std::string FormatFinding(const FsckFinding& f);

// The summary line(s); `repaired`: orphans destroyed by --repair.
std::string FormatSummary(const FsckResult& r, uint64_t repaired);

// Exit status: 0 nothing found; 1 everything found was repaired; 4
// inconsistencies left (operational errors are 8, see cli/fsck.cc).
int FsckExitCode(const FsckResult& r, uint64_t repaired);

}  // namespace stripefs::cli
