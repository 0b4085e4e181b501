// The absl <-> grpc status edge. Every gRPC handler returns ToGrpc(status);
// every stub call result goes through FromGrpc. The errno payload survives
// the trip in grpc::Status::error_details (an ErrorDetail message).
#pragma once

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace stripefs::rpc {

grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

}  // namespace stripefs::rpc
