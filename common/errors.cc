#include "common/errors.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace stripefs {
namespace {
constexpr absl::string_view kErrnoUrl = "stripefs/errno";
}  // namespace

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case 0:
      return absl::StatusCode::kOk;
    case ENOENT:
    case ENODATA:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ERANGE:
    case ELOOP:
    case EXDEV:
      return absl::StatusCode::kInvalidArgument;
    case ENOTEMPTY:
    case EBUSY:
    case ETXTBSY:
      return absl::StatusCode::kFailedPrecondition;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case E2BIG:
      return absl::StatusCode::kResourceExhausted;
    case EINTR:
      return absl::StatusCode::kCancelled;
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case EOPNOTSUPP:
    case ENOSYS:
      return absl::StatusCode::kUnimplemented;
    case EAGAIN:
    case ENOTCONN:
    case ESHUTDOWN:
      return absl::StatusCode::kUnavailable;
    case EIO:
    case ESTALE:
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status Errno(int err, absl::string_view message) {
  absl::Status s(CodeForErrno(err),
                 message.empty() ? absl::string_view(strerror(err)) : message);
  if (s.ok()) return s;
  SetErrnoPayload(s, err);
  return s;
}

void SetErrnoPayload(absl::Status& status, int err) {
  if (status.ok()) return;
  status.SetPayload(kErrnoUrl, absl::Cord(absl::StrCat(err)));
}

int ToErrno(const absl::Status& status) {
  if (status.ok()) return 0;
  if (auto p = status.GetPayload(kErrnoUrl)) {
    int v = 0;
    if (absl::SimpleAtoi(std::string(*p), &v) && v > 0) return v;
  }
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kAlreadyExists:
      return EEXIST;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return EACCES;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return EINVAL;
    case absl::StatusCode::kFailedPrecondition:
      return EBUSY;
    case absl::StatusCode::kResourceExhausted:
      return ENOSPC;
    case absl::StatusCode::kCancelled:
      return EINTR;
    case absl::StatusCode::kDeadlineExceeded:
      return ETIMEDOUT;
    case absl::StatusCode::kUnimplemented:
      return EOPNOTSUPP;
    default:
      return EIO;
  }
}

}  // namespace stripefs
