// Requests whose wire format depends on the protocol negotiated with the
// target (docs/internals.md "Versions"): the MDS open (Mds.Open in protocol
// 1, MdsV2.Open2 in protocol 2) and the OST write (Oss.Write in protocol 1,
// OssV2.Write2 with a crc32 of the data in protocol 2). The format is chosen
// after the request passed the target's RequestGate, from the protocol the
// client negotiated last, so a request held during a failover is formatted
// only for the server it then goes to. Release N builds always use
// protocol 1. Thread-safe (as TargetClient).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "fuse-client/request_gate.h"
#include "fuse-client/target_client.h"
#include "rpc/proto/mds.pb.h"
#include "rpc/proto/oss.pb.h"

namespace stripefs::client {

struct OpenArgs {
  uint64_t ino = 0;
  uint32_t flags = 0;          // open(2) flags, access mode included
  uint64_t reopen_handle = 0;  // failover: re-establish this handle
  uint64_t cookie = 0;         // protocol 2: echoed by the server
  // Fills the caller's credentials (called once, after the gate).
  std::function<void(rpc::Cred*)> fill_cred;
};

// Open (or reopen) in the negotiated protocol. The reply is in the
// protocol-1 form whatever went over the wire.
absl::Status OpenInProtocol(MdsClient& mds, const OpenArgs& args,
                            const InterruptFn& intr, rpc::OpenReply* reply);

struct WriteArgs {
  uint64_t oid = 0;
  uint64_t offset = 0;
  const char* data = nullptr;
  size_t len = 0;
  bool sync = false;
  // When set, holds data[0, len) and is moved into the request (no copy).
  std::string* owned = nullptr;
};

// Write in the negotiated protocol (with protocol 2 the OSS checks a crc32
// of the data: EIO if it was damaged on the way).
absl::Status WriteInProtocol(OstClient& ost, const WriteArgs& args,
                             const InterruptFn& intr, rpc::WriteReply* reply);

// Makes every change the MDS acknowledged so far durable (MdsV2.Sync).
// An MDS that speaks only protocol 1 (release N) has no such call: OK
// without a request (its commits are as durable as that release made them).
absl::Status SyncMdsInProtocol(MdsClient& mds, const InterruptFn& intr);

}  // namespace stripefs::client
