// Component tests: a real DlmService over gRPC on 127.0.0.1 (port 0) and
// real DlmClients, in one process.
#include <cerrno>
#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/errors.h"
#include "dlm/dlm_client.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/proto/dlm.grpc.pb.h"
#include "storage/kv.h"

namespace stripefs::dlm {
namespace {

// Records what the library asked the embedder to do.
class RecordingHandler : public LockHandler {
 public:
  void OnBlocking(const LockInfo& lock, bool lost) override {
    absl::MutexLock l(&mu_);
    blocked_.push_back(lock.handle);
    lost_ += lost ? 1 : 0;
  }
  uint64_t OnGlimpse(const LockInfo& lock) override { return glimpse_value; }
  size_t blocked() {
    absl::MutexLock l(&mu_);
    return blocked_.size();
  }
  int lost() {
    absl::MutexLock l(&mu_);
    return lost_;
  }
  std::atomic<uint64_t> glimpse_value{0};

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> blocked_ ABSL_GUARDED_BY(mu_);
  int lost_ ABSL_GUARDED_BY(mu_) = 0;
};

// Polls `cond` for up to `limit`.
template <typename F>
bool Eventually(F cond, absl::Duration limit = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

class DlmComponentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dlm_component_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    StartServer(/*port=*/0);
  }
  void TearDown() override {
    clients_.clear();
    StopServer(/*clean=*/true);
    std::filesystem::remove_all(dir_);
  }

  void StartServer(int port) {
    auto kv = storage::OpenRocksKv((dir_ / "db").string());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = std::move(*kv);
    auto m = LockManager::Open(kv_.get(), RealClock(),
                               {.callback_timeout = callback_timeout_,
                                .recovery_window = absl::Seconds(5)});
    ASSERT_TRUE(m.ok()) << m.status();
    manager_ = std::move(*m);
    service_ = std::make_unique<DlmService>(
        DlmServiceOptions{.target = "dlm",
                          .instance = ++instance_,
                          .glimpse_timeout = absl::Seconds(2),
                          .tick_period = absl::Milliseconds(100)},
        manager_.get());
    auto s = StartDlmServer(service_.get(),
                            "127.0.0.1:" + std::to_string(port), &port_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  // clean=false: as after kill -9 (no clean-shutdown record).
  void StopServer(bool clean) {
    if (server_ == nullptr) return;
    service_->SetStopping();
    if (clean) {
      ASSERT_TRUE(manager_->Close().ok());
    } else {
      // Without Close the streams stay open until Shutdown cancels them.
    }
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(500));
    server_->Wait();
    server_.reset();
    service_.reset();
    manager_.reset();
    kv_.reset();
  }

  DlmClient* NewClient(const std::string& name, LockHandler* handler,
                       const std::string& prefix = "") {
    auto c = DlmClient::Start({.address = "127.0.0.1:" + std::to_string(port_),
                               .name = name,
                               .maintenance_period = absl::Milliseconds(200),
                               .backoff_min = absl::Milliseconds(20),
                               .backoff_max = absl::Milliseconds(200)});
    EXPECT_TRUE(c.ok()) << c.status();
    if (handler != nullptr) (*c)->RegisterHandler(prefix, handler);
    clients_.push_back(std::move(*c));
    return clients_.back().get();
  }

  rpc::StatusReply ServerStatus() {
    auto stub = rpc::Dlm::NewStub(
        rpc::MakeChannel("127.0.0.1:" + std::to_string(port_)));
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(5));
    rpc::StatusReply reply;
    EXPECT_TRUE(stub->Status(&ctx, rpc::StatusRequest(), &reply).ok());
    return reply;
  }

  static LockSpec Extent(LockMode m, uint64_t s, uint64_t e) {
    return {{"obj:ost0:77", LockType::kExtent}, m, 0, s, e};
  }

