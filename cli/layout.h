// The text formats of the virtual xattrs user.stripefs.layout and
// user.stripefs.df (see docs/internals.md), parsed into plain structs, and
// the set-text the CLI writes. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stripefs::cli {

inline constexpr const char* kLayoutXattr = "user.stripefs.layout";
inline constexpr const char* kDfXattr = "user.stripefs.df";

struct StripeObject {
  uint32_t ost = 0;
  uint64_t oid = 0;
  bool operator==(const StripeObject&) const = default;
};

struct Layout {
  uint64_t stripe_size = 0;
  int64_t stripe_count = 0;
  int64_t stripe_offset = -1;
  std::vector<StripeObject> objects;  // empty for a directory default
  bool operator==(const Layout&) const = default;
};

// Parses "stripe_size=1048576 stripe_count=4 stripe_offset=-1
// objects=0:17,1:17". Unknown keys are ignored (forward compatible);
// stripe_size and stripe_count are required.
absl::StatusOr<Layout> ParseLayout(absl::string_view text);

// The inverse (what getfattr shows).
std::string FormatLayout(const Layout& layout);

// What setstripe asks for; unset fields are left to the filesystem.
struct LayoutRequest {
  std::optional<uint64_t> stripe_size;
  std::optional<int64_t> stripe_count;
  std::optional<int64_t> stripe_offset;
  bool empty() const { return !stripe_size && !stripe_count && !stripe_offset; }
};

// Checks ranges before anything reaches the filesystem: size > 0 and a
// multiple of 64 KiB, count >= -1, offset >= -1. EINVAL with a message.
absl::Status ValidateLayoutRequest(const LayoutRequest& req);

// "stripe_size=S stripe_count=C stripe_offset=I" with only the set fields.
std::string LayoutSetText(const LayoutRequest& req);

// One line of user.stripefs.df.
struct DfTarget {
  std::string target;  // "mdt0", "ost3"
  bool is_mdt = false;
  uint64_t files = 0, ffree = 0;                         // mdt
  uint64_t total = 0, free = 0, avail = 0, objects = 0;  // ost
  bool operator==(const DfTarget&) const = default;
};

// Parses "mdt0 files=N ffree=N\nost0 total=B free=B avail=B objects=N\n...".
absl::StatusOr<std::vector<DfTarget>> ParseDf(absl::string_view text);

// Number of OST lines.
int CountOsts(const std::vector<DfTarget>& targets);

}  // namespace stripefs::cli
