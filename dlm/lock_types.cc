#include "dlm/lock_types.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stripefs::dlm {
namespace {

// Rows/columns NL CR CW PR PW EX.
constexpr bool kCompat[kNumModes][kNumModes] = {
    {1, 1, 1, 1, 1, 1},  // NL
    {1, 1, 1, 1, 1, 0},  // CR
    {1, 1, 1, 0, 0, 0},  // CW
    {1, 1, 0, 1, 0, 0},  // PR
    {1, 1, 0, 0, 0, 0},  // PW
    {1, 0, 0, 0, 0, 0},  // EX
};

// kCovers[held][want].
constexpr bool kCovers[kNumModes][kNumModes] = {
    {1, 0, 0, 0, 0, 0},  // NL
    {1, 1, 0, 0, 0, 0},  // CR
    {1, 1, 1, 0, 0, 0},  // CW
    {1, 1, 0, 1, 0, 0},  // PR
    {1, 1, 1, 1, 1, 0},  // PW
    {1, 1, 1, 1, 1, 1},  // EX
};

}  // namespace

const char* ModeName(LockMode m) {
  static const char* const kNames[kNumModes] = {"NL", "CR", "CW",
                                                "PR", "PW", "EX"};
  int i = static_cast<int>(m);
  return ValidMode(i) ? kNames[i] : "??";
}

const char* TypeName(LockType t) {
  switch (t) {
    case LockType::kPlain:
      return "plain";
    case LockType::kIbits:
      return "ibits";
    case LockType::kExtent:
      return "extent";
  }
  return "??";
}

bool ValidMode(int m) { return m >= 0 && m < kNumModes; }
bool ValidType(int t) { return t >= 0 && t <= 2; }

bool ModesCompatible(LockMode a, LockMode b) {
  return kCompat[static_cast<int>(a)][static_cast<int>(b)];
}

bool ModeCovers(LockMode held, LockMode want) {
  return kCovers[static_cast<int>(held)][static_cast<int>(want)];
}

std::string ResourceId::Key() const {
  return absl::StrCat(static_cast<int>(type), ":", name);
}

bool Conflicts(const LockSpec& a, LockMode mode_a, const LockSpec& b,
               LockMode mode_b) {
  if (ModesCompatible(mode_a, mode_b)) return false;
  switch (a.resource.type) {
    case LockType::kPlain:
      return true;
    case LockType::kIbits:
      return (a.bits & b.bits) != 0;
    case LockType::kExtent:
      return a.start <= b.end && b.start <= a.end;
  }
  return true;
}

bool Covers(const LockSpec& held, const LockSpec& want) {
  if (!(held.resource == want.resource)) return false;
  if (!ModeCovers(held.mode, want.mode)) return false;
  switch (held.resource.type) {
    case LockType::kPlain:
      return true;
    case LockType::kIbits:
      return (held.bits & want.bits) == want.bits;
    case LockType::kExtent:
      return held.start <= want.start && want.end <= held.end;
  }
  return false;
}

std::string Describe(const LockSpec& spec) {
  std::string s = absl::StrCat(ModeName(spec.mode), " ", spec.resource.name);
  switch (spec.resource.type) {
    case LockType::kPlain:
      break;
    case LockType::kIbits:
      absl::StrAppend(&s, absl::StrFormat(" bits=0x%x", spec.bits));
      break;
    case LockType::kExtent:
      if (spec.end == kExtentEof) {
        absl::StrAppend(&s, " [", spec.start, ", EOF]");
      } else {
        absl::StrAppend(&s, " [", spec.start, ", ", spec.end, "]");
      }
      break;
  }
  return s;
}

}  // namespace stripefs::dlm
