// Early-return helpers for absl::Status / absl::StatusOr:
//   STRIPEFS_RETURN_IF_ERROR(status_expr);
//   STRIPEFS_ASSIGN_OR_RETURN(T v, statusor_expr);
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STRIPEFS_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::absl::Status stripefs_status_ = (expr);            \
    if (!stripefs_status_.ok()) return stripefs_status_; \
  } while (0)

#define STRIPEFS_CONCAT_INNER(a, b) a##b
#define STRIPEFS_CONCAT(a, b) STRIPEFS_CONCAT_INNER(a, b)
#define STRIPEFS_ASSIGN_OR_RETURN(lhs, expr) \
  STRIPEFS_ASSIGN_OR_RETURN_IMPL(            \
      STRIPEFS_CONCAT(stripefs_statusor_, __LINE__), lhs, expr)
#define STRIPEFS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(*tmp)
