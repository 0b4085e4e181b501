// Fs: extended attributes, including the virtual user.stripefs.layout and
// user.stripefs.df, which never reach the MDS xattr store.
#include <cerrno>

#include "absl/strings/match.h"
#include "common/errors.h"
#include "fuse-client/fs.h"
#include "fuse-client/layout_text.h"

namespace stripefs::client {

using rpc::Mds;

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
    rpc::LayoutReply reply;
    absl::Status s = mds_->Call(
        &Mds::Stub::SetLayout, "SetLayout", ctx.interrupted,
        [&](rpc::SetLayoutRequest& r) {
          mds_->FillHeader(r.mutable_hdr());
          FillCred(ctx, r.mutable_cred());
          r.set_ino(ino);
          r.set_stripe_size(set->stripe_size.value_or(0));
          r.set_stripe_count(set->stripe_count.value_or(0));
          if (set->stripe_offset.has_value()) {
            r.set_stripe_offset(*set->stripe_offset);
          }
        },
        &reply);
    if (!s.ok()) return s;
    if (std::shared_ptr<InodeState> st = FindOpen(ino)) {
      absl::MutexLock lock(&st->mu);
      if (reply.layout().objects_size() > 0) {
        st->layout = ToFileLayout(reply.layout());
      }
    }
    return absl::OkStatus();
  }
  if (IsVirtual(name)) return Errno(EPERM, "read-only stripefs attribute");
  if (name == kCapXattr) ForgetCap(ino);
  CancelEarly({ino});
  rpc::XattrReply reply;
  return mds_->Call(
      &Mds::Stub::SetXattr, "SetXattr", ctx.interrupted,
      [&](rpc::SetXattrRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_name(name);
        r.set_value(value);
        r.set_flags(flags);
      },
      &reply);
}

void Fs::ForgetCap(uint64_t ino) {
  if (std::shared_ptr<InodeState> st = FindOpen(ino)) {
    absl::MutexLock lock(&st->mu);
    st->cap_state = 0;
  }
}

absl::StatusOr<std::string> Fs::DfText(const OpCtx& ctx) {
  absl::StatusOr<rpc::StatfsReply> mdt = Statfs(ctx);
  if (!mdt.ok()) return mdt.status();
  std::vector<OstDf> osts;
  for (const auto& [index, ost] : osts_->all()) {
    rpc::OssStatfsReply r;
    absl::Status s = ost->Call(
        &rpc::Oss::Stub::Statfs, "Statfs", ctx.interrupted,
        [](rpc::OssStatfsRequest&) {}, &r);
    if (!s.ok()) return s;
    osts.push_back(
        {index, r.total_bytes(), r.free_bytes(), r.avail_bytes(), r.objects()});
  }
  return FormatDf(mdt->files(), mdt->ffree(), osts);
}

absl::StatusOr<std::string> Fs::GetXattr(const OpCtx& ctx, uint64_t ino,
                                         const std::string& name) {
  if (name == kLayoutXattr) {
    rpc::LayoutReply reply;
    absl::Status s = mds_->Call(
        &Mds::Stub::GetLayout, "GetLayout", ctx.interrupted,
        [&](rpc::GetLayoutRequest& r) {
          FillCred(ctx, r.mutable_cred());
          r.set_ino(ino);
        },
        &reply);
    if (!s.ok()) return s;
    return FormatLayout(reply.layout(), reply.layout().objects_size() > 0);
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
  rpc::GetXattrReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::GetXattr, "GetXattr", ctx.interrupted,
      [&](rpc::GetXattrRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_name(name);
      },
      &reply);
  if (st != nullptr && (s.ok() || ToErrno(s) == ENODATA)) {
    absl::MutexLock lock(&st->mu);
    st->cap_state = s.ok() ? 2 : 1;
    st->cap_value = reply.value();
  }
  if (!s.ok()) return s;
  return std::move(*reply.mutable_value());
}

absl::StatusOr<std::vector<std::string>> Fs::ListXattr(const OpCtx& ctx,
                                                       uint64_t ino) {
  rpc::ListXattrReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::ListXattr, "ListXattr", ctx.interrupted,
      [&](rpc::ListXattrRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
      },
      &reply);
  if (!s.ok()) return s;
  std::vector<std::string> names;
  for (std::string& n : *reply.mutable_names()) {
    if (!IsVirtual(n)) names.push_back(std::move(n));
  }
  return names;
}

absl::Status Fs::RemoveXattr(const OpCtx& ctx, uint64_t ino,
                             const std::string& name) {
  if (IsVirtual(name)) return Errno(EPERM, "stripefs attributes stay");
  if (name == kCapXattr) ForgetCap(ino);
  CancelEarly({ino});
  rpc::XattrReply reply;
  return mds_->Call(
      &Mds::Stub::RemoveXattr, "RemoveXattr", ctx.interrupted,
      [&](rpc::RemoveXattrRequest& r) {
        mds_->FillHeader(r.mutable_hdr());
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_name(name);
      },
      &reply);
}

}  // namespace stripefs::client
