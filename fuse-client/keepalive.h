// Keepalive: a thread of the mount that calls mdt0 `Status` at start and
// then every period (default 5 s) with this mount's client id
// (StatusRequest.client_id). It
//  - renews the mount's MDS lease (the MDS evicts a lease-holding client it
//    has not heard from; see docs/internals.md "Client lease");
//  - notices a new MDS instance while the mount is idle (the MDS was killed
//    and restarted, no request of ours failed): it reconnects (handshake
//    with the new instance) and runs TargetClient::Recover, which
//    re-establishes the open files well inside the MDS's reopen window;
//  - learns that the MDS evicted this mount (StatusReply.evicted; Ping runs
//    the evicted handler, Fs::Evicted, which fails the open files the
//    eviction dropped at once)
//    and acknowledges it with the next round.
// Failures are logged at debug and never surfaced. While the MDS gate is
// closed (a controlled failover is in progress and its watch reconnects and
// recovers) a round only Pings: the lease is renewed while the mount's
// requests are held. Thread-safe.
#pragma once

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fuse-client/target_client.h"

namespace stripefs::client {

class Keepalive {
 public:
  static constexpr absl::Duration kDefaultPeriod = absl::Seconds(5);

  // Starts the thread; mds must outlive Stop().
  Keepalive(MdsClient* mds, absl::Duration period = kDefaultPeriod);
  ~Keepalive();
  Keepalive(const Keepalive&) = delete;
  Keepalive& operator=(const Keepalive&) = delete;

  // Ends the thread (at most one round in progress is waited for).
  // Idempotent.
  void Stop();

  // One round, also for tests: Status; on a new instance, Reconnect and
  // Recover (not while the gate is closed). OK also when the gate is
  // closed (whatever the Ping gave); the error otherwise.
  static absl::Status Round(MdsClient& mds);

 private:
  void Run();

  MdsClient* const mds_;
  const absl::Duration period_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace stripefs::client
