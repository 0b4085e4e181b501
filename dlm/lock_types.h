// Lock vocabulary shared by the DLM server core and the client library:
// modes with the classic VMS/Lustre compatibility matrix, lock types (PLAIN,
// IBITS, EXTENT), resource ids and the conflict rules between two locks.
// No gRPC types. Pure values and functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace stripefs::dlm {

// Values match rpc::LockMode.
enum class LockMode : int { kNL = 0, kCR = 1, kCW = 2, kPR = 3, kPW = 4, kEX = 5 };
inline constexpr int kNumModes = 6;

// Values match rpc::LockType.
enum class LockType : int { kPlain = 0, kIbits = 1, kExtent = 2 };

// IBITS bits (values match rpc::LockBit).
inline constexpr uint64_t kBitLookup = 1;
inline constexpr uint64_t kBitUpdate = 2;
inline constexpr uint64_t kBitOpen = 4;
inline constexpr uint64_t kBitLayout = 8;
inline constexpr uint64_t kBitPerm = 16;
inline constexpr uint64_t kBitXattr = 32;
inline constexpr uint64_t kAllBits = 63;

// Largest extent end ("to end of file").
inline constexpr uint64_t kExtentEof = ~uint64_t{0};

const char* ModeName(LockMode m);
const char* TypeName(LockType t);
bool ValidMode(int m);
bool ValidType(int t);

// True when two locks in these modes may be granted at once (VMS matrix).
bool ModesCompatible(LockMode a, LockMode b);

// True when a lock held in `held` gives every right that `want` asks for,
// so a cached `held` lock can serve a `want` request.
bool ModeCovers(LockMode held, LockMode want);

struct ResourceId {
  std::string name;
  LockType type = LockType::kPlain;

  bool operator==(const ResourceId&) const = default;
  // One string naming the resource (type + name), for maps and logs.
  std::string Key() const;
};

// What a lock covers and how: mode plus the type-specific policy data.
struct LockSpec {
  ResourceId resource;
  LockMode mode = LockMode::kNL;
  uint64_t bits = 0;   // IBITS
  uint64_t start = 0;  // EXTENT
  uint64_t end = 0;    // EXTENT, inclusive
};

// True when locks `a` and `b` (same resource) cannot both be granted in
// modes `mode_a`, `mode_b`: modes conflict AND (PLAIN; IBITS with an
// overlapping bit; EXTENT with overlapping ranges).
bool Conflicts(const LockSpec& a, LockMode mode_a, const LockSpec& b,
               LockMode mode_b);
inline bool Conflicts(const LockSpec& a, const LockSpec& b) {
  return Conflicts(a, a.mode, b, b.mode);
}

// True when a granted lock `held` can serve request `want` (same resource,
// covering mode, bits superset, range superset).
bool Covers(const LockSpec& held, const LockSpec& want);

// A lock as the DLM reports it (server core and client library).
struct LockInfo {
  uint64_t handle = 0;
  uint64_t client_id = 0;
  LockSpec spec;  // spec.mode: granted mode (requested mode while waiting)
  bool granted = false;
  // Own-change exemption (EnqueueRequest.exempt_client): the locks of this
  // client did not conflict with this one. 0: none.
  uint64_t exempt_client = 0;
};

// A holder's answer to a glimpse (e.g. the file size it knows).
struct GlimpseValue {
  uint64_t handle = 0;
  uint64_t client_id = 0;
  uint64_t value = 0;
};

// "PR ino:42 bits=0x3" style text for logs.
std::string Describe(const LockSpec& spec);

}  // namespace stripefs::dlm
