#include "mds/target_registry.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "mds/mds_core.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {

// T<index BE32> -> [format 1][flags: 1 inactive, 2 fail_io][address].
constexpr char kTargetPrefix[] = "T";
constexpr uint8_t kFormat = 1;
constexpr uint8_t kInactive = 1;
constexpr uint8_t kFailIo = 2;

std::string TargetKey(uint32_t index) {
  std::string k = kTargetPrefix;
  storage::AppendBE32(&k, index);
  return k;
}

std::string EncodeTarget(const OstTarget& t) {
  std::string v(1, static_cast<char>(kFormat));
  v.push_back(static_cast<char>((t.active ? 0 : kInactive) |
                                (t.fail_io ? kFailIo : 0)));
  v.append(t.address);
  return v;
}

absl::StatusOr<OstTarget> DecodeTarget(std::string_view key,
                                       std::string_view v) {
  if (key.size() != 5 || v.size() < 2 || uint8_t(v[0]) != kFormat) {
    return Errno(EIO, "corrupt target record");
  }
  OstTarget t;
  t.index = storage::DecodeBE32(key.substr(1));
  t.active = (uint8_t(v[1]) & kInactive) == 0;
  t.fail_io = (uint8_t(v[1]) & kFailIo) != 0;
  t.address = std::string(v.substr(2));
  return t;
}

// HOST:PORT with a port in 1..65535 (an IPv6 host in brackets).
bool GoodAddress(const std::string& a) {
  const size_t colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  uint32_t port = 0;
  return absl::SimpleAtoi(a.substr(colon + 1), &port) && port > 0 &&
         port < 65536;
}

}  // namespace

absl::StatusOr<std::vector<OstTarget>> LoadTargets(
    storage::KvStore* store, const std::vector<OstTarget>& flags) {
  std::map<uint32_t, OstTarget> all;
  std::unique_ptr<storage::KvIterator> it = store->NewIterator();
  for (it->Seek(kTargetPrefix); it->Valid() && it->key().substr(0, 1) ==
                                                   kTargetPrefix;
       it->Next()) {
    STRIPEFS_ASSIGN_OR_RETURN(OstTarget t, DecodeTarget(it->key(), it->value()));
    all[t.index] = t;
  }
  STRIPEFS_RETURN_IF_ERROR(it->status());
  storage::WriteBatch b;
  for (const OstTarget& f : flags) {
    auto found = all.find(f.index);
    if (found == all.end()) {
      all[f.index] = f;
    } else if (found->second.address == f.address) {
      continue;
    } else {
      spdlog::info("ost{} moved from {} to {}", f.index,
                   found->second.address, f.address);
      found->second.address = f.address;
    }
    b.Put(TargetKey(f.index), EncodeTarget(all[f.index]));
  }
  if (!b.empty()) STRIPEFS_RETURN_IF_ERROR(store->Write(b, {.sync = true}));
  std::vector<OstTarget> out;
  for (const auto& [index, t] : all) {
    if (!t.active) {
      spdlog::info("ost{} at {} is inactive{}", index, t.address,
                   t.fail_io ? " (its I/O fails at the mounts)" : "");
    }
    out.push_back(t);
  }
  return out;
}

absl::Status TargetRegistry::Record(const OstTarget& t) {
  storage::WriteBatch b;
  b.Put(TargetKey(t.index), EncodeTarget(t));
  return store_->Write(b, {.sync = true});
}

