#include "common/errors.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace stripefs {
namespace {

TEST(ErrorsTest, RoundTripsErrno) {
  for (int e : {ENOENT, EEXIST, EACCES, EPERM, ENOTEMPTY, ENAMETOOLONG, ENODATA,
                ERANGE, EXDEV, EINVAL, EIO, ENOSPC, EISDIR, ENOTDIR, ELOOP}) {
    absl::Status s = Errno(e);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(ToErrno(s), e) << e;
  }
}

TEST(ErrorsTest, OkIsZero) {
  EXPECT_EQ(ToErrno(absl::OkStatus()), 0);
  EXPECT_TRUE(Errno(0).ok());
}

TEST(ErrorsTest, CodesWithoutPayloadMapSensibly) {
  EXPECT_EQ(ToErrno(absl::NotFoundError("x")), ENOENT);
  EXPECT_EQ(ToErrno(absl::UnavailableError("x")), EIO);
  EXPECT_EQ(ToErrno(absl::DeadlineExceededError("x")), ETIMEDOUT);
}

}  // namespace
}  // namespace stripefs
