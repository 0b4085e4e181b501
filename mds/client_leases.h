// ClientLeases: when the MDS last heard from each client that negotiated
// rpc::kFeatureLease, and the eviction of those silent for longer than the
// lease (MdsOptions::client_lease, --client-lease).
//
// A mount killed with -9 never releases its open handles; without a lease
// they (and the unlinked-while-open inodes only they keep, with their OSS
// objects) would stay until the MDS restarts. A live N+1 mount is heard at
// least every 5 s (its keepalive: Status with its client_id), so a client
// silent for the whole lease is taken for dead: its open handles are
// dropped (MdsCore::EvictClient) and one line is logged. A client heard
// from again after its eviction just carries on (new opens work, and it is
// tracked again; the old handles answer EBADF). An eviction that dropped
// handles is reported to its keepalive (StatusReply.evicted and
// evicted_below_handle, from HeardStatus) until it acknowledges it
// (StatusRequest.evicted_ack), also across its reconnects (Connect keeps
// the unacknowledged eviction), so it can fail the open files it lost at
// once, and only those; one that dropped nothing is not reported (the
// client lost nothing). Clients that did not negotiate the feature
// (release N mounts, which send no keepalive) are never tracked, hence
// never evicted this way. Leases live in memory only: after an MDS restart
// the clients' Connect tracks them again, and the handles kept from the
// previous instance are governed by the reopen window, not by the lease.
//
// Thread-safe. Time comes from the injected Clock; the check runs every
// `check_every` (real time) on a thread of its own between Start() and
// Stop(), or by hand through CheckOnce() in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "mds/mds_core.h"

namespace stripefs::mds {

class ClientLeases {
 public:
  // Evicted clients are remembered this long after they were last heard,
  // so that one coming back is tracked again without a Connect.
  static constexpr absl::Duration kForgetAfter = absl::Hours(24);
  // Drops the state of one evicted client (MdsCore::EvictClient).
  using EvictFn = std::function<absl::StatusOr<EvictResult>(uint64_t)>;

  // clock must outlive this. A lease of zero or less turns eviction off
  // (nothing is tracked).
  ClientLeases(Clock* clock, absl::Duration lease, EvictFn evict,
               absl::Duration check_every = absl::Seconds(1));
  ~ClientLeases();
  ClientLeases(const ClientLeases&) = delete;
  ClientLeases& operator=(const ClientLeases&) = delete;

  // A Connect answered for `client_id` with the negotiated `features`: a
  // client that negotiated kFeatureLease is tracked from now on (heard
  // now); one that did not is forgotten (e.g. the same id reconnecting
  // from an older build). Id 0 is never tracked.
  void Connected(uint64_t client_id, const std::string& kind,
                 const std::string& name, uint64_t features);
  // The client was heard from (Status with its client_id, a request with
  // its ReqHeader). No effect on an untracked id.
  void Heard(uint64_t client_id);
  // A Status naming `client_id` (a mount's keepalive) that acknowledges
  // the eviction `evicted_ack` (0: none): Heard, then tells whether the
  // client is tracked (it holds a lease: StatusReply.client_lease_ms) and
  // the id of an eviction of it that dropped handles, not acknowledged yet
  // (StatusReply.evicted, 0: none), with EvictResult::below_handle of it
  // (the latest such eviction's: every earlier one's handles are below).
  // Ids are unique within this object, never 0.
  struct StatusAnswer {
    bool tracked = false;
    uint64_t evicted = 0;
    uint64_t evicted_below_handle = 0;
  };
  StatusAnswer HeardStatus(uint64_t client_id, uint64_t evicted_ack);
  // The lease (zero or less: off).
  absl::Duration lease() const { return lease_; }

  // Evicts every tracked client silent for at least the lease and not yet
  // evicted since it was last heard; logs one line per eviction; one that
  // dropped handles is reported (HeardStatus) until acknowledged. A failed
  // eviction (storage error) is logged and retried at the next check.
  // Forgets evicted clients silent for kForgetAfter (a client coming back
  // after that is tracked again at its next Connect). Returns how many
  // clients it evicted.
  size_t CheckOnce();

  // Counts every tracked client not evicted as heard now. The background
  // check calls it when it ran late by more than half a lease (the MDS
  // itself was stalled or stopped, e.g. SIGSTOP): the clients' silence was
  // then ours, not theirs.
  void RenewAll();

  // Tracked clients (evicted ones included until heard again or dropped).
  size_t TrackedCount();
  // True if `client_id` is tracked and currently evicted.
  bool IsEvicted(uint64_t client_id);

  // Runs CheckOnce every check_every on a background thread. Stop() ends
  // it and evicts no one any more, even by CheckOnce (idempotent; the
  // destructor calls it). A stopping MDS calls it as soon as it is told to
  // stop: its clients may be held (their requests wait at a closed gate
  // during a controlled failover) and what it evicts would be lost to the
  // next instance.
  void Start();
  void Stop();

 private:
  struct Entry {
    std::string kind;
    std::string name;
    absl::Time last_heard;
    bool evicted = false;
    // The last eviction not yet acknowledged by the client (0: none); kept
    // when it is heard from or connects again.
    uint64_t unacked_eviction = 0;
    uint64_t unacked_below_handle = 0;  // its EvictResult::below_handle
  };
  void Loop();

  Clock* const clock_;
  const absl::Duration lease_;
  const EvictFn evict_;
  const absl::Duration check_every_;

  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> clients_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t last_eviction_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace stripefs::mds
