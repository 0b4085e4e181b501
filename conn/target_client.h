// TargetClient: one party's connection to one server target (a mount's to
// the MDT or an OST, the MDS's to an OST). It owns the gRPC channel,
// performs the Connect handshake and remembers the negotiated protocol,
// features and server instance, assigns request ids (xids) for ReqHeader,
// puts a deadline on every call, converts results with rpc::FromGrpc and
// counts RPCs per method. A call that finds the target unreachable
// (UNAVAILABLE) is resent, same request and xid, after reconnecting (a
// fresh channel once connecting keeps failing), within a retry window.
// Every request passes the target's RequestGate before it is formatted, so
// a controlled failover (conn/active_gate.h) can hold new requests while
// in-flight ones finish.
// Crash recovery (docs/internals.md "Crash recovery: the mount"): state the
// party keeps on the server (a mount's open handles on the MDS) lives on
// one server instance; when a reconnect finds another instance, the
// recovery function (SetRecovery) re-establishes that state once per new
// instance before any request goes on. TargetClient is the one owner of
// "the state lives on instance X", for crashes and controlled failovers
// alike. A party with no state on the server sets no recovery function.
// OstClient is the TargetClient of an OSS; the mount's MDT client
// (fuse-client/target_client.h) is another subclass.
//
// Minimal use:
//   conn::OstClient ost("ost0", "127.0.0.1:7001", {.client_id = id});
//   STRIPEFS_RETURN_IF_ERROR(ost.Connect());
//   rpc::OssStatfsReply reply;
//   STRIPEFS_RETURN_IF_ERROR(ost.Call(
//       &rpc::Oss::Stub::Statfs, "Statfs", {},
//       [](rpc::OssStatfsRequest&) {}, &reply));
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "conn/request_gate.h"
#include "grpcpp/grpcpp.h"
#include "rpc/channel.h"
#include "rpc/proto/common.pb.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "rpc/status.h"

namespace stripefs::conn {

struct TargetOptions {
  uint64_t client_id = 0;   // stable id of this party's session
  std::string client_kind = "client";  // ConnectRequest.client_kind
  std::string client_name;  // host:pid, for server logs
  absl::Duration deadline = rpc::kDefaultDeadline;  // every call
  absl::Duration connect_deadline = absl::Seconds(5);
  // A call that finds the target unreachable (UNAVAILABLE) is resent, same
  // request and xid, after reconnecting, with backoff, for this long.
  absl::Duration retry_window = absl::Seconds(30);
  Clock* clock = RealClock();
};

class TargetClient {
 public:
  TargetClient(std::string name, std::string address, TargetOptions options);
  virtual ~TargetClient() = default;
  TargetClient(const TargetClient&) = delete;
  TargetClient& operator=(const TargetClient&) = delete;

  // Handshake; on success remembers the negotiated version and features.
  absl::Status Connect();
  // Connect() after a failover (dlm/active_watch.h): when connecting has been
  // failing for kFreshChannelAfter, first replaces the gRPC channel (one
  // that lost its connection can stay in TRANSIENT_FAILURE for many seconds
  // after the server is back).
  absl::Status Reconnect();
  static constexpr absl::Duration kFreshChannelAfter = absl::Seconds(2);

  const std::string& name() const { return name_; }
  const std::string& address() const { return address_; }
  RequestGate& gate() { return gate_; }
  uint32_t proto() const { return proto_.load(); }
  uint64_t features() const { return features_.load(); }
  uint64_t instance() const { return instance_.load(); }
  std::string server_release() const;
  // The channel requests go over (protocol-2 stubs are made on it per call,
  // see versioned_calls.h).
  std::shared_ptr<grpc::Channel> channel() const {
    absl::MutexLock l(&stub_mu_);
    return channel_;
  }

  uint64_t NextXid() { return next_xid_.fetch_add(1) + 1; }
  // Fills a modifying request's header with this session's id and a new xid.
  void FillHeader(rpc::ReqHeader* hdr) {
    hdr->set_client_id(options_.client_id);
    hdr->set_xid(NextXid());
  }

  std::map<std::string, uint64_t> RpcCounts() const;

