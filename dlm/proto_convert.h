// Conversions between the core lock types (lock_types.h)
// and the wire messages of rpc/proto/dlm.proto. Used by the service adapter
// and the client library. Pure functions; thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "dlm/lock_types.h"
#include "rpc/proto/dlm.pb.h"

namespace stripefs::dlm {

rpc::ResourceId ToProto(const ResourceId& r);
absl::StatusOr<ResourceId> FromProto(const rpc::ResourceId& r);
absl::StatusOr<LockMode> ModeFromProto(int mode);

rpc::LockDesc ToProto(const LockInfo& info);
absl::StatusOr<LockInfo> FromProto(const rpc::LockDesc& desc);

}  // namespace stripefs::dlm
