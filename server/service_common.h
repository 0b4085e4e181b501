// ServiceCommon: what every server's gRPC service (MDS, OSS, DLM) does the
// same way, kept once: the Connect handshake (answer, log line, the
// connection log for Status), the common Status fields (target, release,
// protocol range, pid, running/stopping, instance, per-method counts, role,
// connections), the forced-failover gate, and Finish: the one exit of a
// handler that answers UNAVAILABLE once a forced failover began, passes the
// role's before-reply fault point and logs a failure at a level by its
// errno. A service owns one and adds only its role's methods and Status
// info.
//
//   ServiceCommon common({.role = "oss", .target = "ost0", .instance = i,
//                         .methods = {"Connect", "Status", "Write"}});
//   grpc::Status Write(...) {
//     common.Count(kWrite);
//     return common.Finish(kWrite, store->Write(...), {client, xid});
//   }
//
// Thread-safe.
#pragma once

#include <functional>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "rpc/connection_log.h"
#include "rpc/proto/common.pb.h"
#include "server/failover_gate.h"

namespace stripefs::server {

struct ServiceOptions {
  std::string role;       // "mds", "oss", "dlm": Status info["role"]
  std::string target;     // "mdt0", "ost1", "dlm"
  uint64_t instance = 0;  // changes with every server process start
  // Method names, indexed by the service's own method enum.
  std::vector<const char*> methods;
  // Methods this release serves: the first `served` of `methods` (the ones
  // after it exist only in a later protocol). 0: all.
  size_t served = 0;
};

// Who made a call, for the log line of a failure.
struct CallId {
  uint64_t client = 0;
  uint64_t xid = 0;
  std::string detail;  // e.g. "oid=7"; may be empty
  // Fault point hit on a successful answer before it is sent
  // (common/fault_points.h, e.g. "mds.before_reply"); null: none.
  const char* before_reply_fault = nullptr;
};

class ServiceCommon {
 public:
  explicit ServiceCommon(ServiceOptions options);

  const std::string& target() const { return options_.target; }
  uint64_t instance() const { return options_.instance; }

  // Status reports "stopping" from now on.
  void SetStopping() { stopping_.store(true); }
  bool stopping() const { return stopping_.load(); }
  // Forced failover (seed 002): from now on every answer, also one of a
  // request executing now, is UNAVAILABLE "failing over". Call before the
  // backend turns read-only.
  void BeginForcedFailover() { failover_.Begin(); }
  bool failing() const { return failover_.failing(); }

  void Count(int method) {
    counts_[method].fetch_add(1, std::memory_order_relaxed);
  }

  // The Connect handshake (rpc/handshake.h). `accept`, when given, is the
  // role's own part (e.g. the DLM's session); the connection is logged and
  // noted only when both agree. A refusal is logged.
  absl::StatusOr<rpc::ConnectReply> Connect(
      const rpc::ConnectRequest& req,
      const std::function<absl::Status(const rpc::ConnectReply&)>& accept =
          nullptr);
  // Fills the fields every server's Status has; the caller adds its info.
  void FillStatus(rpc::StatusReply* reply) const;

  // The answer of a handler: UNAVAILABLE during a forced failover (an
  // error is logged as expected); else the fault point before a
  // successful reply; a failure logged (UNAVAILABLE: warn, the client
  // resends; EIO, EROFS and errors without an errno: error; other errnos
  // are answers: debug) and converted with rpc::ToGrpc. Does not count.
  grpc::Status Finish(int method, absl::Status status,
                      const CallId& call = {});

 private:
  const ServiceOptions options_;
  std::atomic<bool> stopping_{false};
  FailoverGate failover_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  // Clients answered by Connect and their protocol (Status "connections").
  rpc::ConnectionLog connections_;
};

// The thread settings of a sync gRPC server (one thread per call in
// flight): completion queues, pollers, and the most threads it may use.
struct SyncThreads {
  const char* name;  // of the resource quota
  int num_cqs = 0;   // 0: gRPC's default
  int min_pollers = 2;
  int max_pollers = 8;
  int max_threads = 256;
};
void SetSyncThreads(grpc::ServerBuilder& builder, const SyncThreads& t);

// Builds and starts a gRPC server on `listen` (HOST:PORT; port 0 picks a
// free one, reported in *bound_port when non-null) with the shared limits
// (rpc::ConfigureServer), no port sharing, and what `add` puts on the
// builder (services, thread settings). EADDRINUSE when it cannot listen.
absl::StatusOr<std::unique_ptr<grpc::Server>> BuildServer(
    const std::string& listen,
    const std::function<void(grpc::ServerBuilder&)>& add,
    int* bound_port = nullptr);

}  // namespace stripefs::server
