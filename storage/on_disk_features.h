// The on-disk feature bits of stripefs stores (ServerRecord compat /
// ro_compat / incompat; DESIGN.md "Versions") and what each build knows:
//
//  compat:0x1 release_history (release N+1, every role, on by default):
//    key "!releases" keeps one line per server start, "instance=I
//    release=R previous_clean=0|1", the most recent kMaxHistory; logged at
//    start. Release N does not know the key and leaves it alone.
//  incompat:0x1 wide_dirs (release N+1, OSS only, operator's choice with
//    --enable-feature wide_dirs): object files live in 4096 subdirectories
//    DATA/objects/<oid % 4096 as 3 hex>/<oid> instead of 256 (<oid % 256 as
//    2 hex>), for targets with many objects; the OSS moves the existing
//    files when the feature is turned on. Release N would look for the
//    objects in the old directories, so it must refuse such a store.
//
// Release N (STRIPEFS_PROTO_MAX == 1) knows none of them: it keeps unknown
// compat bits and refuses unknown incompat ones (CheckStartup). Pure
// functions plus KvStore access; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/version.h"
#include "storage/kv.h"
#include "storage/server_record.h"

namespace stripefs::storage {

inline constexpr uint64_t kCompatReleaseHistory = 1ull << 0;
inline constexpr uint64_t kIncompatWideDirs = 1ull << 0;

inline constexpr char kReleaseHistoryKey[] = "!releases";
inline constexpr size_t kMaxHistory = 32;

// The features this build knows for a server of `role` ("mds", "oss",
// "dlm"), with their names, for CheckStartup.
FeatureSet BuildFeatures(const std::string& role);

// Names the operator may pass to --enable-feature for `role` in this build
// (empty in release N).
std::vector<std::string> EnableableFeatures(const std::string& role);

// Turns on the operator-requested features `names` in `record` (the record
// CheckStartup decided, before it is stored). EINVAL naming the features
// this build offers for the role when a name is unknown.
absl::Status EnableFeatures(const std::vector<std::string>& names,
                            const std::string& role, ServerRecord* record);

// What a start does for the compat features of `record` (the record just
// stored): with release_history, appends this start to "!releases".
// Returns the history (one line per start, oldest first; empty without the
// feature).
absl::StatusOr<std::string> NoteStart(KvStore& kv, const ServerRecord& record,
                                      bool previous_clean);

}  // namespace stripefs::storage