absl::Status TargetRegistry::Add(uint32_t index, const std::string& address,
                                 absl::Duration wait) {
  if (!GoodAddress(address)) {
    return Errno(EINVAL, absl::StrCat("bad target address '", address,
                                      "' (want HOST:PORT)"));
  }
  absl::MutexLock l(&mu_);
  std::optional<OstTarget> known;
  for (const OstTarget& t : pool_->Targets()) {
    if (t.index == index && t.address != address) {
      return Errno(EEXIST, absl::StrCat("ost", index, " exists (at ",
                                        t.address, ")"));
    }
    if (t.index != index && t.address == address) {
      return Errno(EEXIST, absl::StrCat(address, " is ost", t.index, "'s"));
    }
    if (t.index == index) known = t;
  }
  // The same target again (a resent or repeated add): finish bringing it
  // into service if an earlier attempt stopped short.
  if (known.has_value() && known->active) return absl::OkStatus();
  OstTarget t{.index = index, .address = address, .active = false};
  if (!known.has_value()) {
    STRIPEFS_RETURN_IF_ERROR(Record(t));
    if (absl::Status s = pool_->AddTarget(t); !s.ok()) {
      storage::WriteBatch b;  // not recorded after all
      b.Delete(TargetKey(index));
      if (absl::Status d = store_->Write(b, {.sync = true}); !d.ok()) {
        spdlog::error("ost{}: dropping its record: {}", index, d.ToString());
      }
      return s;
    }
  }
  // Seed 004's order: the new target's object ids are agreed (its first
  // precreate) before it is active for allocation.
  STRIPEFS_RETURN_IF_ERROR(core_->PrimeOst(index, wait));
  t.active = true;
  STRIPEFS_RETURN_IF_ERROR(Record(t));
  STRIPEFS_RETURN_IF_ERROR(pool_->SetTargetState(index, true, false));
  spdlog::info("ost{} at {} added and active", index, address);
  changed_();
  return absl::OkStatus();
}

absl::Status TargetRegistry::SetState(uint32_t index, bool active,
                                      bool fail_io) {
  if (active) fail_io = false;
  absl::MutexLock l(&mu_);
  const std::vector<OstTarget> targets = pool_->Targets();
  auto t = std::find_if(targets.begin(), targets.end(),
                        [index](const OstTarget& o) { return o.index == index; });
  if (t == targets.end()) {
    return Errno(ENOENT, absl::StrCat("no target ost", index));
  }
  if (!active) {
    const bool other = std::any_of(
        targets.begin(), targets.end(),
        [index](const OstTarget& o) { return o.active && o.index != index; });
    if (!other) {
      return Errno(EBUSY, absl::StrCat("ost", index, " is the last active "
                                       "OST: new files would have none"));
    }
  }
  if (t->active == active && t->fail_io == fail_io) return absl::OkStatus();
  OstTarget changed = *t;
  changed.active = active;
  changed.fail_io = fail_io;
  STRIPEFS_RETURN_IF_ERROR(Record(changed));
  STRIPEFS_RETURN_IF_ERROR(pool_->SetTargetState(index, active, fail_io));
  spdlog::info("ost{} {}{}", index, active ? "activated" : "deactivated",
               fail_io ? " (its I/O fails at the mounts)" : "");
  changed_();
  return absl::OkStatus();
}

absl::Status TargetRegistry::Remove(uint32_t index, bool force) {
  absl::MutexLock l(&mu_);
  const std::vector<OstTarget> targets = pool_->Targets();
  auto t = std::find_if(targets.begin(), targets.end(),
                        [index](const OstTarget& o) { return o.index == index; });
  if (t == targets.end()) {
    return Errno(ENOENT, absl::StrCat("no target ost", index));
  }
  if (t->active) {
    return Errno(EBUSY, absl::StrCat("ost", index, " is active: deactivate "
                                     "it (and drain it) first"));
  }
  if (targets.size() == 1) {
    return Errno(EBUSY, absl::StrCat("ost", index, " is the last OST"));
  }
  STRIPEFS_ASSIGN_OR_RETURN(uint64_t files, core_->FilesOnOst(index));
  if (files > 0 && !force) {
    return Errno(ENOTEMPTY,
                 absl::StrCat("ost", index, " holds objects of ", files,
                              " files: drain it first (or --force: those "
                              "files lose the data they have there)"));
  }
  if (files > 0) {
    spdlog::warn("ost{} removed by force: {} files lose the data they had "
                 "there (their I/O there fails)",
                 index, files);
  }
  storage::WriteBatch b;
  b.Delete(TargetKey(index));
  STRIPEFS_RETURN_IF_ERROR(store_->Write(b, {.sync = true}));
  STRIPEFS_RETURN_IF_ERROR(pool_->RemoveTarget(index));
  STRIPEFS_RETURN_IF_ERROR(core_->ForgetOst(index));
  spdlog::info("ost{} removed", index);
  changed_();
  return absl::OkStatus();
}

}  // namespace stripefs::mds
