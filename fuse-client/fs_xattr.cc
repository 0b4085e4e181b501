// Fs: extended attributes, including the virtual user.stripefs.layout and
// user.stripefs.df, which never reach the MDS xattr store.
#include <cerrno>

#include "absl/strings/match.h"
#include "common/errors.h"
#include "fuse-client/fs.h"
#include "fuse-client/grpc_mds.h"
#include "fuse-client/layout_text.h"
#include "fuse-client/ost_set.h"

namespace stripefs::client {

namespace {
constexpr char kCapXattr[] = "security.capability";
// This mount's RPC counts, "target method count" per line.
constexpr char kStatsXattr[] = "user.stripefs.stats";

bool IsVirtual(const std::string& name) {
  return absl::StartsWith(name, kVirtualXattrPrefix);
}
}  // namespace

absl::Status Fs::SetXattr(const OpCtx& ctx, uint64_t ino,
                          const std::string& name, const std::string& value,
                          uint32_t flags) {
  if (name == kLayoutXattr) {
    absl::StatusOr<LayoutSetting> set = ParseLayoutSetting(value);
    if (!set.ok()) return set.status();
    // ParseLayoutSetting bounds the size below 4 GiB and the count and
    // offset to int32 (EINVAL past them, never a wrapped value).
    LayoutChange change;
    change.stripe_size = static_cast<uint32_t>(set->stripe_size.value_or(0));
    change.stripe_count = static_cast<int32_t>(set->stripe_count.value_or(0));
    if (set->stripe_offset) {
      change.stripe_offset = static_cast<int32_t>(*set->stripe_offset);
    }
    absl::StatusOr<Layout> layout = mds_->SetLayout(ctx, ino, change);
    if (!layout.ok()) return layout.status();
    if (std::shared_ptr<InodeState> st = FindOpen(ino)) {
      absl::MutexLock lock(&st->mu);
      if (!layout->objects.empty()) st->layout = ToFileLayout(*layout);
    }
    return absl::OkStatus();
  }
  if (IsVirtual(name)) return Errno(EPERM, "read-only stripefs attribute");
  if (name == kCapXattr) ForgetCap(ino);
  CancelEarly({ino});
  return mds_->SetXattr(ctx, ino, name, value, flags);
}

void Fs::ForgetCap(uint64_t ino) {
  if (std::shared_ptr<InodeState> st = FindOpen(ino)) {
    absl::MutexLock lock(&st->mu);
    st->cap_state = 0;
  }
}

absl::StatusOr<std::string> Fs::DfText(const OpCtx& ctx) {
  absl::StatusOr<StatfsInfo> mdt = Statfs(ctx);
  if (!mdt.ok()) return mdt.status();
  std::vector<OstDf> osts;
  if (osts_ == nullptr) return FormatDf(mdt->files, mdt->ffree, osts);
  for (const auto& [index, ost] : osts_->all()) {
    const OstSet::State st = osts_->state(index);
    const char* state = st.active    ? "active"
                        : st.fail_io ? "fail_io"
                                     : "inactive";
    rpc::OssStatfsReply r;
    absl::Status s = ost->Call(
        &rpc::Oss::Stub::Statfs, "Statfs", ctx.interrupted,
        [](rpc::OssStatfsRequest&) {}, &r);
    // A deactivated target may be away: shown with no space.
    if (!s.ok() && st.active) return s;
    osts.push_back({index, r.total_bytes(), r.free_bytes(), r.avail_bytes(),
                    r.objects(), state});
  }
  return FormatDf(mdt->files, mdt->ffree, osts);
}

absl::StatusOr<std::string> Fs::GetXattr(const OpCtx& ctx, uint64_t ino,
                                         const std::string& name) {
  if (name == kLayoutXattr) {
    absl::StatusOr<Layout> layout = mds_->GetLayout(ctx, ino);
    if (!layout.ok()) return layout.status();
    // The formatter speaks the wire's Layout (layout_text.h).
    rpc::Layout wire;
    ToProto(*layout, &wire);
    return FormatLayout(wire, !layout->objects.empty());
  }
  if (name == kDfXattr) return DfText(ctx);
  if (name == kStatsXattr) return StatsText();
  if (IsVirtual(name)) return Errno(ENODATA, "no such stripefs attribute");
  std::shared_ptr<InodeState> st;
  if (name == kCapXattr) {
    st = FindOpen(ino);
    if (st != nullptr) {
      absl::MutexLock lock(&st->mu);
      if (st->cap_state == 1) return Errno(ENODATA, "no capabilities");
      if (st->cap_state == 2) return st->cap_value;
    }
  }
  absl::StatusOr<std::string> value = mds_->GetXattr(ctx, ino, name);
  if (st != nullptr && (value.ok() || ToErrno(value.status()) == ENODATA)) {
    absl::MutexLock lock(&st->mu);
    st->cap_state = value.ok() ? 2 : 1;
    st->cap_value = value.ok() ? *value : std::string();
  }
  return value;
}

absl::StatusOr<std::vector<std::string>> Fs::ListXattr(const OpCtx& ctx,
                                                       uint64_t ino) {
  absl::StatusOr<std::vector<std::string>> all = mds_->ListXattr(ctx, ino);
  if (!all.ok()) return all.status();
  std::vector<std::string> names;
  for (std::string& n : *all) {
    if (!IsVirtual(n)) names.push_back(std::move(n));
  }
  return names;
}

absl::Status Fs::RemoveXattr(const OpCtx& ctx, uint64_t ino,
                             const std::string& name) {
  if (IsVirtual(name)) return Errno(EPERM, "stripefs attributes stay");
  if (name == kCapXattr) ForgetCap(ino);
  CancelEarly({ino});
  return mds_->RemoveXattr(ctx, ino, name);
}

}  // namespace stripefs::client
