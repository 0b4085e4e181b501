#include "mds/ost_allocator.h"

#include <algorithm>
#include <cmath>

namespace stripefs::mds {

OstAllocator::OstAllocator(AllocatorOptions options)
    : options_(options),
      rng_(options.seed != 0 ? options.seed : std::random_device{}()) {}

bool OstAllocator::Full(const AllocCandidate& t) {
  if (!t.space_known) return false;
  const double reserve = std::max<double>(
      double(t.total_bytes) * kReserveFraction, double(kReserveFloor));
  return double(t.avail_bytes) < reserve;
}

bool OstAllocator::Balanced(const std::vector<AllocCandidate>& targets) const {
  uint64_t max = 0;
  uint64_t min = UINT64_MAX;
  size_t usable = 0;
  for (const auto& t : targets) {
    if (!t.active || Full(t)) continue;
    if (!t.space_known) return true;
    ++usable;
    max = std::max(max, t.avail_bytes);
    min = std::min(min, t.avail_bytes);
  }
  if (usable < 2 || max == 0) return true;
  return double(max - min) / double(max) < options_.threshold_rr;
}

std::vector<size_t> OstAllocator::Order(
    const std::vector<AllocCandidate>& targets) {
  const size_t n = targets.size();
  if (n == 0) return {};
  const size_t start = cursor_++ % n;
  std::vector<size_t> usable;
  std::vector<size_t> full;
  for (size_t i = 0; i < n; ++i) {
    const size_t pos = (start + i) % n;
    const AllocCandidate& t = targets[pos];
    if (!t.active) continue;
    (Full(t) ? full : usable).push_back(pos);
  }
  std::vector<size_t> order;
  if (Balanced(targets)) {
    shares_.clear();
    order = std::move(usable);
  } else {
    order = WeightedOrder(targets, usable);
  }
  order.insert(order.end(), full.begin(), full.end());
  return order;
}

std::vector<size_t> OstAllocator::WeightedOrder(
    const std::vector<AllocCandidate>& targets,
    const std::vector<size_t>& usable) {
  double sum = 0;
  for (size_t pos : usable) sum += double(targets[pos].avail_bytes);
  shares_.clear();
  std::vector<double> weight;
  for (size_t pos : usable) {
    const AllocCandidate& t = targets[pos];
    shares_[t.index] = double(t.avail_bytes) / sum;
    weight.push_back(double(t.avail_bytes) * std::exp2(-penalty(t.index)));
  }
  // Weighted draws without replacement.
  std::vector<size_t> left = usable;
  std::vector<size_t> order;
  while (!left.empty()) {
    double total = 0;
    for (double w : weight) total += w;
    size_t pick = left.size() - 1;
    if (total > 0) {
      double r = std::uniform_real_distribution<double>(0, total)(rng_);
      for (size_t k = 0; k < left.size(); ++k) {
        if (r < weight[k]) {
          pick = k;
          break;
        }
        r -= weight[k];
      }
    }
    order.push_back(left[pick]);
    left.erase(left.begin() + long(pick));
    weight.erase(weight.begin() + long(pick));
  }
  return order;
}

void OstAllocator::Used(uint32_t index) {
  if (shares_.empty()) return;  // round-robin
  penalty_[index] += 1;
  for (const auto& [j, share] : shares_) penalty_[j] -= share;
  for (auto& [j, p] : penalty_) p = std::clamp(p, -kMaxPenalty, kMaxPenalty);
}

void OstAllocator::ResetPenalty(uint32_t index) { penalty_.erase(index); }

double OstAllocator::penalty(uint32_t index) const {
  auto it = penalty_.find(index);
  return it == penalty_.end() ? 0 : it->second;
}

}  // namespace stripefs::mds
