#include "common/version.h"
#include "rpc/wire_v2.h"

#include <fcntl.h>

#include <cerrno>
#include <string>

#include "common/errors.h"
#include "gtest/gtest.h"

namespace stripefs::rpc {
namespace {

TEST(WireV2Test, DataCrc32IsZlibCrc32) {
  // The standard check value of CRC-32 (ISO-HDLC, zlib).
  const std::string s = "123456789";
  EXPECT_EQ(DataCrc32(s.data(), s.size()), 0xCBF43926u);
  EXPECT_EQ(DataCrc32("", 0), 0u);
}

TEST(WireV2Test, OnlyProtocolTwoOfReleaseNPlusOneUsesV2) {
  EXPECT_FALSE(UsesV2(1));
  EXPECT_FALSE(UsesV2(0));
  EXPECT_EQ(UsesV2(2), STRIPEFS_PROTO_MAX >= 2);
}

#if STRIPEFS_PROTO_MAX >= 2
OpenRequest V1(uint32_t flags, uint64_t reopen = 0) {
  OpenRequest r;
  r.mutable_hdr()->set_client_id(5);
  r.mutable_hdr()->set_xid(9);
  r.mutable_cred()->set_uid(1000);
  r.set_ino(42);
  r.set_flags(flags);
  r.set_reopen_handle(reopen);
  return r;
}

TEST(WireV2Test, OpenRoundTripsThroughTheIntent) {
  for (uint32_t flags : {uint32_t{O_RDONLY}, uint32_t{O_WRONLY | O_TRUNC},
                         uint32_t{O_RDWR | O_APPEND}}) {
    OpenRequest in = V1(flags, 77);
    Open2Request v2 = ToOpen2(in, 1234);
    EXPECT_EQ(v2.intent().flags() & O_ACCMODE, 0u);
    EXPECT_EQ(v2.intent().client_cookie(), 1234u);
    EXPECT_EQ(v2.intent().reopen_handle(), 77u);
    absl::StatusOr<OpenRequest> back = FromOpen2(v2);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->SerializeAsString(), in.SerializeAsString());
  }
  EXPECT_EQ(ToOpen2(V1(O_WRONLY), 0).intent().access(), OpenIntent::WRITE);
  EXPECT_EQ(ToOpen2(V1(O_RDONLY), 0).intent().access(), OpenIntent::READ);
}

TEST(WireV2Test, Open2WithoutAccessModeOrWithAccessBitsIsRefused) {
  Open2Request r = ToOpen2(V1(O_RDWR), 0);
  r.mutable_intent()->set_access(OpenIntent::ACCESS_UNSPECIFIED);
  EXPECT_EQ(ToErrno(FromOpen2(r).status()), EINVAL);
  r = ToOpen2(V1(O_RDWR), 0);
  r.mutable_intent()->set_flags(O_WRONLY);
  EXPECT_EQ(ToErrno(FromOpen2(r).status()), EINVAL);
}

TEST(WireV2Test, Open2ReplyEchoesCookieAndSaysReopened) {
  Open2Request req = ToOpen2(V1(O_RDWR, 88), 3);
  OpenReply r;
  r.set_handle(88);
  r.set_truncated(true);
  r.mutable_entry()->mutable_attr()->set_ino(42);
  Open2Reply out = ToOpen2Reply(r, req);
  EXPECT_EQ(out.client_cookie(), 3u);
  EXPECT_TRUE(out.reopened());
  EXPECT_EQ(out.handle(), 88u);
  OpenReply back = FromOpen2Reply(out);
  EXPECT_EQ(back.SerializeAsString(), r.SerializeAsString());
  // A new open is not a reopen.
  EXPECT_FALSE(ToOpen2Reply(r, ToOpen2(V1(O_RDWR), 3)).reopened());
}

TEST(WireV2Test, WriteCrcMismatchIsEio) {
  Write2Request w;
  w.set_oid(7);
  w.set_data("hello world");
  w.set_data_crc(DataCrc32(w.data().data(), w.data().size()));
  EXPECT_TRUE(VerifyWriteCrc(w).ok());
  w.mutable_data()->at(3) ^= 1;
  absl::Status s = VerifyWriteCrc(w);
  EXPECT_EQ(ToErrno(s), EIO);
  EXPECT_NE(s.message().find("crc32"), absl::string_view::npos);
}
#endif

}  // namespace
}  // namespace stripefs::rpc
