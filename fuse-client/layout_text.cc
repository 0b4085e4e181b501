#include "fuse-client/layout_text.h"

#include <cerrno>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/errors.h"

namespace stripefs::client {
namespace {

constexpr uint64_t kStripeAlign = 64 * 1024;

bool ParseSize(absl::string_view v, uint64_t* out) {
  uint64_t mult = 1;
  if (!v.empty()) {
    switch (absl::ascii_tolower(v.back())) {
      case 'k':
        mult = 1ull << 10;
        break;
      case 'm':
        mult = 1ull << 20;
        break;
      case 'g':
        mult = 1ull << 30;
        break;
      default:
        break;
    }
    if (mult != 1) v.remove_suffix(1);
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(v, &n)) return false;
  if (n > std::numeric_limits<uint64_t>::max() / mult) return false;
  *out = n * mult;
  return true;
}

}  // namespace

std::string FormatLayout(const rpc::Layout& layout, bool with_objects) {
  std::string out = absl::StrCat("stripe_size=", layout.stripe_size(),
                                 " stripe_count=", layout.stripe_count(),
                                 " stripe_offset=", layout.stripe_offset());
  if (with_objects) {
    absl::StrAppend(&out, " objects=");
    for (int i = 0; i < layout.objects_size(); ++i) {
      if (i > 0) out.push_back(',');
      absl::StrAppend(&out, layout.objects(i).ost(), ":",
                      layout.objects(i).oid());
    }
  }
  return out;
}

absl::StatusOr<LayoutSetting> ParseLayoutSetting(absl::string_view text) {
  LayoutSetting s;
  bool any = false;
  std::vector<absl::string_view> toks;
  for (absl::string_view word :
       absl::StrSplit(text, absl::ByAnyChar(absl::string_view(" \t\n\r\0", 5)),
                      absl::SkipEmpty())) {
    if (absl::StartsWith(word, "objects=")) continue;  // read-back value
    for (absl::string_view t : absl::StrSplit(word, ',', absl::SkipEmpty())) {
      toks.push_back(t);
    }
  }
  for (absl::string_view tok : toks) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(tok, absl::MaxSplits('=', 1));
    absl::string_view key = kv.first, val = kv.second;
    if (key == "stripe_size") {
      uint64_t n = 0;
      if (!ParseSize(val, &n) || n == 0 || n % kStripeAlign != 0 ||
          n > std::numeric_limits<uint32_t>::max()) {
        return Errno(EINVAL,
                     absl::StrCat("stripe_size must be a non-zero multiple of "
                                  "65536 below 4 GiB, got '",
                                  val, "'"));
      }
      s.stripe_size = static_cast<uint32_t>(n);
    } else if (key == "stripe_count") {
      int32_t n = 0;
      if (!absl::SimpleAtoi(val, &n) || n < -1 || n == 0) {
        return Errno(EINVAL, absl::StrCat("bad stripe_count '", val, "'"));
      }
      s.stripe_count = n;
    } else if (key == "stripe_offset") {
      int32_t n = 0;
      if (!absl::SimpleAtoi(val, &n) || n < -1) {
        return Errno(EINVAL, absl::StrCat("bad stripe_offset '", val, "'"));
      }
      s.stripe_offset = n;
    } else {
      return Errno(EINVAL, absl::StrCat("unknown layout key '", key, "'"));
    }
    any = true;
  }
  if (!any) return Errno(EINVAL, "empty layout setting");
  return s;
}

std::string FormatDf(uint64_t files, uint64_t ffree,
                     const std::vector<OstDf>& osts) {
  std::string out = absl::StrCat("mdt0 files=", files, " ffree=", ffree, "\n");
  for (const OstDf& o : osts) {
    absl::StrAppend(&out, "ost", o.index, " total=", o.total, " free=", o.free,
                    " avail=", o.avail, " objects=", o.objects, "\n");
  }
  return out;
}

}  // namespace stripefs::client
