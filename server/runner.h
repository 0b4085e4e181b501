// The life cycle of a stripefs server process, once for every role (MDS,
// OSS, DLM). A role supplies its store, its core and its gRPC service
// (ServerRole); RunServer owns everything else, in this order:
//   1. stop signals blocked before any thread starts (server/lifecycle.h),
//      logging, fault points;
//   2. the role opens its store; the start-up check over the server record
//      (refused: exit 3, one line naming both releases, unless --force);
//   3. the server's own DLM client (when the role has a lock service),
//      the role's core and service, the gRPC server on --listen;
//   4. serving: the DLM client connects (with reset), the role's
//      background work starts, a forced start bounces active:<target>;
//   5. one stop signal, then one of three stops:
//      - plain (SIGTERM/SIGINT): Status says "stopping", the server
//        finishes its calls, the store's last write, clean=1 recorded;
//      - controlled (SIGUSR2): the same, after taking EX on
//        active:<target> (clients drain and pause); the EX stays in the DLM
//        for the next instance to reset;
//      - forced failover (SIGUSR1, where the role allows it, seed 002):
//        every answer UNAVAILABLE, the store read-only, exit 0 without a
//        clean-stop record: the next instance recovers as after a crash.
// A main parses its flags, checks them, and calls RunServer.
//
//   class OssRole : public server::ServerRole { ... };
//   OssRole role(flags);
//   return server::RunServer({.role = "oss", .target = "ost0", ...}, role);
//
// Not thread-safe: RunServer runs on the main thread, once per process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/lifecycle.h"
#include "storage/kv.h"
#include "storage/server_record.h"

namespace stripefs::dlm {
class DlmClient;
}  // namespace stripefs::dlm

namespace stripefs::server {

struct RunnerOptions {
  std::string role;    // "mds", "oss", "dlm": the binary is stripefs-<role>
  std::string target;  // "mdt0", "ost1", "dlm"
  std::string listen;  // HOST:PORT
  std::string data;    // data directory (for the log lines)
  std::string log_level = "info";
  // HOST:PORT of the lock service; empty: none (and for the DLM itself).
  std::string dlm_address;
  bool force = false;  // start past a refusal of the start-up check
  std::vector<std::string> enable_features;  // --enable-feature
  // SIGUSR1 is a forced failover (MDS, OSS); otherwise its default action
  // (a crash).
  bool forced_failover = true;
  // How long the calls still executing may take at a stop.
  absl::Duration shutdown_grace = absl::Seconds(10);
};

// What the runner hands the role when it builds its core and service.
struct StartContext {
  const storage::StartupDecision* decision = nullptr;
  // The server's lock client (server/lifecycle.h ServerDlmOptions), not
  // connected yet; null without a lock service.
  dlm::DlmClient* dlm = nullptr;
  uint64_t instance = 0;  // unique to this process start
};

class ServerRole {
 public:
  virtual ~ServerRole() = default;

  // Opens (and creates) the store in the data directory.
  virtual absl::Status Open() = 0;
  // The store of the server record; valid from Open until destruction.
  virtual storage::KvStore& kv() = 0;
  // Builds the core and the service over the opened store. An error ends
  // the start (the runner then calls Finish and records a failed start).
  virtual absl::Status Start(const StartContext& ctx) = 0;
  // Puts the role's services (and its thread settings) on the builder.
  virtual void Register(grpc::ServerBuilder& builder) = 0;
  // The server listens and the DLM client connects: background work
  // starts (leases, watches of other targets).
  virtual void Serving(dlm::DlmClient* dlm) {}
  // A stop signal arrived (before a controlled stop's lock is taken).
  virtual void StopAsked(StopKind kind) {}
  // Forced failover: every answer turns UNAVAILABLE, then the store refuses
  // writes, then background work stops.
  virtual void BeginForcedFailover() {}
  // Status says "stopping"; the server shuts down right after.
  virtual void SetStopping() = 0;
  // The server has shut down: no call executes any more.
  virtual void StoppedServing() {}
  // The core stops and the store makes its last write durable; the runner
  // then records the stop in kv(). Also after a failed start.
  virtual absl::Status Finish() = 0;
  // Forced failover: the core stops; no final sync, nothing recorded.
  virtual void Abandon() = 0;
  // Extra "name=value" words for the start log line.
  virtual std::string Describe() const { return ""; }
};

// Runs the server until a stop signal; returns the process exit code
// (0 stopped, 1 failed, 2 bad configuration, kExitRefused).
int RunServer(const RunnerOptions& options, ServerRole& role);

}  // namespace stripefs::server
