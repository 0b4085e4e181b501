#include "rpc/status.h"

#include <cerrno>

#include "absl/strings/str_cat.h"

#include "common/errors.h"
#include "rpc/proto/common.pb.h"

namespace stripefs::rpc {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  ErrorDetail detail;
  detail.set_errno_value(ToErrno(status));
  detail.set_message(std::string(status.message()));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()),
                      detail.SerializeAsString());
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::CANCELLED &&
      status.error_details().empty()) {
    // Not a stripefs answer (those carry an ErrorDetail, EINTR included):
    // the call was cut, e.g. by a server shutting down past its grace
    // time. Like an unreachable server: worth resending, never EINTR.
    return absl::UnavailableError(
        absl::StrCat("call cut by the transport: ", status.error_message()));
  }
  absl::Status s(static_cast<absl::StatusCode>(status.error_code()),
                 status.error_message());
  ErrorDetail detail;
  if (!status.error_details().empty() &&
      detail.ParseFromString(status.error_details()) &&
      detail.errno_value() > 0) {
    SetErrnoPayload(s, detail.errno_value());
  } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    // gRPC's own refusal of an oversized message.
    SetErrnoPayload(s, E2BIG);
  }
  return s;
}

}  // namespace stripefs::rpc