  absl::Duration callback_timeout_ = absl::Seconds(3);
  std::filesystem::path dir_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<LockManager> manager_;
  std::unique_ptr<DlmService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  uint64_t instance_ = 0;
  std::vector<std::unique_ptr<DlmClient>> clients_;
};

TEST_F(DlmComponentTest, ConflictingEnqueueRevokesCachedLock) {
  RecordingHandler h1;
  DlmClient* c1 = NewClient("c1", &h1, "obj:");
  DlmClient* c2 = NewClient("c2", nullptr);
  auto pw = c1->Lock(Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(pw.ok()) << pw.status();
  c1->Release(pw->handle);  // stays cached
  // Reuse: a covered request sends no Enqueue.
  auto again = c1->Lock(Extent(LockMode::kPR, 100, 200));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->handle, pw->handle);
  c1->Release(again->handle);
  EXPECT_EQ(c1->RpcCounts()["Enqueue"], 1u);

  auto ex = c2->Lock(Extent(LockMode::kEX, 0, 4095));
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_TRUE(ex->granted);
  EXPECT_EQ(h1.blocked(), 1u);  // flushed before the cancel
  EXPECT_TRUE(Eventually([&] { return c1->CachedCount() == 0; }));
  c2->Release(ex->handle);
  rpc::StatusReply st = ServerStatus();
  EXPECT_EQ(st.info().at("locks"), "1");
  EXPECT_EQ(st.info().at("sessions"), "2");
  EXPECT_GE(st.rpc_counts().at("Enqueue"), 2u);
  EXPECT_GE(st.rpc_counts().at("Cancel"), 1u);
}

// Own-change exemption through the client and the wire: the MDS's EX for
// a change asked by mount M leaves M's PR alone (N's is called back), stays
// cached for M's next change only, and a change for anyone else calls M
// back as before.
TEST_F(DlmComponentTest, ExemptLockLeavesThatMountsLockAndServesOnlyIt) {
  RecordingHandler hm, hn;
  DlmClient* m = NewClient("m", &hm, "ino:");
  DlmClient* n = NewClient("n", &hn, "ino:");
  DlmClient* mds = NewClient("mds", nullptr);
  const LockSpec pr{{"ino:9", LockType::kIbits}, LockMode::kPR, kBitLookup};
  const LockSpec ex{{"ino:9", LockType::kIbits}, LockMode::kEX, kBitLookup};
  for (DlmClient* c : {m, n}) {
    auto l = c->Lock(pr);
    ASSERT_TRUE(l.ok()) << l.status();
    c->Release(l->handle);  // cached
  }
  LockOptions for_m;
  for_m.exempt_client = m->client_id();
  auto e1 = mds->Lock(ex, for_m);
  ASSERT_TRUE(e1.ok()) << e1.status();
  EXPECT_EQ(e1->exempt_client, m->client_id());
  EXPECT_EQ(hn.blocked(), 1u);
  EXPECT_EQ(hm.blocked(), 0u);
  EXPECT_EQ(m->CachedCount(), 1u);
  mds->Release(e1->handle);
  // M's next change reuses the cached EX: no Enqueue, M still untouched.
  const uint64_t enq = mds->RpcCounts()["Enqueue"];
  auto e2 = mds->Lock(ex, for_m);
  ASSERT_TRUE(e2.ok());
  EXPECT_EQ(e2->handle, e1->handle);
  EXPECT_EQ(mds->RpcCounts()["Enqueue"], enq);
  mds->Release(e2->handle);
  EXPECT_EQ(hm.blocked(), 0u);
  // A change for an old mount (no exemption) must not reuse it: M's PR is
  // called back before that EX is granted.
  auto e3 = mds->Lock(ex);
  ASSERT_TRUE(e3.ok()) << e3.status();
  EXPECT_NE(e3->handle, e1->handle);
  EXPECT_EQ(e3->exempt_client, 0u);
  EXPECT_EQ(hm.blocked(), 1u);
  mds->Release(e3->handle);
}

// Intent locks: a server enqueues a lock in a client's name (EnqueueFor),
// the client adopts it and holds it like its own; a callback that overtakes
// the adoption is kept and applied; a lock never adopted (its reply lost)
// is cancelled when asked back, so its owner is not evicted.
TEST_F(DlmComponentTest, IntentLockIsAdoptedAndCallbacksBeforeItAreKept) {
  RecordingHandler hm;
  DlmClient* m = NewClient("m", &hm, "ino:");
  DlmClient* mds = NewClient("mds", nullptr);
  DlmClient* other = NewClient("other", nullptr);
  const LockSpec pr{{"ino:21", LockType::kIbits}, LockMode::kPR, kBitLookup};
  const LockSpec ex{{"ino:21", LockType::kIbits}, LockMode::kEX, kBitLookup};
  const uint64_t top = uint64_t{1} << 63;
  // The owner must be known to the DLM (a mount is, long before a create).
  ASSERT_TRUE(Eventually([&] { return m->Connected(); }));
  // Adopted: used from the cache, no Enqueue of m's own.
  DlmClient::AdoptToken t = m->PrepareAdopt();
  auto granted = mds->EnqueueFor(m->client_id(), top | 1, pr);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_TRUE(granted->granted);
  auto mine = m->Adopt(t, *granted);
  ASSERT_TRUE(mine.ok()) << mine.status();
  m->Release(mine->handle);
  auto reused = m->Lock(pr);
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(reused->handle, granted->handle);
  m->Release(reused->handle);
  EXPECT_EQ(m->RpcCounts()["Enqueue"], 0u);
  // A resend with the same id answers the same lock; a conflict: EAGAIN.
  auto again = mds->EnqueueFor(m->client_id(), top | 1, pr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->handle, granted->handle);
  // Another client's EX calls it back like any lock of m.
  auto x = other->Lock(ex);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(hm.blocked(), 1u);
  EXPECT_EQ(ToErrno(mds->EnqueueFor(m->client_id(), top | 2,
                                    {{"ino:21", LockType::kIbits},
                                     LockMode::kPR, kBitLookup})
                        .status()),
            EAGAIN);
  other->Release(x->handle);
  ASSERT_TRUE(other->Cancel(x->handle).ok());

  // The callback overtakes the adoption: applied once adopted (handler
  // runs, lock cancelled after its release).
  t = m->PrepareAdopt();
  auto g2 = mds->EnqueueFor(m->client_id(), top | 3, pr);
  ASSERT_TRUE(g2.ok()) << g2.status();
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    auto y = other->Lock(ex);
    EXPECT_TRUE(y.ok()) << y.status();
    if (y.ok()) other->Release(y->handle);
    done = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(done.load());  // waits for m's lock
  auto held = m->Adopt(t, *g2);
  ASSERT_TRUE(held.ok()) << held.status();
  m->Release(held->handle);
  EXPECT_TRUE(Eventually([&] { return done.load(); }));
  waiter.join();
  EXPECT_EQ(hm.blocked(), 2u);

  // Never adopted (the reply was lost): cancelled when asked back, while
  // another adoption is pending and after; m is not evicted.
  const LockSpec pr22{{"ino:22", LockType::kIbits}, LockMode::kPR,
                      kBitLookup};
  const LockSpec ex22{{"ino:22", LockType::kIbits}, LockMode::kEX,
                      kBitLookup};
  auto g3 = mds->EnqueueFor(m->client_id(), top | 4, pr22);
  ASSERT_TRUE(g3.ok()) << g3.status();
  t = m->PrepareAdopt();
  done = false;
  std::thread waiter2([&] {
    auto z = other->Lock(ex22);
    EXPECT_TRUE(z.ok()) << z.status();
    if (z.ok()) other->Release(z->handle);
    done = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(m->Adopt(t, std::nullopt).ok());  // nothing came
  EXPECT_TRUE(Eventually([&] { return done.load(); }, absl::Seconds(2)));
  waiter2.join();
  EXPECT_EQ(m->Evictions(), 0u);
}

TEST_F(DlmComponentTest, LockInUseIsTouchedNotEvictedAndCancelledOnRelease) {
  RecordingHandler h1;
  DlmClient* c1 = NewClient("c1", &h1, "obj:");
  DlmClient* c2 = NewClient("c2", nullptr);
  auto pw = c1->Lock(Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(pw.ok());
  std::atomic<bool> granted{false};
  std::thread waiter([&] {
    auto ex = c2->Lock(Extent(LockMode::kEX, 0, 4095));
    EXPECT_TRUE(ex.ok()) << ex.status();
    granted = true;
    if (ex.ok()) c2->Release(ex->handle);
  });
  // Longer than the callback timeout: c1 Touches instead of being evicted.
  absl::SleepFor(callback_timeout_ + absl::Seconds(1));
  EXPECT_FALSE(granted.load());
  EXPECT_EQ(h1.lost(), 0);
  EXPECT_GE(c1->RpcCounts()["Touch"], 1u);
  c1->Release(pw->handle);
  EXPECT_TRUE(Eventually([&] { return granted.load(); }));
  waiter.join();
  EXPECT_EQ(h1.blocked(), 1u);
}

TEST_F(DlmComponentTest, GlimpseReturnsHolderValueWithoutRevoking) {
  RecordingHandler h1;
  h1.glimpse_value = 123456;
  DlmClient* c1 = NewClient("c1", &h1, "obj:");
  DlmClient* c2 = NewClient("c2", nullptr);
  auto pw = c1->Lock(Extent(LockMode::kPW, 0, kExtentEof));
  ASSERT_TRUE(pw.ok());
  c1->Release(pw->handle);
  ASSERT_TRUE(Eventually([&] { return c1->Connected(); }));
  auto values = c2->Glimpse({"obj:ost0:77", LockType::kExtent}, 0, kExtentEof);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 1u);
  EXPECT_EQ((*values)[0].value, 123456u);
  EXPECT_EQ((*values)[0].client_id, c1->client_id());
  EXPECT_EQ(c1->CachedCount(), 1u);
  EXPECT_EQ(h1.blocked(), 0u);
}

TEST_F(DlmComponentTest, InterruptedWaitFailsWithEintr) {
  DlmClient* c1 = NewClient("c1", nullptr);
  DlmClient* c2 = NewClient("c2", nullptr);
  LockSpec flock{{"flock:ino:9", LockType::kPlain}, LockMode::kEX};
  auto held = c1->Lock(flock);
  ASSERT_TRUE(held.ok());
  const absl::Time start = absl::Now();
  LockOptions opts;
  opts.interrupted = [&] { return absl::Now() - start > absl::Milliseconds(300); };
  auto r = c2->Lock(flock, opts);
  EXPECT_EQ(ToErrno(r.status()), EINTR);
  // The abandoned request leaves the table; c1 keeps its lock.
  EXPECT_TRUE(Eventually([&] { return manager_->LockCount() == 1; }));
  c1->Release(held->handle);
}

// Controlled failover through the client library: a server instance on its
// stable id keeps EX on active:mdt0 and closes without cancelling it; a
// client's PR waits; the next instance (same id, reset_on_first_connect,
// defer_connect) drops the EX only once it starts connecting, and only on
// its first connect.
TEST_F(DlmComponentTest, NextServerInstanceResetsTheLocksOfThePrevious) {
  const std::string address = "127.0.0.1:" + std::to_string(port_);
  const uint64_t id = ServerDlmClientId("mdt0");
  EXPECT_NE(id, 0u);
  EXPECT_EQ(id, ServerDlmClientId("mdt0"));
  EXPECT_NE(id, ServerDlmClientId("ost0"));
  const LockSpec active{{"active:mdt0", LockType::kPlain}, LockMode::kEX};
  auto old = DlmClient::Start({.address = address,
                               .client_id = id,
                               .kind = "mds",
                               .name = "mdt0",
                               .reset_on_first_connect = true});
  ASSERT_TRUE(old.ok());
  auto ex = (*old)->Lock(active);
  ASSERT_TRUE(ex.ok()) << ex.status();
  auto md = (*old)->Lock({{"ino:5", LockType::kIbits}, LockMode::kEX, 3});
  ASSERT_TRUE(md.ok()) << md.status();
  (*old)->Release(md->handle);  // cached
  EXPECT_EQ(manager_->LockCount(), 2u);
  // A controlled stop: everything is cancelled but the EX on active:mdt0.
  (*old)->Close(/*cancel_locks=*/true, /*keep=*/ex->handle);
  ASSERT_EQ(manager_->LockCount(), 1u);
  EXPECT_EQ(manager_->Locks()[0].handle, ex->handle);

  DlmClient* mount = NewClient("mount", nullptr);
  std::atomic<bool> granted{false};
  std::thread waiter([&] {
    auto pr = mount->Lock({{"active:mdt0", LockType::kPlain}, LockMode::kPR});
    EXPECT_TRUE(pr.ok()) << pr.status();
    granted = pr.ok();
    if (pr.ok()) mount->Release(pr->handle);
  });
  auto next = DlmClient::Start({.address = address,
                                .client_id = id,
                                .kind = "mds",
                                .name = "mdt0",
                                .reset_on_first_connect = true,
                                .defer_connect = true});
  ASSERT_TRUE(next.ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE((*next)->Connected());
  EXPECT_FALSE(granted.load());  // the old EX still holds the PR back
  (*next)->StartConnecting();
  EXPECT_TRUE(Eventually([&] { return granted.load(); }));
  waiter.join();
  ASSERT_TRUE((*next)->Connected());
  // A reconnect (DLM restart) does not reset again: the new EX survives.
  auto ex2 = (*next)->Lock(active);
  ASSERT_TRUE(ex2.ok()) << ex2.status();
  StopServer(/*clean=*/true);
  StartServer(port_);
  EXPECT_TRUE(Eventually([&] { return (*next)->Connected(); }));
  // The session's replay may still be under way on a loaded machine.
  EXPECT_TRUE(Eventually([&] {
    for (const LockInfo& l : manager_->Locks()) {
      if (l.handle == ex2->handle && l.client_id == id) return true;
    }
    return false;
  }));
  (*next)->Release(ex2->handle);
  (*next)->Close(/*cancel_locks=*/true);
}

TEST_F(DlmComponentTest, CleanServerRestartKeepsLocks) {
  RecordingHandler h1;
  DlmClient* c1 = NewClient("c1", &h1, "flock:");
  DlmClient* c2 = NewClient("c2", nullptr);
  LockSpec spec{{"flock:ino:5", LockType::kPlain}, LockMode::kPR};
  auto l1 = c1->Lock(spec);
  auto l2 = c2->Lock(spec);
  ASSERT_TRUE(l1.ok() && l2.ok());
  c1->Release(l1->handle);
  StopServer(/*clean=*/true);
  // While the DLM is away a cached lock still serves, a new one waits.
  auto cached = c1->Lock(spec);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->handle, l1->handle);
  std::atomic<bool> got_new{false};
  std::thread t([&] {
    auto other = c1->Lock({{"flock:ino:99", LockType::kPlain}, LockMode::kEX});
    EXPECT_TRUE(other.ok()) << other.status();
    got_new = other.ok();
    if (other.ok()) c1->Release(other->handle);
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(got_new.load());
  StartServer(port_);
  EXPECT_TRUE(Eventually([&] { return got_new.load(); }));
  t.join();
  EXPECT_FALSE(manager_->InRecovery());
  EXPECT_TRUE(manager_->LockCount() >= 2u);
  ASSERT_TRUE(Eventually([&] { return c1->Connected() && c2->Connected(); }));
  // Locks still work: an EX from c2 gets c1's PR back.
  c1->Release(l1->handle);
  c2->Release(l2->handle);
  auto ex = c2->Lock({{"flock:ino:5", LockType::kPlain}, LockMode::kEX});
  ASSERT_TRUE(ex.ok()) << ex.status();
  EXPECT_EQ(h1.blocked(), 1u);
  EXPECT_EQ(h1.lost(), 0);
}

TEST_F(DlmComponentTest, UncleanRestartReplaysAndCarriesOn) {
  RecordingHandler h1;
  DlmClient* c1 = NewClient("c1", &h1, "flock:");
  DlmClient* c2 = NewClient("c2", nullptr);
  LockSpec spec{{"flock:ino:6", LockType::kPlain}, LockMode::kPW};
  auto l1 = c1->Lock(spec);
  ASSERT_TRUE(l1.ok());
  StopServer(/*clean=*/false);
  StartServer(port_);
  EXPECT_TRUE(manager_->InRecovery());
  // Both clients reconnect and replay; the window closes early.
  EXPECT_TRUE(Eventually([&] { return !manager_->InRecovery(); }));
  EXPECT_EQ(manager_->LockCount(), 1u);
  std::atomic<bool> granted{false};
  std::thread t([&] {
    auto ex = c2->Lock({{"flock:ino:6", LockType::kPlain}, LockMode::kEX});
    EXPECT_TRUE(ex.ok());
    granted = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(granted.load());  // c1 still holds its PW
  c1->Release(l1->handle);
  EXPECT_TRUE(Eventually([&] { return granted.load(); }));
  t.join();
  EXPECT_EQ(h1.lost(), 0);
}

}  // namespace
}  // namespace stripefs::dlm

namespace stripefs::dlm {
namespace {

// A handler whose flush hangs longer than the callback timeout.
class SlowHandler : public RecordingHandler {
 public:
  void OnBlocking(const LockInfo& lock, bool lost) override {
    if (!lost) absl::SleepFor(absl::Milliseconds(2500));
    RecordingHandler::OnBlocking(lock, lost);
  }
};

TEST_F(DlmComponentTest, ExactLocksAndTestThroughTheClient) {
  DlmClient* c1 = NewClient("c1", nullptr);
  DlmClient* c2 = NewClient("c2", nullptr);
  LockOptions exact{.no_wait = true, .no_cache_match = true, .exact = true};
  auto a = c1->Lock(Extent(LockMode::kPW, 0, 99), exact);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->spec.end, 99u);  // not widened
  auto b = c2->Lock(Extent(LockMode::kPW, 100, 199), exact);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->spec.start, 100u);
  EXPECT_EQ(b->spec.end, 199u);
  // Test names the other client's lock, creates nothing, ignores its own.
  auto t = c2->Test(Extent(LockMode::kPR, 50, 150));
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE(t->has_value());
  EXPECT_EQ((*t)->handle, a->handle);
  EXPECT_EQ((*t)->spec.start, 0u);
  EXPECT_EQ((*t)->spec.end, 99u);
  auto free = c2->Test(Extent(LockMode::kPW, 200, 300));
  ASSERT_TRUE(free.ok());
  EXPECT_FALSE(free->has_value());
  // A normal (non-exact) lock of c1 elsewhere is still widened.
  auto n = c1->Lock(Extent(LockMode::kPW, 500, 599),
                    {.no_wait = true, .no_cache_match = true});
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->spec.start, 200u);
  EXPECT_EQ(n->spec.end, kExtentEof);
  c1->Release(a->handle);
  c2->Release(b->handle);
  c1->Release(n->handle);
}

TEST_F(DlmComponentTest, HolderThatHangsIsEvictedAndRecovers) {
  StopServer(/*clean=*/true);
  callback_timeout_ = absl::Seconds(1);
  StartServer(0);
  SlowHandler h1;
  DlmClient* c1 = NewClient("slow", &h1, "ino:");
  DlmClient* c2 = NewClient("c2", nullptr);
  LockSpec spec{{"ino:3", LockType::kIbits}, LockMode::kPR, kBitUpdate};
  auto l1 = c1->Lock(spec);
  auto other = c1->Lock({{"ino:4", LockType::kPlain}, LockMode::kPR});
  ASSERT_TRUE(l1.ok() && other.ok());
  c1->Release(l1->handle);
  c1->Release(other->handle);
  const absl::Time start = absl::Now();
  auto ex = c2->Lock({{"ino:3", LockType::kIbits}, LockMode::kEX, kBitUpdate});
  ASSERT_TRUE(ex.ok()) << ex.status();
  // Granted by the eviction, before the slow flush finished.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(2400));
  // Every lock of c1 is reported lost (ino:4 too), and c1 works again.
  EXPECT_TRUE(Eventually([&] { return h1.lost() >= 1; }));
  EXPECT_TRUE(Eventually([&] { return c1->Connected(); }));
  auto again = c1->Lock({{"ino:4", LockType::kPlain}, LockMode::kPR});
  EXPECT_TRUE(again.ok()) << again.status();
  c2->Release(ex->handle);
}

}  // namespace
}  // namespace stripefs::dlm
