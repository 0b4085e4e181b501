#include "dlm/proto_convert.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"

namespace stripefs::dlm {

rpc::ResourceId ToProto(const ResourceId& r) {
  rpc::ResourceId p;
  p.set_name(r.name);
  p.set_type(static_cast<rpc::LockType>(r.type));
  return p;
}

absl::StatusOr<ResourceId> FromProto(const rpc::ResourceId& r) {
  if (!ValidType(r.type())) {
    return Errno(EINVAL, absl::StrCat("bad lock type ", r.type()));
  }
  return ResourceId{r.name(), static_cast<LockType>(r.type())};
}

absl::StatusOr<LockMode> ModeFromProto(int mode) {
  if (!ValidMode(mode)) return Errno(EINVAL, absl::StrCat("bad mode ", mode));
  return static_cast<LockMode>(mode);
}

rpc::LockDesc ToProto(const LockInfo& info) {
  rpc::LockDesc d;
  d.set_handle(info.handle);
  *d.mutable_resource() = ToProto(info.spec.resource);
  d.set_mode(static_cast<rpc::LockMode>(info.spec.mode));
  d.set_bits(info.spec.bits);
  d.set_start(info.spec.start);
  d.set_end(info.spec.end);
  d.set_client_id(info.client_id);
  d.set_granted(info.granted);
  d.set_exempt_client(info.exempt_client);
  return d;
}

absl::StatusOr<LockInfo> FromProto(const rpc::LockDesc& d) {
  auto res = FromProto(d.resource());
  if (!res.ok()) return res.status();
  auto mode = ModeFromProto(d.mode());
  if (!mode.ok()) return mode.status();
  LockInfo info;
  info.handle = d.handle();
  info.client_id = d.client_id();
  info.spec.resource = *res;
  info.spec.mode = *mode;
  info.spec.bits = d.bits();
  info.spec.start = d.start();
  info.spec.end = d.end();
  info.granted = d.granted();
  info.exempt_client = d.exempt_client();
  return info;
}

}  // namespace stripefs::dlm
