#include "common/layout_text.h"

#include <cerrno>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errors.h"
#include "common/size.h"

namespace stripefs {
namespace {

absl::Status Bad(absl::string_view what, absl::string_view text) {
  return Errno(EINVAL, absl::StrCat("bad ", what, " in '", text, "'"));
}

}  // namespace

absl::StatusOr<Layout> ParseLayout(absl::string_view text) {
  Layout layout;
  bool have_size = false, have_count = false;
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  // The xattr value may carry a trailing NUL.
  while (!trimmed.empty() && trimmed.back() == '\0') trimmed.remove_suffix(1);
  for (absl::string_view field :
       absl::StrSplit(trimmed, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(field, absl::MaxSplits('=', 1));
    const absl::string_view key = kv.first, value = kv.second;
    if (key == "stripe_size") {
      if (!absl::SimpleAtoi(value, &layout.stripe_size)) {
        return Bad("stripe_size", text);
      }
      have_size = true;
    } else if (key == "stripe_count") {
      if (!absl::SimpleAtoi(value, &layout.stripe_count)) {
        return Bad("stripe_count", text);
      }
      have_count = true;
    } else if (key == "stripe_offset") {
      if (!absl::SimpleAtoi(value, &layout.stripe_offset)) {
        return Bad("stripe_offset", text);
      }
    } else if (key == "objects") {
      for (absl::string_view obj :
           absl::StrSplit(value, ',', absl::SkipEmpty())) {
        std::pair<absl::string_view, absl::string_view> p =
            absl::StrSplit(obj, absl::MaxSplits(':', 1));
        StripeObject so;
        if (!absl::SimpleAtoi(p.first, &so.ost) ||
            !absl::SimpleAtoi(p.second, &so.oid)) {
          return Bad("objects", text);
        }
        layout.objects.push_back(so);
      }
    }
  }
  if (!have_size || !have_count) {
    return Errno(
        EINVAL,
        absl::StrCat("layout lacks stripe_size or stripe_count: '", text, "'"));
  }
  return layout;
}

std::string FormatLayout(const Layout& layout) {
  std::string out = absl::StrCat("stripe_size=", layout.stripe_size,
                                 " stripe_count=", layout.stripe_count,
                                 " stripe_offset=", layout.stripe_offset);
  if (!layout.objects.empty()) {
    absl::StrAppend(&out, " objects=",
                    absl::StrJoin(layout.objects, ",",
                                  [](std::string* o, const StripeObject& so) {
                                    absl::StrAppend(o, so.ost, ":", so.oid);
                                  }));
  }
  return out;
}

absl::Status ValidateLayoutSetting(const LayoutSetting& req) {
  if (req.stripe_size) {
    absl::Status s = ValidateStripeSize(*req.stripe_size);
    if (!s.ok())
      return Errno(EINVAL, absl::StrCat("invalid layout: ", s.message()));
  }
  if (req.stripe_count && *req.stripe_count < -1) {
    return Errno(
        EINVAL, absl::StrCat("invalid layout: stripe count ", *req.stripe_count,
                             " (must be -1 for all OSTs, 0 for the "
                             "default, or a positive number)"));
  }
  if (req.stripe_offset && *req.stripe_offset < -1) {
    return Errno(EINVAL,
                 absl::StrCat("invalid layout: OST index ", *req.stripe_offset,
                              " (must be -1 for any OST, or an OST index)"));
  }
  return absl::OkStatus();
}

std::string LayoutSetText(const LayoutSetting& req) {
  std::vector<std::string> parts;
  if (req.stripe_size)
    parts.push_back(absl::StrCat("stripe_size=", *req.stripe_size));
  if (req.stripe_count) {
    parts.push_back(absl::StrCat("stripe_count=", *req.stripe_count));
  }
  if (req.stripe_offset) {
    parts.push_back(absl::StrCat("stripe_offset=", *req.stripe_offset));
  }
  return absl::StrJoin(parts, " ");
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
      absl::StatusOr<uint64_t> n = ParseSize(val);
      if (!n.ok() || *n == 0 || *n % kStripeAlign != 0 ||
          *n > std::numeric_limits<uint32_t>::max()) {
        return Errno(EINVAL,
                     absl::StrCat("stripe_size must be a non-zero multiple of "
                                  "65536 below 4 GiB, got '",
                                  val, "'"));
      }
      s.stripe_size = *n;
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
                    " avail=", o.avail, " objects=", o.objects);
    if (!o.state.empty()) absl::StrAppend(&out, " state=", o.state);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

absl::StatusOr<std::vector<DfTarget>> ParseDf(absl::string_view text) {
  std::vector<DfTarget> out;
  for (absl::string_view line :
       absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    while (!line.empty() && line.back() == '\0') line.remove_suffix(1);
    if (line.empty()) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    DfTarget t;
    t.target = std::string(fields[0]);
    t.is_mdt = absl::StartsWith(fields[0], "mdt");
    if (!t.is_mdt && !absl::StartsWith(fields[0], "ost")) {
      return Bad("target", line);
    }
    for (size_t i = 1; i < fields.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
      uint64_t* dst = nullptr;
      if (kv.first == "state") {
        t.state = std::string(kv.second);
        continue;
      }
      if (kv.first == "files")
        dst = &t.files;
      else if (kv.first == "ffree")
        dst = &t.ffree;
      else if (kv.first == "total")
        dst = &t.total;
      else if (kv.first == "free")
        dst = &t.free;
      else if (kv.first == "avail")
        dst = &t.avail;
      else if (kv.first == "objects")
        dst = &t.objects;
      if (dst == nullptr) continue;  // unknown key: newer server
      if (!absl::SimpleAtoi(kv.second, dst)) return Bad(kv.first, line);
    }
    out.push_back(std::move(t));
  }
  if (out.empty()) return Errno(EINVAL, "empty df report");
  return out;
}

int CountOsts(const std::vector<DfTarget>& targets) {
  int n = 0;
  for (const auto& t : targets) n += t.is_mdt ? 0 : 1;
  return n;
}

}  // namespace stripefs
