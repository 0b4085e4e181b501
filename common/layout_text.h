// The text forms of the virtual xattrs user.stripefs.layout and
// user.stripefs.df (docs/internals.md), in one place for both ends: the
// client formats what getfattr reads and parses what setfattr writes; the
// CLI writes the setting text (setstripe) and parses what it reads back
// (getstripe, df). Plain structs, no RPC types; pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stripefs {

inline constexpr char kLayoutXattr[] = "user.stripefs.layout";
inline constexpr char kDfXattr[] = "user.stripefs.df";
inline constexpr char kVirtualXattrPrefix[] = "user.stripefs.";

// ---- user.stripefs.layout, read (getfattr / getstripe).

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

// "stripe_size=1048576 stripe_count=4 stripe_offset=-1 objects=0:17,1:17";
// no objects= part when there are none (a directory's default).
std::string FormatLayout(const Layout& layout);

// The inverse. Unknown keys are ignored (forward compatible); stripe_size
// and stripe_count are required. EINVAL with a message otherwise.
absl::StatusOr<Layout> ParseLayout(absl::string_view text);

// ---- user.stripefs.layout, set (setfattr / setstripe).

// What a set asks for; unset fields are left to the filesystem (inherited).
struct LayoutSetting {
  std::optional<uint64_t> stripe_size;
  std::optional<int64_t> stripe_count;
  std::optional<int64_t> stripe_offset;
  bool empty() const { return !stripe_size && !stripe_count && !stripe_offset; }
};

// "stripe_size=S stripe_count=C stripe_offset=I" with only the set fields
// (what setstripe writes).
std::string LayoutSetText(const LayoutSetting& setting);

// The CLI's check before anything reaches the filesystem: size > 0 and a
// multiple of 64 KiB, count >= -1 (0: the default), offset >= -1. EINVAL
// with an "invalid layout: ..." message.
absl::Status ValidateLayoutSetting(const LayoutSetting& setting);

// The client's parse of a set: "stripe_size=S stripe_count=C
// stripe_offset=I" (any subset, any order, separated by blanks or commas;
// S is a size as ParseSize reads it, e.g. 1M; objects= is ignored so a
// value read back can be written again). EINVAL on unknown keys, bad
// numbers, a size that is 0, not a multiple of 64 KiB or not below 4 GiB,
// a count below -1 or 0, an offset below -1, or nothing set.
absl::StatusOr<LayoutSetting> ParseLayoutSetting(absl::string_view text);

// ---- user.stripefs.df.

// One OST's space, as the client reports it.
struct OstDf {
  uint32_t index = 0;
  uint64_t total = 0;
  uint64_t free = 0;
  uint64_t avail = 0;
  uint64_t objects = 0;
  // "active", "inactive" or "fail_io" (inactive, its I/O fails); empty:
  // not reported (older mounts).
  std::string state;
};

// "mdt0 files=N ffree=N\nost0 total=B free=B avail=B objects=N state=S\n..."
std::string FormatDf(uint64_t files, uint64_t ffree,
                     const std::vector<OstDf>& osts);

// One line of user.stripefs.df, as the CLI reads it.
struct DfTarget {
  std::string target;  // "mdt0", "ost3"
  bool is_mdt = false;
  uint64_t files = 0, ffree = 0;                         // mdt
  uint64_t total = 0, free = 0, avail = 0, objects = 0;  // ost
  std::string state;                                     // ost, may be empty
  bool operator==(const DfTarget&) const = default;
};

// The inverse of FormatDf. Unknown keys are ignored; EINVAL on a line that
// names no mdt/ost target, a bad number, or an empty report.
absl::StatusOr<std::vector<DfTarget>> ParseDf(absl::string_view text);

// Number of OST lines.
int CountOsts(const std::vector<DfTarget>& targets);

}  // namespace stripefs
