#include "common/size.h"

#include <cctype>
#include <cerrno>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/errors.h"

namespace stripefs {

absl::StatusOr<uint64_t> ParseSize(absl::string_view text) {
  const std::string original(text);
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return Errno(EINVAL, "empty size");
  uint64_t value = 0;
  size_t i = 0;
  for (; i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]));
       ++i) {
    const uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return Errno(EINVAL, absl::StrCat("size too large: '", original, "'"));
    }
    value = value * 10 + digit;
  }
  if (i == 0) {
    return Errno(EINVAL,
                 absl::StrCat("invalid size '", original,
                              "' (expected e.g. 1048576, 64K, 1M, 1G)"));
  }
  std::string suffix = absl::AsciiStrToUpper(s.substr(i));
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      case 'B':
        shift = -1;
        break;
      default:
        shift = -2;
        break;
    }
    if (shift == -1) {
      // A bare "B" means bytes.
      if (suffix != "B")
        shift = -2;
      else
        shift = 0;
    } else if (shift > 0) {
      const std::string rest = suffix.substr(1);
      if (!rest.empty() && rest != "B" && rest != "IB") shift = -2;
    }
  }
  if (shift < 0) {
    return Errno(EINVAL, absl::StrCat("invalid size '", original,
                                      "' (suffix must be K, M, G or T)"));
  }
  if (shift > 0 && value > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Errno(EINVAL, absl::StrCat("size too large: '", original, "'"));
  }
  return value << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"", "K", "M", "G", "T", "P", "E"};
  int unit = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && unit < 6) {
    v /= 1024.0;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes);
  if (v >= 100.0 || v == static_cast<double>(static_cast<uint64_t>(v))) {
    return absl::StrFormat("%.0f%s", v, kUnits[unit]);
  }
  return absl::StrFormat("%.1f%s", v, kUnits[unit]);
}

absl::Status ValidateStripeSize(uint64_t bytes) {
  if (bytes == 0) return Errno(EINVAL, "stripe size must be greater than 0");
  if (bytes % kStripeAlign != 0) {
    return Errno(EINVAL, absl::StrCat("stripe size ", bytes,
                                      " is not a multiple of 64K (65536)"));
  }
  return absl::OkStatus();
}

}  // namespace stripefs
