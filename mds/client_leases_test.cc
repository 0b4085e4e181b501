// Unit tests of the client lease (ClientLeases + MdsCore::EvictClient) on
// the in-memory store with fake OSTs and a fake clock.
#include "mds/client_leases.h"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "mds/core_test_util.h"
#include "mds/mds_service.h"
#include "rpc/handshake.h"

namespace stripefs::mds {
namespace {

constexpr uint64_t kA = 7;  // the client that dies
constexpr uint64_t kB = 8;  // the one that lives on
constexpr uint64_t kLeaseFeatures =
    rpc::kFeatureWriteCrc | rpc::kFeatureReopen | rpc::kFeatureLease;

class ClientLeasesTest : public CoreTestBase {
 protected:
  ClientLeasesTest() : CoreTestBase(2) {}

  void SetUp() override {
    CoreTestBase::SetUp();
    NewLeases();
  }
  // A restart of the MDS: a new core and new leases over the same store.
  void StartCore(MdsOptions opts) {
    leases_.reset();
    Restart(opts);
    NewLeases();
  }
  void NewLeases() {
    leases_ = std::make_unique<ClientLeases>(
        &clock_, absl::Seconds(60),
        [this](uint64_t id) { return core_->EvictClient(id); });
  }

  ReqId Req(uint64_t client) { return {client, ++xid_}; }

