// The server record: what every stateful server (MDS, OSS, DLM) keeps about
// the instance that last ran on its store, and the start-up check of
// DESIGN.md "Controlled failover" step 5 / "Versions":
//  - `release` of the last instance and whether it shut down cleanly;
//  - on-disk feature flags: compat (a release that does not know the bit
//    may still use the store), ro_compat (it may only read it) and incompat
//    (it must not touch it);
//  - the instance counter (bumped by every start; clients see it in the
//    handshake and notice a restart).
// Kept under one key ("!server") in the role's KvStore, as "name=value"
// lines, so that any release can read what any other wrote.
// Pure functions plus Load/Store; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "storage/kv.h"

namespace stripefs::storage {

inline constexpr char kServerRecordKey[] = "!server";

struct ServerRecord {
  std::string role;     // "mds", "oss", "dlm"
  std::string target;   // "mdt0", "ost3", "dlm"
  std::string release;  // release of the instance that wrote the record
  bool clean = false;   // that instance shut down cleanly
  uint64_t instance = 0;
  uint64_t compat = 0;
  uint64_t ro_compat = 0;
  uint64_t incompat = 0;
  // Names of the feature bits set, as the release that set them calls them:
  // "kind:0xBIT=name,..." (kind compat, ro_compat or incompat), so that a
  // release that does not know a feature can still name it when it refuses
  // the store.
  std::string feature_names;
};

// On-disk features a release knows, and those it turns on by itself in a
// store it starts on (never incompat ones: those only on the operator's
// request, so that a downgrade stays possible).
struct FeatureSet {
  uint64_t compat = 0;
  uint64_t ro_compat = 0;
  uint64_t incompat = 0;
  uint64_t default_compat = 0;
  // Their names, "kind:0xBIT=name,..." (see ServerRecord::feature_names).
  const char* names = "";
};

std::string EncodeServerRecord(const ServerRecord& r);
absl::StatusOr<ServerRecord> DecodeServerRecord(std::string_view v);

// nullopt: a store no server ever started on.
absl::StatusOr<std::optional<ServerRecord>> LoadServerRecord(KvStore& kv);
// Written with sync.
absl::Status StoreServerRecord(KvStore& kv, const ServerRecord& r);

struct StartupDecision {
  ServerRecord record;         // to store now (clean=false, this release)
  bool evict_clients = false;  // forced start: old clients must be evicted
  bool previous_clean = true;  // (no previous instance counts as clean)
  std::string previous_release;
};

// The start-up check. Refuses (FAILED_PRECONDITION with a message saying
// why and what to do) when:
//  - the store has an incompat feature, or an ro_compat one, this release
//    does not know (never overridden by force: the data would be misread);
//  - the previous instance had another release and did not shut down
//    cleanly, unless `force` (then evict_clients is set).
// The role and target must match the store's (a store of another target is
// refused even with force).
absl::StatusOr<StartupDecision> CheckStartup(
    const std::optional<ServerRecord>& previous, const std::string& role,
    const std::string& target, const std::string& release,
    const FeatureSet& known, bool force);

// Names of feature bits, for messages ("incompat:0x4", or
// "incompat:0x4=wide_dirs" when `names` (ServerRecord::feature_names form)
// names it).
std::string FeatureNames(const char* kind, uint64_t bits,
                         const std::string& names = "");

// ServerRecord::feature_names for the bits set in `r`, taken from `a` and
// then `b` (both in that form).
std::string MergeFeatureNames(const ServerRecord& r, const std::string& a,
                              const std::string& b);

}  // namespace stripefs::storage
