// The one error vocabulary of stripefs: an absl::Status whose payload carries
// a POSIX errno. Logic builds errors with Errno(); the FUSE client turns any
// status into an errno with ToErrno() (the only errno conversion point).
// Thread-safe: free functions without state.
#pragma once

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace stripefs {

// Status with the canonical code matching `err` and `err` attached.
absl::Status Errno(int err, absl::string_view message = {});

// The errno a status stands for: its payload if present, else a mapping from
// the canonical code (OK -> 0, UNAVAILABLE -> EIO when no payload, ...).
int ToErrno(const absl::Status& status);

// Canonical code for an errno (ENOENT -> kNotFound, EEXIST -> kAlreadyExists).
absl::StatusCode CodeForErrno(int err);

// Attaches `err` to an existing status (keeps code and message).
void SetErrnoPayload(absl::Status& status, int err);

}  // namespace stripefs