  // Creates `name` opened read-write by `client`.
  OpenResult MustCreate(uint64_t client, const std::string& name) {
    auto r = core_->Create(Req(client), kRoot, kRootIno, name, 0644,
                           O_CREAT | O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : OpenResult{};
  }
  OpenResult MustOpen(uint64_t client, uint64_t ino) {
    auto r = core_->Open(Req(client), kRoot, ino, O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : OpenResult{};
  }
  // True while the objects of `f` exist on their OSTs (after the destroy
  // queue was drained).
  bool ObjectsExist(const OpenResult& f) {
    EXPECT_TRUE(core_->DrainDestroyQueue().ok());
    for (const auto& o : f.inode.layout.objects) {
      if (!osts_->Exists(o.ost, o.oid)) return false;
    }
    return !f.inode.layout.objects.empty();
  }

  std::unique_ptr<ClientLeases> leases_;
};

// Client A dies holding a shared file, its own file and a file it unlinked
// while open; B keeps pinging. Nothing happens before the lease; after it,
// A's handles are gone (EBADF), its orphan is reclaimed with its objects,
// and B's handles and files are untouched.
TEST_F(ClientLeasesTest, EvictsAfterTheLeaseNotBeforeAndSparesOthers) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  leases_->Connected(kB, "client", "hostB:2", kLeaseFeatures);
  OpenResult shared = MustCreate(kA, "shared");
  OpenResult b_shared = MustOpen(kB, shared.inode.ino);
  OpenResult own = MustCreate(kA, "own");
  OpenResult gone = MustCreate(kA, "gone");
  ASSERT_TRUE(core_->Remove(Req(kA), kRoot, kRootIno, "gone", false).ok());
  OpenResult b_file = MustCreate(kB, "b");
  const uint64_t inodes = core_->InodeCount();
  ASSERT_EQ(core_->OpenHandleCount(), 5u);

  for (int i = 0; i < 59; ++i) {
    clock_.Advance(absl::Seconds(1));
    if (i % 5 == 0) leases_->Heard(kB);
    ASSERT_EQ(leases_->CheckOnce(), 0u) << "second " << i + 1;
  }
  EXPECT_EQ(core_->OpenHandleCount(), 5u);
  EXPECT_TRUE(core_->GetAttr(gone.inode.ino).ok());

  clock_.Advance(absl::Seconds(1));  // 60 s without a word from A
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_TRUE(leases_->IsEvicted(kA));
  EXPECT_FALSE(leases_->IsEvicted(kB));
  EXPECT_EQ(core_->OpenHandleCount(), 2u);
  EXPECT_EQ(Err(core_->GetAttr(gone.inode.ino)), ENOENT);
  EXPECT_EQ(core_->InodeCount(), inodes - 1);
  EXPECT_FALSE(ObjectsExist(gone));
  EXPECT_TRUE(ObjectsExist(own));
  EXPECT_TRUE(ObjectsExist(shared));
  // A's old handles answer EBADF; B's work.
  EXPECT_EQ(Err(core_->Release(Req(kA), own.handle)), EBADF);
  EXPECT_EQ(Err(core_->Release(Req(kA), shared.handle)), EBADF);
  EXPECT_TRUE(core_->Release(Req(kB), b_shared.handle).ok());
  EXPECT_TRUE(core_->Release(Req(kB), b_file.handle).ok());
  // Evicted once: no second eviction while it stays silent.
  clock_.Advance(absl::Seconds(120));
  leases_->Heard(kB);
  EXPECT_EQ(leases_->CheckOnce(), 0u);
}

TEST_F(ClientLeasesTest, PingingKeepsTheLease) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  OpenResult f = MustCreate(kA, "f");
  ASSERT_TRUE(core_->Remove(Req(kA), kRoot, kRootIno, "f", false).ok());
  for (int i = 0; i < 60; ++i) {  // ten minutes of keepalives every 10 s
    clock_.Advance(absl::Seconds(10));
    leases_->Heard(kA);
    ASSERT_EQ(leases_->CheckOnce(), 0u);
  }
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  EXPECT_TRUE(ObjectsExist(f));
  // Silence: evicted.
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  EXPECT_FALSE(ObjectsExist(f));
}

// An unlinked-while-open inode another client also keeps open stays until
// that client's last release.
TEST_F(ClientLeasesTest, OrphanKeptByAnotherClientStays) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  leases_->Connected(kB, "client", "hostB:2", kLeaseFeatures);
  OpenResult a = MustCreate(kA, "f");
  OpenResult b = MustOpen(kB, a.inode.ino);
  ASSERT_TRUE(core_->Remove(Req(kA), kRoot, kRootIno, "f", false).ok());
  clock_.Advance(absl::Seconds(30));
  leases_->Heard(kB);
  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  EXPECT_TRUE(core_->GetAttr(a.inode.ino).ok());
  EXPECT_TRUE(ObjectsExist(a));
  ASSERT_TRUE(core_->Release(Req(kB), b.handle).ok());
  EXPECT_EQ(Err(core_->GetAttr(a.inode.ino)), ENOENT);
  EXPECT_FALSE(ObjectsExist(a));
}

// A release N client (no kFeatureLease) sends no keepalive: never evicted.
TEST_F(ClientLeasesTest, ClientWithoutTheFeatureIsNeverEvicted) {
  leases_->Connected(kA, "client", "old:1", rpc::kReleaseN.features);
  OpenResult f = MustCreate(kA, "f");
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(leases_->CheckOnce(), 0u);
  EXPECT_EQ(leases_->TrackedCount(), 0u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  EXPECT_TRUE(core_->Release(Req(kA), f.handle).ok());
  // Nor is a client id 0 or one never seen at Connect.
  leases_->Connected(0, "client", "zero", kLeaseFeatures);
  leases_->Heard(kB);
  EXPECT_EQ(leases_->TrackedCount(), 0u);
}

// Heard from again after its eviction, a client carries on with new opens;
// dying again gets it evicted again.
TEST_F(ClientLeasesTest, ClientHeardAgainAfterEvictionCarriesOn) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  OpenResult old = MustCreate(kA, "f");
  clock_.Advance(absl::Seconds(61));
  ASSERT_EQ(leases_->CheckOnce(), 1u);
  leases_->Heard(kA);
  EXPECT_FALSE(leases_->IsEvicted(kA));
  EXPECT_EQ(Err(core_->Release(Req(kA), old.handle)), EBADF);
  OpenResult fresh = MustOpen(kA, old.inode.ino);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(leases_->CheckOnce(), 0u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(Err(core_->Release(Req(kA), fresh.handle)), EBADF);
}

// Handles kept from the previous instance that still wait for a reopen are
// the reopen window's: the lease takes only what the client re-established.
TEST_F(ClientLeasesTest, KeptHandlesPendingReopenAreLeftToTheWindow) {
  OpenResult f = MustCreate(kA, "f");
  OpenResult g = MustCreate(kA, "g");
  StartCore({.keep_open_handles = true});
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  ASSERT_TRUE(core_->Reopen(Req(kA), f.handle, f.inode.ino).ok());
  ASSERT_EQ(core_->PendingReopenCount(), 1u);
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(core_->PendingReopenCount(), 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  EXPECT_EQ(Err(core_->Release(Req(kA), f.handle)), EBADF);
  auto expired = core_->ExpireReopenWindow();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  EXPECT_EQ(Err(core_->Release(Req(kA), g.handle)), EBADF);
}

TEST_F(ClientLeasesTest, FailedEvictionIsRetried) {
  int calls = 0;
  ClientLeases leases(&clock_, absl::Seconds(10),
                      [&](uint64_t id) -> absl::StatusOr<EvictResult> {
                        if (++calls == 1) return Errno(EIO, "store is down");
                        return core_->EvictClient(id);
                      });
  leases.Connected(kA, "client", "hostA:1", kLeaseFeatures);
  MustCreate(kA, "f");
  clock_.Advance(absl::Seconds(11));
  EXPECT_EQ(leases.CheckOnce(), 0u);
  EXPECT_FALSE(leases.IsEvicted(kA));
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  EXPECT_EQ(leases.CheckOnce(), 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
  EXPECT_EQ(calls, 2);
}

TEST_F(ClientLeasesTest, ZeroLeaseTurnsEvictionOff) {
  ClientLeases leases(&clock_, absl::ZeroDuration(),
                      [&](uint64_t id) { return core_->EvictClient(id); });
  leases.Connected(kA, "client", "hostA:1", kLeaseFeatures);
  MustCreate(kA, "f");
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(leases.CheckOnce(), 0u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
}

// The background thread evicts without being asked (real time, short
// lease; bounded wait).
TEST_F(ClientLeasesTest, BackgroundCheckEvicts) {
  std::atomic<int> evicted{0};
  ClientLeases leases(RealClock(), absl::Milliseconds(50),
                      [&](uint64_t id) {
                        auto r = core_->EvictClient(id);
                        evicted.fetch_add(1);
                        return r;
                      },
                      absl::Milliseconds(10));
  leases.Connected(kA, "client", "hostA:1", kLeaseFeatures);
  MustCreate(kA, "f");
  leases.Start();
  for (int i = 0; i < 500 && evicted.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  leases.Stop();
  EXPECT_EQ(evicted.load(), 1);
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
}

// After a stall of the MDS itself every lease starts again; evicted
// clients stay evicted.
TEST_F(ClientLeasesTest, RenewAllForgivesTheSilenceOfAStall) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  leases_->Connected(kB, "client", "hostB:2", kLeaseFeatures);
  MustCreate(kA, "f");
  clock_.Advance(absl::Seconds(40));
  leases_->Heard(kB);
  clock_.Advance(absl::Seconds(30));
  ASSERT_EQ(leases_->CheckOnce(), 1u);  // A
  clock_.Advance(absl::Seconds(40));
  leases_->RenewAll();
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(leases_->CheckOnce(), 0u);
  EXPECT_TRUE(leases_->IsEvicted(kA));
  EXPECT_FALSE(leases_->IsEvicted(kB));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(leases_->CheckOnce(), 1u);  // B, silent for a lease after all
}

// The service renews leases: Connect with the feature tracks a client,
// Status with its client_id and a request with its ReqHeader renew it, a
// release N Connect (no feature) is not tracked.
TEST_F(ClientLeasesTest, ServiceConnectStatusAndRequestsRenewTheLease) {
  MdsService service(core_.get(), "mdt0", 1);
  service.set_leases(leases_.get());
  rpc::ConnectReply creply;
  const rpc::ConnectRequest new_client =
      rpc::MakeConnectRequest(kA, "client", "hostA:1", rpc::kReleaseN1);
  ASSERT_TRUE(service.Connect(nullptr, &new_client, &creply).ok());
  EXPECT_NE(creply.features() & rpc::kFeatureLease, 0u);
  const rpc::ConnectRequest old_client =
      rpc::MakeConnectRequest(kB, "client", "old:2", rpc::kReleaseN);
  ASSERT_TRUE(service.Connect(nullptr, &old_client, &creply).ok());
  EXPECT_EQ(leases_->TrackedCount(), 1u);
  OpenResult f = MustCreate(kA, "f");
  // 50 s: a keepalive.
  clock_.Advance(absl::Seconds(50));
  rpc::StatusRequest sreq;
  sreq.set_client_id(kA);
  rpc::StatusReply sreply;
  ASSERT_TRUE(service.Status(nullptr, &sreq, &sreply).ok());
  // 50 s more: a request with its header (an anonymous Status does not
  // count).
  clock_.Advance(absl::Seconds(50));
  ASSERT_TRUE(service.Status(nullptr, &rpc::StatusRequest::default_instance(),
                             &sreply)
                  .ok());
  rpc::UpdateSizeRequest ureq;
  ureq.mutable_hdr()->set_client_id(kA);
  ureq.mutable_hdr()->set_xid(++xid_);
  ureq.set_ino(f.inode.ino);
  ureq.set_size(10);
  rpc::Entry entry;
  ASSERT_TRUE(service.UpdateSize(nullptr, &ureq, &entry).ok());
  clock_.Advance(absl::Seconds(50));
  EXPECT_EQ(leases_->CheckOnce(), 0u);
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
  // Then silence, while an anonymous Status comes and goes: evicted.
  clock_.Advance(absl::Seconds(11));
  ASSERT_TRUE(service.Status(nullptr, &rpc::StatusRequest::default_instance(),
                             &sreply)
                  .ok());
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(core_->OpenHandleCount(), 0u);
}

// An evicted client learns it from every Status naming it (also after a
// request of its own or a Connect un-marked it), until it acknowledges that
// eviction; it is tracked again, and a second eviction has a new id that a
// stale acknowledgement does not clear.
TEST_F(ClientLeasesTest, StatusTellsAnEvictedClientUntilItAcknowledges) {
  MdsService service(core_.get(), "mdt0", 1);
  service.set_leases(leases_.get());
  rpc::ConnectReply creply;
  const rpc::ConnectRequest connect_a =
      rpc::MakeConnectRequest(kA, "client", "hostA:1", rpc::kReleaseN1);
  const rpc::ConnectRequest connect_b =
      rpc::MakeConnectRequest(kB, "client", "hostB:2", rpc::kReleaseN1);
  ASSERT_TRUE(service.Connect(nullptr, &connect_a, &creply).ok());
  ASSERT_TRUE(service.Connect(nullptr, &connect_b, &creply).ok());
  // The service is instance 1: acknowledgements name it.
  auto status = [&](uint64_t client, uint64_t ack, uint64_t instance = 1) {
    rpc::StatusRequest req;
    req.set_client_id(client);
    req.set_evicted_ack(ack);
    req.set_evicted_ack_instance(instance);
    rpc::StatusReply reply;
    EXPECT_TRUE(service.Status(nullptr, &req, &reply).ok());
    return reply;
  };
  rpc::StatusReply r = status(kA, 0);
  EXPECT_EQ(r.evicted(), 0u);
  EXPECT_EQ(r.client_lease_ms(), 60000u);
  OpenResult old = MustCreate(kA, "f");

  clock_.Advance(absl::Seconds(40));
  EXPECT_EQ(status(kB, 0).evicted(), 0u);
  clock_.Advance(absl::Seconds(21));
  ASSERT_EQ(leases_->CheckOnce(), 1u);  // A only
  // A request of A's own comes first (its lease runs again) ...
  rpc::UpdateSizeRequest ureq;
  ureq.mutable_hdr()->set_client_id(kA);
  ureq.mutable_hdr()->set_xid(++xid_);
  ureq.set_ino(old.inode.ino);
  ureq.set_size(10);
  rpc::Entry entry;
  ASSERT_TRUE(service.UpdateSize(nullptr, &ureq, &entry).ok());
  EXPECT_FALSE(leases_->IsEvicted(kA));
  // ... its keepalive still learns of the eviction, also after a Connect.
  const uint64_t first = status(kA, 0).evicted();
  EXPECT_NE(first, 0u);
  ASSERT_TRUE(service.Connect(nullptr, &connect_a, &creply).ok());
  EXPECT_EQ(status(kA, 0).evicted(), first);
  EXPECT_EQ(status(kA, first + 1).evicted(), first);  // not that one
  EXPECT_EQ(status(kA, first, 2).evicted(), first);   // another instance's
  EXPECT_EQ(status(kB, 0).evicted(), 0u);
  // Acknowledged: no more.
  EXPECT_EQ(status(kA, first).evicted(), 0u);
  EXPECT_EQ(status(kA, first).evicted(), 0u);
  EXPECT_EQ(status(kA, 0).evicted(), 0u);

  // Tracked again: new opens work, and silence evicts it again.
  OpenResult fresh = MustOpen(kA, old.inode.ino);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(leases_->CheckOnce(), 0u);
  status(kB, 0);
  clock_.Advance(absl::Seconds(31));
  ASSERT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(Err(core_->Release(Req(kA), fresh.handle)), EBADF);
  const uint64_t second = status(kA, first).evicted();
  EXPECT_NE(second, 0u);
  EXPECT_NE(second, first);
  EXPECT_EQ(status(kA, second).evicted(), 0u);
  // An anonymous Status is told nothing, nor is a client without the
  // lease feature (release N) given a lease.
  EXPECT_EQ(status(0, 0).evicted(), 0u);
  EXPECT_EQ(status(0, 0).client_lease_ms(), 0u);
  const rpc::ConnectRequest old_client =
      rpc::MakeConnectRequest(kB, "client", "old:2", rpc::kReleaseN);
  ASSERT_TRUE(service.Connect(nullptr, &old_client, &creply).ok());
  EXPECT_EQ(status(kB, 0).client_lease_ms(), 0u);
}

// Without leases the MDS reports neither an eviction nor a lease.
TEST_F(ClientLeasesTest, StatusWithoutLeasesReportsNoLease) {
  MdsService service(core_.get(), "mdt0", 1);
  rpc::StatusRequest req;
  req.set_client_id(kA);
  rpc::StatusReply reply;
  ASSERT_TRUE(service.Status(nullptr, &req, &reply).ok());
  EXPECT_EQ(reply.evicted(), 0u);
  EXPECT_EQ(reply.client_lease_ms(), 0u);
}

// Only an eviction that dropped handles is reported, with
// the bound that tells the dropped handles from the ones opened after it.
TEST_F(ClientLeasesTest, StatusReportsOnlyEvictionsThatDroppedHandles) {
  MdsService service(core_.get(), "mdt0", 1);
  service.set_leases(leases_.get());
  rpc::ConnectReply creply;
  const rpc::ConnectRequest connect_a =
      rpc::MakeConnectRequest(kA, "client", "hostA:1", rpc::kReleaseN1);
  ASSERT_TRUE(service.Connect(nullptr, &connect_a, &creply).ok());
  auto status = [&](uint64_t ack) {
    rpc::StatusRequest req;
    req.set_client_id(kA);
    req.set_evicted_ack(ack);
    req.set_evicted_ack_instance(1);
    rpc::StatusReply reply;
    EXPECT_TRUE(service.Status(nullptr, &req, &reply).ok());
    return reply;
  };
  // Silent while holding nothing: evicted, but it lost nothing.
  clock_.Advance(absl::Seconds(61));
  ASSERT_EQ(leases_->CheckOnce(), 1u);
  rpc::StatusReply r = status(0);
  EXPECT_EQ(r.evicted(), 0u);
  EXPECT_EQ(r.evicted_below_handle(), 0u);
  // Silent holding two files: both go, and the bound is above both.
  OpenResult f = MustCreate(kA, "f");
  OpenResult g = MustCreate(kA, "g");
  clock_.Advance(absl::Seconds(61));
  ASSERT_EQ(leases_->CheckOnce(), 1u);
  r = status(0);
  ASSERT_NE(r.evicted(), 0u);
  EXPECT_EQ(r.evicted_below_handle(), std::max(f.handle, g.handle) + 1);
  // A file opened after the eviction is at or above the bound, also after
  // a restart of the MDS.
  OpenResult fresh = MustOpen(kA, f.inode.ino);
  EXPECT_GE(fresh.handle, r.evicted_below_handle());
  const uint64_t bound = r.evicted_below_handle();
  EXPECT_EQ(status(r.evicted()).evicted(), 0u);  // acknowledged
  ASSERT_TRUE(core_->Release(Req(kA), fresh.handle).ok());
  // Silent again, holding nothing: nothing new to report.
  clock_.Advance(absl::Seconds(61));
  ASSERT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(status(0).evicted(), 0u);
  StartCore({.keep_open_handles = true});
  EXPECT_GE(MustOpen(kA, f.inode.ino).handle, bound);
}

// Once stopped, the leases evict no one (a stopping MDS
// holds its clients' requests; what it evicted would be lost).
TEST_F(ClientLeasesTest, StoppedLeasesEvictNoOne) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  MustCreate(kA, "f");
  leases_->Start();
  leases_->Stop();
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(leases_->CheckOnce(), 0u);
  EXPECT_FALSE(leases_->IsEvicted(kA));
  EXPECT_EQ(core_->OpenHandleCount(), 1u);
}

// An eviction that fails to write (and is retried at
// every check) leaves the inode count as it was.
TEST_F(ClientLeasesTest, FailedEvictionDoesNotMiscountInodes) {
  leases_->Connected(kA, "client", "hostA:1", kLeaseFeatures);
  OpenResult f = MustCreate(kA, "f");
  ASSERT_TRUE(core_->Remove(Req(kA), kRoot, kRootIno, "f", false).ok());
  const uint64_t inodes = core_->InodeCount();
  store_->SetReadOnly(true);
  clock_.Advance(absl::Seconds(61));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(leases_->CheckOnce(), 0u);
  EXPECT_EQ(core_->InodeCount(), inodes);
  store_->SetReadOnly(false);
  EXPECT_EQ(leases_->CheckOnce(), 1u);
  EXPECT_EQ(core_->InodeCount(), inodes - 1);
  EXPECT_FALSE(ObjectsExist(f));
}

}  // namespace
}  // namespace stripefs::mds
