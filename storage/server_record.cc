#include "storage/server_record.h"

#include <cerrno>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/errors.h"

namespace stripefs::storage {

std::string EncodeServerRecord(const ServerRecord& r) {
  return absl::StrFormat(
      "role=%s\ntarget=%s\nrelease=%s\nclean=%d\ninstance=%d\ncompat=%#x\n"
      "ro_compat=%#x\nincompat=%#x\nfeature_names=%s\n",
      r.role, r.target, r.release, r.clean ? 1 : 0, r.instance, r.compat,
      r.ro_compat, r.incompat, r.feature_names);
}

namespace {

bool ParseU64(absl::string_view v, uint64_t* out) {
  if (absl::ConsumePrefix(&v, "0x")) return absl::SimpleHexAtoi(v, out);
  return absl::SimpleAtoi(v, out);
}

}  // namespace

absl::StatusOr<ServerRecord> DecodeServerRecord(std::string_view v) {
  ServerRecord r;
  bool have_release = false;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(v.data(), v.size()), '\n',
                      absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    uint64_t n = 0;
    bool ok = true;
    if (kv.first == "role") {
      r.role = std::string(kv.second);
    } else if (kv.first == "target") {
      r.target = std::string(kv.second);
    } else if (kv.first == "release") {
      r.release = std::string(kv.second);
      have_release = true;
    } else if (kv.first == "clean") {
      ok = ParseU64(kv.second, &n);
      r.clean = n != 0;
    } else if (kv.first == "instance") {
      ok = ParseU64(kv.second, &r.instance);
    } else if (kv.first == "compat") {
      ok = ParseU64(kv.second, &r.compat);
    } else if (kv.first == "ro_compat") {
      ok = ParseU64(kv.second, &r.ro_compat);
    } else if (kv.first == "incompat") {
      ok = ParseU64(kv.second, &r.incompat);
    } else if (kv.first == "feature_names") {
      r.feature_names = std::string(kv.second);
    }  // Unknown names: written by a later release; ignored.
    if (!ok) {
      return Errno(EIO, absl::StrCat("corrupt server record line '", line,
                                     "'"));
    }
  }
  if (!have_release) return Errno(EIO, "corrupt server record: no release");
  return r;
}

absl::StatusOr<std::optional<ServerRecord>> LoadServerRecord(KvStore& kv) {
  absl::StatusOr<std::optional<std::string>> v = kv.Get(kServerRecordKey);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<ServerRecord>();
  absl::StatusOr<ServerRecord> r = DecodeServerRecord(**v);
  if (!r.ok()) return r.status();
  return std::optional<ServerRecord>(*std::move(r));
}

absl::Status StoreServerRecord(KvStore& kv, const ServerRecord& r) {
  WriteBatch b;
  b.Put(kServerRecordKey, EncodeServerRecord(r));
  return kv.Write(b, {.sync = true});
}

namespace {

// The name of `kind:bit` in `names` ("kind:0xBIT=name,..."); empty if none.
std::string NameOf(const std::string& names, const std::string& id) {
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(names), ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first == id) return std::string(kv.second);
  }
  return "";
}

}  // namespace

std::string FeatureNames(const char* kind, uint64_t bits,
                         const std::string& names) {
  std::vector<std::string> out;
  for (int i = 0; i < 64; ++i) {
    if ((bits & (1ull << i)) == 0) continue;
    std::string id = absl::StrFormat("%s:%#x", kind, 1ull << i);
    std::string name = NameOf(names, id);
    out.push_back(name.empty() ? id : absl::StrCat(id, "=", name));
  }
  return absl::StrJoin(out, ",");
}

std::string MergeFeatureNames(const ServerRecord& r, const std::string& a,
                              const std::string& b) {
  std::vector<std::string> out;
  for (const auto& [kind, bits] :
       {std::pair<const char*, uint64_t>{"compat", r.compat},
        {"ro_compat", r.ro_compat},
        {"incompat", r.incompat}}) {
    for (int i = 0; i < 64; ++i) {
      if ((bits & (1ull << i)) == 0) continue;
      std::string id = absl::StrFormat("%s:%#x", kind, 1ull << i);
      std::string name = NameOf(a, id);
      if (name.empty()) name = NameOf(b, id);
      if (!name.empty()) out.push_back(absl::StrCat(id, "=", name));
    }
  }
  return absl::StrJoin(out, ",");
}

absl::StatusOr<StartupDecision> CheckStartup(
    const std::optional<ServerRecord>& previous, const std::string& role,
    const std::string& target, const std::string& release,
    const FeatureSet& known, bool force) {
  StartupDecision d;
  d.record.role = role;
  d.record.target = target;
  d.record.release = release;
  d.record.clean = false;
  d.record.compat = known.default_compat;
  if (!previous.has_value()) {
    d.record.instance = 1;
    d.record.feature_names = MergeFeatureNames(d.record, known.names, "");
    return d;
  }
  const ServerRecord& p = *previous;
  d.previous_clean = p.clean;
  d.previous_release = p.release;
  if ((!p.role.empty() && p.role != role) ||
      (!p.target.empty() && p.target != target)) {
    return Errno(EINVAL,
                 absl::StrCat("this store belongs to ", p.role, " target ",
                              p.target, ", not ", role, " target ", target));
  }
  if (uint64_t unknown = p.incompat & ~known.incompat; unknown != 0) {
    return Errno(EPERM,
                 absl::StrCat(
                     "release ", release, " cannot start ", target,
                     ": the store has incompatible on-disk features (",
                     FeatureNames("incompat", unknown, p.feature_names),
                     ") turned on by release ",
                     p.release, "; start release ", p.release,
                     " or later (a downgrade is impossible once an "
                     "incompatible feature is on)"));
  }
  if (uint64_t unknown = p.ro_compat & ~known.ro_compat; unknown != 0) {
    return Errno(EPERM,
                 absl::StrCat("release ", release, " cannot write to ", target,
                              ": the store has read-only-compatible features (",
                              FeatureNames("ro_compat", unknown,
                                           p.feature_names),
                              ") of release ", p.release));
  }
  if (p.release != release && !p.clean) {
    if (!force) {
      return Errno(EPERM,
                   absl::StrCat(
                       "refusing to start ", target, " at release ", release,
                       ": the previous instance (release ", p.release,
                       ") did not shut down cleanly; restart release ",
                       p.release, " to recover, or force the start (--force: "
                       "its clients are evicted and their open files lost)"));
    }
    d.evict_clients = true;
  }
  d.record.instance = p.instance + 1;
  d.record.compat = p.compat | known.default_compat;
  d.record.ro_compat = p.ro_compat;
  d.record.incompat = p.incompat;
  d.record.feature_names =
      MergeFeatureNames(d.record, known.names, p.feature_names);
  return d;
}

}  // namespace stripefs::storage
