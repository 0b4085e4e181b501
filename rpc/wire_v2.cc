#include "rpc/wire_v2.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "common/errors.h"
#include "common/version.h"
#include "rpc/crc32.h"

namespace stripefs::rpc {

uint32_t DataCrc32(const char* data, size_t len) {
  return Crc32(0, data, len);
}

#if STRIPEFS_PROTO_MAX >= 2

Open2Request ToOpen2(const OpenRequest& req, uint64_t client_cookie) {
  Open2Request out;
  *out.mutable_hdr() = req.hdr();
  *out.mutable_cred() = req.cred();
  out.set_ino(req.ino());
  OpenIntent* in = out.mutable_intent();
  switch (req.flags() & O_ACCMODE) {
    case O_RDONLY:
      in->set_access(OpenIntent::READ);
      break;
    case O_WRONLY:
      in->set_access(OpenIntent::WRITE);
      break;
    default:  // O_RDWR (and the invalid 3, which open(2) treats alike)
      in->set_access(OpenIntent::READ_WRITE);
      break;
  }
  in->set_flags(req.flags() & ~static_cast<uint32_t>(O_ACCMODE));
  in->set_reopen_handle(req.reopen_handle());
  in->set_client_cookie(client_cookie);
  return out;
}

absl::StatusOr<OpenRequest> FromOpen2(const Open2Request& req) {
  const OpenIntent& in = req.intent();
  if ((in.flags() & O_ACCMODE) != 0) {
    return Errno(EINVAL, absl::StrFormat("Open2: access bits %#o in intent "
                                         "flags %#o",
                                         in.flags() & O_ACCMODE, in.flags()));
  }
  uint32_t access = 0;
  switch (in.access()) {
    case OpenIntent::READ:
      access = O_RDONLY;
      break;
    case OpenIntent::WRITE:
      access = O_WRONLY;
      break;
    case OpenIntent::READ_WRITE:
      access = O_RDWR;
      break;
    default:
      return Errno(EINVAL, absl::StrFormat("Open2: bad access mode %d",
                                           static_cast<int>(in.access())));
  }
  OpenRequest out;
  *out.mutable_hdr() = req.hdr();
  *out.mutable_cred() = req.cred();
  out.set_ino(req.ino());
  out.set_flags(in.flags() | access);
  out.set_reopen_handle(in.reopen_handle());
  return out;
}

Open2Reply ToOpen2Reply(OpenReply reply, const Open2Request& req) {
  Open2Reply out;
  *out.mutable_entry() = std::move(*reply.mutable_entry());
  out.set_handle(reply.handle());
  out.set_truncated(reply.truncated());
  out.set_client_cookie(req.intent().client_cookie());
  out.set_reopened(req.intent().reopen_handle() != 0 &&
                   reply.handle() == req.intent().reopen_handle());
  return out;
}

OpenReply FromOpen2Reply(Open2Reply reply) {
  OpenReply out;
  *out.mutable_entry() = std::move(*reply.mutable_entry());
  out.set_handle(reply.handle());
  out.set_truncated(reply.truncated());
  return out;
}

absl::Status VerifyWriteCrc(const Write2Request& req) {
  uint32_t got = DataCrc32(req.data().data(), req.data().size());
  if (got == req.data_crc()) return absl::OkStatus();
  return Errno(EIO, absl::StrFormat(
                        "Write2 oid %d offset %d: data crc32 %08x does not "
                        "match the sender's %08x (%d bytes damaged in "
                        "transit)",
                        req.oid(), req.offset(), got, req.data_crc(),
                        req.data().size()));
}

#endif  // STRIPEFS_PROTO_MAX >= 2

}  // namespace stripefs::rpc
