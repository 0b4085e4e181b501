// MdsCore: the OSTs' free space that object allocation weighs
// (OstAllocator, mds/ost_allocator.h). A background thread refreshes it
// with a statfs of each OST, outside mu_; AllocateObjects reads the kept
// numbers under mu_ and never calls an OSS.
#include <algorithm>
#include <thread>

#include "mds/mds_core.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {
// A statfs of an OSS that is away gives up this soon (the last numbers
// stay), so a stop never waits long for the refresh.
constexpr absl::Duration kSpaceStatfsWait = absl::Seconds(1);
}  // namespace

void MdsCore::RefreshOstSpace() {
  const auto& targets = osts_->Targets();
  std::vector<bool> ask(targets.size(), true);
  {
    absl::MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    for (size_t i = 0; i < targets.size(); ++i) {
      ask[i] = now >= ost_state_[targets[i].index].space_retry_after;
    }
  }
  std::vector<absl::StatusOr<OstStatfs>> got(
      targets.size(), absl::UnavailableError("not asked"));
  // In parallel: an OSS that is away (a statfs resends for up to 10 s)
  // must not hold up the others.
  std::vector<std::thread> calls;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!ask[i]) continue;
    calls.emplace_back(
        [this, &got, &targets, i] { got[i] = osts_->Statfs(targets[i].index, kSpaceStatfsWait); });
  }
  for (auto& t : calls) t.join();

  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<AllocCandidate> candidates;
  for (size_t i = 0; i < targets.size(); ++i) {
    OstState& st = ost_state_[targets[i].index];
    if (got[i].ok()) {
      if (!st.space_known || st.avail_bytes != got[i]->avail_bytes ||
          st.total_bytes != got[i]->total_bytes) {
        spdlog::debug("ost{} space for allocation: {} of {} bytes free",
                      targets[i].index, got[i]->avail_bytes,
                      got[i]->total_bytes);
      }
      st.space_known = true;
      st.avail_bytes = got[i]->avail_bytes;
      st.total_bytes = got[i]->total_bytes;
      st.space_failures = 0;
      st.space_retry_after = absl::InfinitePast();
    } else if (ask[i]) {
      // An OSS that is away is asked again after 5 s, doubling up to 80 s
      // (each call may last 10 s, and a stopping MDS waits for it).
      spdlog::debug("statfs of ost{} for allocation: {}", targets[i].index,
                    got[i].status().ToString());
      st.space_retry_after =
          now + absl::Seconds(5) * (1 << std::min<uint32_t>(st.space_failures, 4));
      ++st.space_failures;
    }
    candidates.push_back({targets[i].index, targets[i].active, st.space_known,
                          st.avail_bytes, st.total_bytes});
  }
  const bool balanced = allocator_.Balanced(candidates);
  if (balanced != balanced_) {
    balanced_ = balanced;
    spdlog::info("object allocation: {} (qos_threshold_rr {}%)",
                 balanced ? "round-robin, the OSTs' free space is balanced"
                          : "weighted by free space, the OSTs' free space is "
                            "unbalanced",
                 allocator_.options().threshold_rr * 100);
  }
}

void MdsCore::SpaceLoop() {
  while (true) {
    RefreshOstSpace();
    absl::MutexLock l(&bg_mu_);
    bg_mu_.AwaitWithTimeout(
        absl::Condition(
            +[](MdsCore* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->bg_mu_) {
              return c->stop_ || c->space_kicked_;
            },
            this),
        options_.statfs_interval);
    if (stop_) return;
    space_kicked_ = false;
  }
}

}  // namespace stripefs::mds
