#include "storage/on_disk_features.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/errors.h"
#include "common/version.h"

namespace stripefs::storage {

FeatureSet BuildFeatures(const std::string& role) {
#if STRIPEFS_PROTO_MAX >= 2
  FeatureSet f;
  f.compat = kCompatReleaseHistory;
  f.default_compat = kCompatReleaseHistory;
  if (role == "oss") {
    f.incompat = kIncompatWideDirs;
    f.names = "compat:0x1=release_history,incompat:0x1=wide_dirs";
  } else {
    f.names = "compat:0x1=release_history";
  }
  return f;
#else
  (void)role;
  return FeatureSet{};
#endif
}

std::vector<std::string> EnableableFeatures(const std::string& role) {
#if STRIPEFS_PROTO_MAX >= 2
  if (role == "oss") return {"wide_dirs"};
#else
  (void)role;
#endif
  return {};
}

absl::Status EnableFeatures(const std::vector<std::string>& names,
                            const std::string& role, ServerRecord* record) {
  const FeatureSet known = BuildFeatures(role);
  for (const std::string& name : names) {
#if STRIPEFS_PROTO_MAX >= 2
    if (role == "oss" && name == "wide_dirs") {
      record->incompat |= kIncompatWideDirs;
      continue;
    }
#endif
    std::vector<std::string> offered = EnableableFeatures(role);
    return Errno(EINVAL,
                 absl::StrCat("release ", kRelease, " has no on-disk feature '",
                              name, "' for ", role, " (it offers: ",
                              offered.empty() ? "none"
                                              : absl::StrJoin(offered, ", "),
                              ")"));
  }
  record->feature_names = MergeFeatureNames(*record, known.names,
                                            record->feature_names);
  return absl::OkStatus();
}

absl::StatusOr<std::string> NoteStart(KvStore& kv, const ServerRecord& record,
                                      bool previous_clean) {
  if ((record.compat & kCompatReleaseHistory) == 0 ||
      (BuildFeatures(record.role).compat & kCompatReleaseHistory) == 0) {
    return std::string();
  }
  absl::StatusOr<std::optional<std::string>> old = kv.Get(kReleaseHistoryKey);
  if (!old.ok()) return old.status();
  std::vector<std::string> lines;
  if (old->has_value()) {
    lines = absl::StrSplit(**old, '\n', absl::SkipEmpty());
  }
  lines.push_back(absl::StrCat("instance=", record.instance,
                               " release=", record.release,
                               " previous_clean=", previous_clean ? 1 : 0));
  if (lines.size() > kMaxHistory) {
    lines.erase(lines.begin(), lines.end() - kMaxHistory);
  }
  std::string v = absl::StrJoin(lines, "\n");
  WriteBatch b;
  b.Put(kReleaseHistoryKey, v);
  if (absl::Status s = kv.Write(b, {.sync = true}); !s.ok()) return s;
  return v;
}

}  // namespace stripefs::storage
