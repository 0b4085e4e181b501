// Fault points: named places in server code where a test makes things go
// wrong on purpose (crash recovery, seed 002). Off unless configured; an
// unconfigured point costs one atomic load.
//
// Spec (a server reads it from $STRIPEFS_FAULTS at start, with the seed from
// $STRIPEFS_FAULT_SEED, default 1; both are logged so a run replays):
//   NAME=ACTION[@PROBABILITY][*COUNT][,NAME=ACTION...]
// ACTION: `error` (the point fails with EIO), `crash` (the process ends at
// once with _exit(kCrashExit): no flush, no clean-up, as kill -9 would),
// `drop` (the point fails with absl Unavailable "fault point NAME: reply
// dropped", which reaches the client as gRPC UNAVAILABLE like a cut
// connection, so the client resends with the same xid), or `delay:MS` (the
// point sleeps MS milliseconds). PROBABILITY in (0, 1]
// (default 1): each pass fires with it, drawn from the seeded generator.
// COUNT (default 1, at most 1000000): how many times the point fires at
// most, so every fault loop is bounded.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace stripefs::fault {

inline constexpr int kCrashExit = 99;

// Replaces the configuration (an empty spec turns every point off).
// EINVAL with a message naming the bad part; nothing changes then.
[[nodiscard]] absl::Status Configure(const std::string& spec, uint64_t seed);
// Configure() from $STRIPEFS_FAULTS / $STRIPEFS_FAULT_SEED; OK when unset.
[[nodiscard]] absl::Status ConfigureFromEnv();

// At the fault point `name`: fires its rule if configured (crash does not
// return; delay sleeps, then OK), returns EIO for `error` and Unavailable
// for `drop`.
[[nodiscard]] absl::Status Hit(const char* name);

// How many times `name` fired since the last Configure.
uint64_t Fired(const std::string& name);

}  // namespace stripefs::fault
