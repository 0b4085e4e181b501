#include "rpc/status.h"

#include <cerrno>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::rpc {
namespace {

TEST(StatusTest, ErrnoSurvivesTheWire) {
  absl::Status s = Errno(ENOTEMPTY, "directory not empty");
  absl::Status back = FromGrpc(ToGrpc(s));
  EXPECT_EQ(back.code(), s.code());
  EXPECT_EQ(back.message(), "directory not empty");
  EXPECT_EQ(ToErrno(back), ENOTEMPTY);
}

TEST(StatusTest, OkStaysOk) {
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpc(grpc::Status::OK).ok());
}

TEST(StatusTest, PlainGrpcErrorsMapByCode) {
  EXPECT_EQ(ToErrno(FromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x"))),
            EIO);
  EXPECT_EQ(ToErrno(FromGrpc(
                grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too big"))),
            E2BIG);
}

TEST(StatusTest, TransportCancelIsUnavailableButServerEintrStaysEintr) {
  // A call cut by a server shutting down: resendable, never EINTR.
  absl::Status cut =
      FromGrpc(grpc::Status(grpc::StatusCode::CANCELLED, "Cancelled"));
  EXPECT_TRUE(absl::IsUnavailable(cut)) << cut;
  EXPECT_NE(ToErrno(cut), EINTR);
  // A stripefs answer EINTR (a waiter interrupted on the server) keeps it.
  absl::Status intr = FromGrpc(ToGrpc(Errno(EINTR, "interrupted")));
  EXPECT_EQ(ToErrno(intr), EINTR);
}

}  // namespace
}  // namespace stripefs::rpc
