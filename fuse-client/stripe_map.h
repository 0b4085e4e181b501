// StripeMap: the RAID-0 arithmetic of docs/internals.md. File offset `off`
// lies in stripe unit u = off / stripe_size, on object u % stripe_count, at
// object offset (u / stripe_count) * stripe_size + off % stripe_size.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace stripefs::client {

// One contiguous piece of a file byte range that lives on one object.
struct StripePiece {
  uint32_t stripe = 0;      // index into the layout's objects
  uint64_t obj_offset = 0;  // offset inside that object
  uint64_t length = 0;      // bytes
  uint64_t buf_offset = 0;  // offset inside the caller's buffer
  bool operator==(const StripePiece&) const = default;
};

// Splits [offset, offset + length) into pieces in file order. Adjacent units
// that are contiguous both in the object and in the buffer are merged (so a
// stripe_count of 1 always gives one piece). stripe_size and stripe_count
// must be > 0; an empty range gives no pieces.
std::vector<StripePiece> MapRange(uint64_t stripe_size, uint32_t stripe_count,
                                  uint64_t offset, uint64_t length);

// Size object `stripe` has when the file is exactly `file_size` bytes long
// (what truncate sets it to).
uint64_t ObjectSizeForFileSize(uint64_t stripe_size, uint32_t stripe_count,
                               uint64_t file_size, uint32_t stripe);

}  // namespace stripefs::client
