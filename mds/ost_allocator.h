// OstAllocator: the order in which a new file's objects are taken from the
// OSTs (the policy only; MdsCore::AllocateObjects takes the objects from
// the precreated pools in this order). Modelled on Lustre's QoS allocator:
//  - Targets that are inactive are never offered. A target whose free
//    space (avail) is below its reserve (kReserveFraction of its total,
//    at least kReserveFloor) is full: offered only after every other one,
//    as a last resort.
//  - Balanced: when the spread of avail over the usable targets,
//    (max - min) / max, is below threshold_rr (Lustre's qos_threshold_rr,
//    default 17%), or the space of a usable target is not known yet, the
//    order is round-robin: the targets from a cursor that moves one target
//    per file.
//  - Unbalanced: a weighted random order. Target i's weight is
//    avail_i * 2^-penalty_i, drawn without replacement. The penalty counts
//    allocations against the target's share s_i = avail_i / sum(avail):
//    an object allocated on i adds 1 to penalty_i, and every object
//    allocated takes s_j from each penalty_j. So a target just used is
//    half as likely to be picked next (consecutive allocations spread),
//    and over many files each target gets its share s_i of the objects
//    (a target above its share has a positive penalty until it is back).
//    Penalties stay within +-kMaxPenalty; ResetPenalty clears one (a
//    target (re)entering service).
// Not thread-safe: the caller serializes (MdsCore under its mu_).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace stripefs::mds {

struct AllocCandidate {
  uint32_t index = 0;
  bool active = true;
  bool space_known = false;  // avail/total below are from a statfs
  uint64_t avail_bytes = 0;
  uint64_t total_bytes = 0;
};

struct AllocatorOptions {
  // Spread of free space below which allocation is round-robin (0.17:
  // 17%). 0: always weighted; 1: always round-robin.
  double threshold_rr = 0.17;
  // Seed of the random source (0: from std::random_device).
  uint64_t seed = 0;
};

class OstAllocator {
 public:
  static constexpr double kReserveFraction = 0.001;
  static constexpr uint64_t kReserveFloor = uint64_t{1} << 20;  // 1 MiB
  static constexpr double kMaxPenalty = 8;

  explicit OstAllocator(AllocatorOptions options = {});

  // Positions into `targets` in the order to try them for one file: the
  // usable targets (round-robin or weighted, see above), then the full
  // ones (round-robin); inactive ones are left out. Moves the cursor.
  std::vector<size_t> Order(const std::vector<AllocCandidate>& targets);
  // An object of the file was allocated on target `index` (after Order).
  void Used(uint32_t index);
  // Clears the penalty of target `index`.
  void ResetPenalty(uint32_t index);

  // True when the targets' space makes Order round-robin.
  bool Balanced(const std::vector<AllocCandidate>& targets) const;
  static bool Full(const AllocCandidate& t);
  double penalty(uint32_t index) const;
  const AllocatorOptions& options() const { return options_; }

 private:
  std::vector<size_t> WeightedOrder(const std::vector<AllocCandidate>& targets,
                                    const std::vector<size_t>& usable);

  const AllocatorOptions options_;
  std::mt19937_64 rng_;
  uint64_t cursor_ = 0;
  std::map<uint32_t, double> penalty_;
  // Shares of the last weighted Order (empty after a round-robin one):
  // what Used charges against.
  std::map<uint32_t, double> shares_;
};

}  // namespace stripefs::mds
