// Early-return helpers for absl::Status / absl::StatusOr inside mds/.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MDS_RETURN_IF_ERROR(expr)         \
  do {                                    \
    ::absl::Status mds_status_ = (expr);  \
    if (!mds_status_.ok()) return mds_status_; \
  } while (0)

#define MDS_CONCAT_INNER(a, b) a##b
#define MDS_CONCAT(a, b) MDS_CONCAT_INNER(a, b)
#define MDS_ASSIGN_OR_RETURN(lhs, expr) \
  MDS_ASSIGN_OR_RETURN_IMPL(MDS_CONCAT(mds_statusor_, __LINE__), lhs, expr)
#define MDS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(*tmp)
