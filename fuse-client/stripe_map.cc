#include "fuse-client/stripe_map.h"

#include <algorithm>

namespace stripefs::client {

std::vector<StripePiece> MapRange(uint64_t stripe_size, uint32_t stripe_count,
                                  uint64_t offset, uint64_t length) {
  std::vector<StripePiece> pieces;
  if (length == 0 || stripe_size == 0 || stripe_count == 0) return pieces;
  uint64_t done = 0;
  while (done < length) {
    uint64_t off = offset + done;
    uint64_t unit = off / stripe_size;
    uint64_t in_unit = off % stripe_size;
    uint64_t len = std::min(stripe_size - in_unit, length - done);
    StripePiece p;
    p.stripe = static_cast<uint32_t>(unit % stripe_count);
    p.obj_offset = (unit / stripe_count) * stripe_size + in_unit;
    p.length = len;
    p.buf_offset = done;
    if (!pieces.empty()) {
      StripePiece& last = pieces.back();
      if (last.stripe == p.stripe &&
          last.obj_offset + last.length == p.obj_offset &&
          last.buf_offset + last.length == p.buf_offset) {
        last.length += len;
        done += len;
        continue;
      }
    }
    pieces.push_back(p);
    done += len;
  }
  return pieces;
}

uint64_t ObjectSizeForFileSize(uint64_t stripe_size, uint32_t stripe_count,
                               uint64_t file_size, uint32_t stripe) {
  if (stripe_size == 0 || stripe_count == 0) return 0;
  uint64_t full_units = file_size / stripe_size;
  uint64_t rem = file_size % stripe_size;
  uint64_t rounds = full_units / stripe_count;
  uint64_t extra = full_units % stripe_count;  // objects with one more unit
  if (rem > 0 && stripe == extra) return rounds * stripe_size + rem;
  uint64_t units = rounds + (stripe < extra ? 1 : 0);
  return units * stripe_size;
}

}  // namespace stripefs::client