  // Sets the function that re-establishes this party's state on a new
  // server instance (the mount's Fs::ReopenAll for mdt0; none for an OST:
  // object I/O and the MDS's OST calls are stateless). The state is taken to live on the instance connected now.
  // Call before requests that depend on it are sent, never while one runs.
  void SetRecovery(std::function<absl::Status(bool evicted)> fn);
  // When the connected instance() differs from the one the state lives on,
  // runs the recovery function: one thread at a time, the others wait for
  // it (EINTR when `intr` fires); then the state lives on that instance.
  // Repeats while the instance changed meanwhile. The recovery function's
  // own requests pass the closed gate and never wait on themselves (they
  // run under a GateBypass and a thread-local recovery scope). `evicted`
  // is handed to the recovery function (controlled failover after a lost
  // active lock). OK when there is nothing to do; the recovery function's
  // error otherwise (a later call tries again).
  absl::Status Recover(const InterruptFn& intr, bool evicted = false);
  // Recover for a controlled failover's resume (the target's active lock
  // granted again; `lost`: the previous one was lost, not cancelled, so
  // this party may have missed the stopping server's callback). When lost
  // and the state already moved to a new instance by a Recover without
  // `evicted` since the previous resume (a keepalive or a resending request
  // found the new instance first, with the gate open), the recovery
  // function runs once more with evicted=true on the instance the state
  // lives on: the eviction's consequences (files with unsynced writes are
  // lost) must not depend on which path found the instance first. The
  // recovery function must tolerate that (re-establishing a handle the
  // instance already has is harmless).
  absl::Status ResumeRecover(const InterruptFn& intr, bool lost);
  // The instance the state lives on (0: none yet).
  uint64_t state_instance() const { return state_on_.load(); }
  // True when a request must call Recover before it is sent.
  bool NeedsRecovery() const {
    return has_recovery_.load() && instance_.load() != state_on_.load() &&
           !InRecovery();
  }
  // True on a thread running a recovery function.
  static bool InRecovery();

  // The request path: gate -> format(req) -> deadline -> stub call ->
  // FromGrpc -> count. `format` runs only once the gate admitted the call.
  // `deadline`: of each send (zero: TargetOptions::deadline).
  template <typename Stub, typename Req, typename Reply, typename Format>
  absl::Status Call(Stub* stub,
                    grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&,
                                             Reply*),
                    const char* method, const InterruptFn& intr,
                    Format&& format, Reply* reply,
                    absl::Duration deadline = absl::ZeroDuration()) {
    GatePass pass(gate_, intr);
    if (!pass.status().ok()) return pass.status();
    Req req;
    format(req);
    RetryState retry(this);
    for (;;) {
      // A new server instance (found by a reconnect below, by another
      // request or by a keepalive): this party's state is re-established
      // there before the request (or its resend) goes on.
      if (NeedsRecovery()) {
        if (absl::Status s = Recover(intr); !s.ok()) return s;
      }
      grpc::ClientContext ctx;
      rpc::SetDeadline(ctx, deadline > absl::ZeroDuration()
                                ? deadline
                                : options_.deadline);
      grpc::Status gs = (stub->*fn)(&ctx, req, reply);
      Count(method);
      absl::Status st = rpc::FromGrpc(gs);
      // UNAVAILABLE: unreachable, or a call cut by the transport
      // (rpc::FromGrpc): resent with the same xid.
      if (!absl::IsUnavailable(st)) return st;
      if (absl::Status s = retry.Wait(gs, method, intr); !s.ok()) return s;
    }
  }

 protected:
  // Backoff between resends of one call (50 ms doubling up to
  // kMaxResendBackoff, so a resend reaches a restarted server within that
  // long of it serving); reconnects (Reconnect: a new channel once
  // connecting has failed for kFreshChannelAfter) before each resend.
  static constexpr absl::Duration kMaxResendBackoff = absl::Milliseconds(250);
  class RetryState {
   public:
    explicit RetryState(TargetClient* t) : t_(t) {}
    // OK to resend; otherwise the error to return (the last one, or EINTR).
    absl::Status Wait(const grpc::Status& last, const char* method,
                      const InterruptFn& intr);

