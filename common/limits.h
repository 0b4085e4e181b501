// Limits every party agrees on. An object server refuses what passes them;
// a client that answers before the server sees the request (write-behind)
// checks them itself, so the caller gets the same errno at once.
#pragma once

#include <cstdint>

namespace stripefs {

// Largest object; offsets and sizes past it give EFBIG (EINVAL for reads).
inline constexpr uint64_t kMaxObjectSize = uint64_t{16} << 40;  // 16 TiB

}  // namespace stripefs
