#include "mds/client_leases.h"

#include <utility>
#include <vector>

#include "rpc/handshake.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {

ClientLeases::ClientLeases(Clock* clock, absl::Duration lease, EvictFn evict,
                           absl::Duration check_every)
    : clock_(clock),
      lease_(lease),
      evict_(std::move(evict)),
      check_every_(check_every) {}

ClientLeases::~ClientLeases() { Stop(); }

void ClientLeases::Connected(uint64_t client_id, const std::string& kind,
                             const std::string& name, uint64_t features) {
  if (client_id == 0 || lease_ <= absl::ZeroDuration()) return;
  absl::MutexLock l(&mu_);
  if ((features & rpc::kFeatureLease) == 0) {
    clients_.erase(client_id);
    return;
  }
  Entry& e = clients_[client_id];
  e.kind = kind;
  e.name = name;
  e.last_heard = clock_->Now();
  if (e.evicted) {
    spdlog::info("client {} ({}) connects again after its eviction", client_id,
                 name);
  }
  e.evicted = false;
}

void ClientLeases::Heard(uint64_t client_id) {
  if (client_id == 0) return;
  absl::MutexLock l(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return;
  it->second.last_heard = clock_->Now();
  if (it->second.evicted) {
    spdlog::info("client {} ({}) heard from again after its eviction",
                 client_id, it->second.name);
    it->second.evicted = false;
  }
}

ClientLeases::StatusAnswer ClientLeases::HeardStatus(uint64_t client_id,
                                                     uint64_t evicted_ack) {
  Heard(client_id);
  if (client_id == 0) return {};
  absl::MutexLock l(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return {};
  Entry& e = it->second;
  if (evicted_ack != 0 && evicted_ack == e.unacked_eviction) {
    spdlog::info("client {} ({}) acknowledged its eviction", client_id,
                 e.name);
    e.unacked_eviction = 0;
    e.unacked_below_handle = 0;
  }
  return {.tracked = true,
          .evicted = e.unacked_eviction,
          .evicted_below_handle = e.unacked_below_handle};
}

size_t ClientLeases::CheckOnce() {
  struct Due {
    uint64_t id;
    Entry entry;
  };
  std::vector<Due> due;
  {
    absl::MutexLock l(&mu_);
    if (stop_) return 0;
    const absl::Time now = clock_->Now();
    for (auto it = clients_.begin(); it != clients_.end();) {
      Entry& e = it->second;
      const absl::Duration silent = now - e.last_heard;
      if (e.evicted && silent >= kForgetAfter) {
        clients_.erase(it++);
        continue;
      }
      if (!e.evicted && silent >= lease_) {
        // Marked before the eviction runs (without mu_). A request of the
        // client arriving meanwhile un-marks it: it carries on like any
        // client heard from after its eviction (its handles still go).
        e.evicted = true;
        due.push_back({it->first, e});
      }
      ++it;
    }
  }
  size_t evicted = 0;
  const absl::Time now = clock_->Now();
  for (const Due& d : due) {
    absl::StatusOr<EvictResult> r = evict_(d.id);
    const std::string silent = absl::FormatDuration(
        absl::Trunc(now - d.entry.last_heard, absl::Milliseconds(1)));
    if (!r.ok()) {
      spdlog::error(
          "evicting client {} ({}), silent for {}: {}; retrying at the next "
          "check",
          d.id, d.entry.name, silent, r.status().ToString());
      absl::MutexLock l(&mu_);
      auto it = clients_.find(d.id);
      // Unless heard from meanwhile, it is due again next time.
      if (it != clients_.end() && it->second.last_heard == d.entry.last_heard) {
        it->second.evicted = false;
      }
      continue;
    }
    ++evicted;
    if (r->handles > 0) {
      // Reported to the client's keepalive until it acknowledges it. One
      // that dropped nothing is not: every file the client holds is valid
      // (e.g. it opened them again after an earlier eviction).
      absl::MutexLock l(&mu_);
      auto it = clients_.find(d.id);
      if (it != clients_.end()) {
        it->second.unacked_eviction = ++last_eviction_id_;
        it->second.unacked_below_handle = r->below_handle;
      }
    }
    // A CLI that negotiated the lease and went away holds nothing: not worth
    // an info line.
    const bool notable = r->handles > 0 || d.entry.kind == "client";
    spdlog::log(notable ? spdlog::level::warn : spdlog::level::debug,
                "evicted client {} ({} {}): not heard from for {} (lease {}); "
                "dropped {} open handles, reclaimed {} unlinked-while-open "
                "inodes",
                d.id, d.entry.kind, d.entry.name, silent,
                absl::FormatDuration(lease_), r->handles, r->reclaimed);
  }
  return evicted;
}

void ClientLeases::RenewAll() {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  for (auto& [id, e] : clients_) {
    if (!e.evicted) e.last_heard = now;
  }
}

size_t ClientLeases::TrackedCount() {
  absl::MutexLock l(&mu_);
  return clients_.size();
}

bool ClientLeases::IsEvicted(uint64_t client_id) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(client_id);
  return it != clients_.end() && it->second.evicted;
}

void ClientLeases::Start() {
  if (lease_ <= absl::ZeroDuration()) return;
  absl::MutexLock l(&mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void ClientLeases::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ClientLeases::Loop() {
  absl::Time last = clock_->Now();
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), check_every_);
      if (stop_) return;
    }
    const absl::Time now = clock_->Now();
    const absl::Duration late = now - last - check_every_;
    last = now;
    if (late > lease_ / 2) {
      spdlog::warn(
          "client lease check ran {} late (this MDS was stalled or stopped): "
          "renewing every client's lease",
          absl::FormatDuration(absl::Trunc(late, absl::Milliseconds(1))));
      RenewAll();
      continue;
    }
    CheckOnce();
  }
}

}  // namespace stripefs::mds
