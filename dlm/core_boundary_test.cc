// stripefs_dlm_core on its own: this binary links only the core library
// (LockManager, lock records and types; no stripefs_proto, no gRPC), and
// the generated headers are not on its include path.
#include "common/fake_clock.h"
#include "dlm/lock_manager.h"
#include "gtest/gtest.h"
#include "storage/kv.h"

#if __has_include("rpc/proto/dlm.pb.h")
#error "the generated protobuf headers must not be reachable from the DLM core"
#endif

namespace stripefs::dlm {
namespace {

TEST(DlmCoreBoundaryTest, GrantsALockWithoutTheWire) {
  auto kv = storage::NewMemKv();
  FakeClock clock{absl::FromUnixSeconds(1'700'000'000)};
  auto m = LockManager::Open(kv.get(), &clock,
                             {.callback_timeout = absl::Seconds(10),
                              .recovery_window = absl::Seconds(15)});
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE((*m)->Connect(1, "client1").ok());
  ASSERT_TRUE((*m)->OpenSession(1).ok());
  LockSpec spec;
  spec.resource = {"ino:7", LockType::kIbits};
  spec.mode = LockMode::kEX;
  spec.bits = kBitLookup;
  auto l = (*m)->Enqueue(1, 1, spec);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_TRUE(l->granted);
}

}  // namespace
}  // namespace stripefs::dlm
