// Text forms of the virtual xattrs user.stripefs.layout and user.stripefs.df
// (docs/internals.md). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/proto/mds.pb.h"

namespace stripefs::client {

inline constexpr char kLayoutXattr[] = "user.stripefs.layout";
inline constexpr char kDfXattr[] = "user.stripefs.df";
inline constexpr char kVirtualXattrPrefix[] = "user.stripefs.";

// "stripe_size=1048576 stripe_count=4 stripe_offset=-1 objects=0:17,1:17"
// (no objects= part when with_objects is false: a directory's default).
std::string FormatLayout(const rpc::Layout& layout, bool with_objects);

// What a set of user.stripefs.layout asks for; unset fields keep the
// inherited value.
struct LayoutSetting {
  std::optional<uint32_t> stripe_size;
  std::optional<int32_t> stripe_count;
  std::optional<int32_t> stripe_offset;
};

// Parses "stripe_size=S stripe_count=C stripe_offset=I" (any subset, any
// order, separated by blanks or commas; S may end in K/M/G; objects= is
// ignored so a value read back can be written again). EINVAL on unknown keys,
// bad numbers, a size that is 0 or not a multiple of 64 KiB, a count below
// -1 or 0, an offset below -1, or nothing set.
absl::StatusOr<LayoutSetting> ParseLayoutSetting(absl::string_view text);

struct OstDf {
  uint32_t index = 0;
  uint64_t total = 0;
  uint64_t free = 0;
  uint64_t avail = 0;
  uint64_t objects = 0;
};

// "mdt0 files=N ffree=N\nost0 total=B free=B avail=B objects=N\n..."
std::string FormatDf(uint64_t files, uint64_t ffree,
                     const std::vector<OstDf>& osts);

}  // namespace stripefs::client
