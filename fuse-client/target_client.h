// The mount's clients of its servers (docs/internals.md "Crash recovery:
// the mount"). The connection machinery (handshake, xids, deadlines,
// resend with the same xid, reconnect, the RequestGate, recovery once per
// new server instance) is the conn library's (conn/target_client.h), shared
// with the MDS's calls to the OSTs; the mount's OSTs are conn::OstClients.
// What is the mount's own is MdsClient: its keepalive Ping, the MDS lease
// and eviction (StatusReply.evicted). The conn names are brought into this
// namespace for the rest of the client.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "conn/target_client.h"
#include "fuse-client/request_gate.h"
#include "grpcpp/grpcpp.h"
#include "rpc/proto/mds.grpc.pb.h"

namespace stripefs::client {

using conn::CurrentStub;
using conn::OstClient;
using conn::TargetClient;
using conn::TargetOptions;

class MdsClient : public TargetClient {
 public:
  MdsClient(std::string address, TargetOptions options);
  std::shared_ptr<rpc::Mds::Stub> stub() const {
    absl::MutexLock l(&stub_mu_);
    return stub_;
  }

  template <typename Req, typename Reply, typename Format>
  absl::Status Call(grpc::Status (rpc::Mds::Stub::*fn)(grpc::ClientContext*,
                                                       const Req&, Reply*),
                    const char* method, const InterruptFn& intr,
                    Format&& format, Reply* reply) {
    CurrentStub<MdsClient, rpc::Mds::Stub, Req, Reply> current{this, fn};
    return TargetClient::Call(&current, &decltype(current)::Send, method,
                              intr, std::forward<Format>(format), reply);
  }

  // One keepalive round trip (fuse-client/keepalive.h): Status carrying
  // this mount's client id (renews its MDS lease), with the call deadline,
  // no gate and no resend. Returns the instance of the server that
  // answered. When the answer reports an eviction of this mount not acted
  // on yet (StatusReply.evicted, a new id or another instance), runs the
  // evicted handler before returning, and acknowledges the eviction with
  // the following Pings (StatusRequest.evicted_ack).
  absl::StatusOr<uint64_t> Ping();
  // Sets the function run when the MDS reports that it evicted this mount
  // (Fs::Evicted), with StatusReply.evicted_below_handle: the open files
  // whose handle is below it are lost (0: the MDS did not say; all are).
  // Call before the keepalive starts.
  void SetEvictedHandler(std::function<void(uint64_t below_handle)> fn);
  // True when this mount cannot vouch for its MDS lease: the MDS reported a
  // lease (StatusReply.client_lease_ms) and no Ping succeeded for half of
  // it (the mount was stopped or cut off). Before an action an evicted
  // mount must not take (data to an OSS: write, fsync, cutting data) the
  // caller calls ConfirmLease (Fs::CheckLease).
  bool LeaseInDoubt() const;
  // Pings until the MDS answers, resending like any request (reconnecting
  // before each resend, within TargetOptions::retry_window; EINTR when
  // `intr` fires): a mount resumed after a long stop finds its connection
  // cut, an MDS restarting takes a while. An answer from another instance
  // than the connected one: Reconnect and Recover (the reopen marks the
  // handles the new instance refuses broken). OK once the MDS answered (an
  // eviction it reported has been handled) and the state lives on the
  // instance that answered; the error otherwise.
  absl::Status ConfirmLease(const InterruptFn& intr);

 protected:
  grpc::Status DoConnect(grpc::ClientContext* ctx,
                         const rpc::ConnectRequest& req,
                         rpc::ConnectReply* reply) override;
  void NewStub(std::shared_ptr<grpc::Channel> channel) override;

 private:
  std::shared_ptr<rpc::Mds::Stub> stub_ ABSL_GUARDED_BY(stub_mu_);
  std::function<void(uint64_t)> on_evicted_;  // set once, before use
  mutable absl::Mutex lease_mu_;
  // The last eviction acted on (StatusReply.evicted) and the instance that
  // reported it: acknowledged by every Ping (an acknowledgement naming
  // another instance is ignored by the MDS).
  uint64_t evicted_seen_ ABSL_GUARDED_BY(lease_mu_) = 0;
  uint64_t evicted_seen_on_ ABSL_GUARDED_BY(lease_mu_) = 0;
  absl::Duration lease_ ABSL_GUARDED_BY(lease_mu_);  // zero: none reported
  absl::Time last_ping_ok_ ABSL_GUARDED_BY(lease_mu_);
};

}  // namespace stripefs::client
