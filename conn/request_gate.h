// RequestGate: the point every request to one target passes before its
// protobuf request is formatted. Normally open; controlled failover closes it
// so new requests wait (without having been formatted for the old server
// version) while in-flight ones finish, then reopens it after reconnecting.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stripefs::conn {

// Returns true when the caller's syscall was interrupted by a signal; a
// blocked wait then gives up with EINTR. An empty function never interrupts.
using InterruptFn = std::function<bool()>;

class RequestGate {
 public:
  // poll: how often a blocked waiter checks its interrupt function.
  explicit RequestGate(absl::Duration poll = absl::Milliseconds(50))
      : poll_(poll) {}
  RequestGate(const RequestGate&) = delete;
  RequestGate& operator=(const RequestGate&) = delete;

  // Admits one request; waits while the gate is closed. EINTR when
  // `interrupted` fires before the gate opens. On success the caller must
  // call Exit() once after the reply.
  absl::Status Enter(const InterruptFn& interrupted = {});
  void Exit();

  // New Enter() calls wait from now on; requests already admitted go on.
  void Close();
  // Waits until no admitted request is in flight. EINTR on interrupt.
  absl::Status WaitIdle(const InterruptFn& interrupted = {});
  // Lets waiting and new requests through.
  void Reopen();

  bool closed() const;
  int64_t in_flight() const;

 private:
  const absl::Duration poll_;
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// While one is alive on a thread, every RequestGate admits that thread's
// requests even when closed (still counted in flight): the failover's own
// requests (reconnect, reopen of open files) run with the gate closed.
class GateBypass {
 public:
  GateBypass();
  ~GateBypass();
  GateBypass(const GateBypass&) = delete;
  GateBypass& operator=(const GateBypass&) = delete;
  static bool Active();
};

// Enter() on construction (check ok()), Exit() on destruction if admitted.
class GatePass {
 public:
  GatePass(RequestGate& gate, const InterruptFn& interrupted)
      : gate_(gate), status_(gate.Enter(interrupted)) {}
  ~GatePass() {
    if (status_.ok()) gate_.Exit();
  }
  GatePass(const GatePass&) = delete;
  GatePass& operator=(const GatePass&) = delete;
  const absl::Status& status() const { return status_; }

 private:
  RequestGate& gate_;
  absl::Status status_;
};

}  // namespace stripefs::conn