   private:
    TargetClient* t_;
    absl::Time give_up_ = absl::InfinitePast();
    absl::Duration backoff_ = absl::Milliseconds(50);
  };

  virtual grpc::Status DoConnect(grpc::ClientContext* ctx,
                                 const rpc::ConnectRequest& req,
                                 rpc::ConnectReply* reply) = 0;
  // Builds the stub over a new channel (Reconnect).
  virtual void NewStub(std::shared_ptr<grpc::Channel> channel) = 0;
  void Count(const char* method);
  const TargetOptions& options() const { return options_; }
  // Guards channel_ and the subclasses' stub (replaced by Reconnect;
  // callers keep a shared_ptr copy for the duration of a call).
  mutable absl::Mutex stub_mu_;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(stub_mu_);

 private:
  const std::string name_;
  const std::string address_;
  const TargetOptions options_;
  RequestGate gate_;
  std::atomic<uint64_t> next_xid_{0};
  std::atomic<uint32_t> proto_{0};
  std::atomic<uint64_t> features_{0};
  std::atomic<uint64_t> instance_{0};
  // Crash recovery (SetRecovery/Recover).
  std::atomic<bool> has_recovery_{false};
  std::atomic<uint64_t> state_on_{0};
  absl::Mutex recover_mu_;
  absl::CondVar recover_cv_;
  std::function<absl::Status(bool)> recover_fn_;  // set once, before use
  bool recovering_ ABSL_GUARDED_BY(recover_mu_) = false;
  // A Recover without `evicted` moved the state to a new instance since the
  // last ResumeRecover (whose `lost` then still applies to that instance).
  bool plain_since_resume_ ABSL_GUARDED_BY(recover_mu_) = false;
  absl::Status RecoverImpl(const InterruptFn& intr, bool evicted,
                           bool resume);
  mutable absl::Mutex mu_;
  std::string server_release_ ABSL_GUARDED_BY(mu_);
  // Since when Reconnect has been failing (InfiniteFuture: it is not).
  absl::Time failing_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::flat_hash_map<const char*, uint64_t> counts_ ABSL_GUARDED_BY(mu_);
};

// Sends over the client's CURRENT stub: a resend after Reconnect replaced
// the channel goes over the new one (TargetClient::Call keeps the object it
// is given for all its sends).
template <typename Client, typename Stub, typename Req, typename Reply>
struct CurrentStub {
  Client* client;
  grpc::Status (Stub::*fn)(grpc::ClientContext*, const Req&, Reply*);
  grpc::Status Send(grpc::ClientContext* ctx, const Req& req, Reply* reply) {
    std::shared_ptr<Stub> s = client->stub();
    return (s.get()->*fn)(ctx, req, reply);
  }
};

class OstClient : public TargetClient {
 public:
  OstClient(std::string name, std::string address, TargetOptions options);
  std::shared_ptr<rpc::Oss::Stub> stub() const {
    absl::MutexLock l(&stub_mu_);
    return stub_;
  }

  template <typename Req, typename Reply, typename Format>
  absl::Status Call(grpc::Status (rpc::Oss::Stub::*fn)(grpc::ClientContext*,
                                                       const Req&, Reply*),
                    const char* method, const InterruptFn& intr,
                    Format&& format, Reply* reply,
                    absl::Duration deadline = absl::ZeroDuration()) {
    CurrentStub<OstClient, rpc::Oss::Stub, Req, Reply> current{this, fn};
    return TargetClient::Call(&current, &decltype(current)::Send, method,
                              intr, std::forward<Format>(format), reply,
                              deadline);
  }

 protected:
  grpc::Status DoConnect(grpc::ClientContext* ctx,
                         const rpc::ConnectRequest& req,
                         rpc::ConnectReply* reply) override;
  void NewStub(std::shared_ptr<grpc::Channel> channel) override;

 private:
  std::shared_ptr<rpc::Oss::Stub> stub_ ABSL_GUARDED_BY(stub_mu_);
};

}  // namespace stripefs::conn
