// stripefs fsck: compares the MDS's layouts with every OSS's objects
// (docs/internals.md, "Consistency check"; the comparison itself is
// cli/fsck_check.h). Findings and the summary go to stdout, progress and
// errors to stderr. Not thread-safe (one run per process).
#pragma once

#include <cstddef>
#include <string>

namespace stripefs::cli {

struct FsckOptions {
  std::string home;     // cluster home (cluster.json: the servers)
  bool repair = false;  // destroy the orphans found
  size_t page = 1024;   // objects / references per call
};

// Exit status: 0 nothing found; 1 inconsistencies found and all repaired
// (--repair, orphans only); 4 inconsistencies left (found read-only, or
// not repairable: missing objects, wrong sizes, shared objects); 8 the
// check could not run (no cluster home, a server unreachable or of
// release N, a failed call).
inline constexpr int kFsckClean = 0;
inline constexpr int kFsckRepaired = 1;
inline constexpr int kFsckLeft = 4;
inline constexpr int kFsckError = 8;
int RunFsck(const FsckOptions& options);

}  // namespace stripefs::cli
