// Byte sizes as people write them ("1M", "64K", "4096"): parsing and
// printing, shared by the CLI (flags, df -H) and the client (the stripe
// size in a user.stripefs.layout setting). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stripefs {

// Stripe sizes must be a multiple of this.
inline constexpr uint64_t kStripeAlign = 64 * 1024;

// Parses a non-negative byte count: decimal digits with an optional binary
// suffix K, M, G or T (case-insensitive, optionally followed by "B" or
// "iB"). EINVAL on anything else or on overflow.
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);

// "1.5G", "64K", "512" — powers of 1024, at most one decimal.
std::string FormatSize(uint64_t bytes);

// Checks a stripe size: > 0 and a multiple of 64 KiB. EINVAL with a message
// naming the value otherwise.
absl::Status ValidateStripeSize(uint64_t bytes);

}  // namespace stripefs
