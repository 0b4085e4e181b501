// Protocol-2 wire helpers shared by the servers and the client: which wire
// format a connection uses, the data checksum of OssV2.Write2, and the
// translation between the protocol-1 open request (Mds.Open, flat fields)
// and the protocol-2 one (MdsV2.Open2, an OpenIntent). The MDS serves Open2
// by translating it into the Open code path, so both formats behave alike.
// Release N (STRIPEFS_PROTO_MAX == 1) has none of the protocol-2 messages;
// only DataCrc32 and UsesV2 exist there. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/version.h"
#include "rpc/proto/mds.pb.h"
#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/proto/mds_v2.pb.h"
#include "rpc/proto/oss_v2.pb.h"
#endif

namespace stripefs::rpc {

// crc32 (zlib polynomial) of data[0, len).
uint32_t DataCrc32(const char* data, size_t len);

// True when a connection that negotiated `proto` sends the protocol-2
// messages (MdsV2.Open2, OssV2.Write2). Always false in release N.
constexpr bool UsesV2(uint32_t proto) {
  return STRIPEFS_PROTO_MAX >= 2 && proto >= 2;
}

#if STRIPEFS_PROTO_MAX >= 2
// Client side: the protocol-2 form of an open request.
Open2Request ToOpen2(const OpenRequest& req, uint64_t client_cookie);
// Server side: the protocol-1 request an Open2 means. EINVAL for an intent
// without an access mode or with access bits left in its flags.
absl::StatusOr<OpenRequest> FromOpen2(const Open2Request& req);
// Server side: the Open2 reply for an Open reply to `req`.
Open2Reply ToOpen2Reply(OpenReply reply, const Open2Request& req);
// Client side: back to the reply type the rest of the client uses.
OpenReply FromOpen2Reply(Open2Reply reply);
// Server side: OK when req.data_crc matches the data; otherwise EIO naming
// both checksums (the data was damaged on the way).
absl::Status VerifyWriteCrc(const Write2Request& req);
#endif

}  // namespace stripefs::rpc
