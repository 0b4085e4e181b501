#include "dlm/lock_manager.h"

#include <cerrno>

#include "common/errors.h"
#include "common/fake_clock.h"
#include "common/fault_points.h"
#include "gtest/gtest.h"

namespace stripefs::dlm {
namespace {

constexpr uint64_t kA = 1;
constexpr uint64_t kB = 2;
constexpr uint64_t kC = 3;

class LockManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = storage::NewMemKv();
    Reopen();
  }
  void Reopen() {
    m_.reset();
    auto m = LockManager::Open(kv_.get(), &clock_,
                               {.callback_timeout = absl::Seconds(10),
                                .recovery_window = absl::Seconds(15)});
    ASSERT_TRUE(m.ok()) << m.status();
    m_ = std::move(*m);
    for (uint64_t c : {kA, kB, kC}) {
      ASSERT_TRUE(m_->Connect(c, "client" + std::to_string(c)).ok());
      auto gen = m_->OpenSession(c);
      ASSERT_TRUE(gen.ok());
      gen_[c] = *gen;
    }
    for (uint64_t c : {kA, kB, kC}) Events(c);  // drop the replayed state
  }
  std::vector<CallbackEvent> Events(uint64_t c) {
    std::vector<CallbackEvent> out;
    m_->NextEvents(c, gen_[c], absl::ZeroDuration(), &out);
    return out;
  }
  LockInfo Enq(uint64_t c, const LockSpec& spec) {
    auto r = m_->Enqueue(c, ++xid_, spec);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : LockInfo{};
  }
  static LockSpec Plain(LockMode m, const std::string& name = "active:mdt0") {
    return {{name, LockType::kPlain}, m};
  }
  static LockSpec Ibits(LockMode m, uint64_t bits) {
    return {{"ino:42", LockType::kIbits}, m, bits};
  }
  static LockSpec Extent(LockMode m, uint64_t s, uint64_t e) {
    return {{"obj:ost0:7", LockType::kExtent}, m, 0, s, e};
  }

  FakeClock clock_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<LockManager> m_;
  std::map<uint64_t, uint64_t> gen_;
  uint64_t xid_ = 0;
};

TEST_F(LockManagerTest, CompatibleLocksAreGrantedAtOnce) {
  EXPECT_TRUE(Enq(kA, Plain(LockMode::kPR)).granted);
  EXPECT_TRUE(Enq(kB, Plain(LockMode::kPR)).granted);
  EXPECT_TRUE(Enq(kC, Plain(LockMode::kCR)).granted);
  EXPECT_EQ(m_->LockCount(), 3u);
  EXPECT_TRUE(Events(kA).empty());  // no callbacks for immediate grants
}

TEST_F(LockManagerTest, PlainConflictSendsBlockingAndGrantsAfterCancel) {
  LockInfo a = Enq(kA, Plain(LockMode::kPW));
  ASSERT_TRUE(a.granted);
  LockInfo b = Enq(kB, Plain(LockMode::kEX));
  EXPECT_FALSE(b.granted);
  auto ev = Events(kA);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kBlocking);
  EXPECT_EQ(ev[0].lock.handle, a.handle);
  EXPECT_EQ(ev[0].blocking.handle, b.handle);
  ASSERT_TRUE(m_->Cancel(kA, a.handle).ok());
  ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev[0].lock.handle, b.handle);
  EXPECT_TRUE(ev[0].lock.granted);
}

TEST_F(LockManagerTest, IbitsDisjointBitsDoNotConflict) {
  EXPECT_TRUE(Enq(kA, Ibits(LockMode::kEX, kBitLookup)).granted);
  EXPECT_TRUE(Enq(kB, Ibits(LockMode::kEX, kBitUpdate | kBitPerm)).granted);
  EXPECT_FALSE(Enq(kC, Ibits(LockMode::kPR, kBitPerm)).granted);
  auto ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kBlocking);
  EXPECT_TRUE(Events(kA).empty());  // its bits do not overlap
}

TEST_F(LockManagerTest, ExtentDisjointRangesDoNotConflict) {
  LockInfo a = Enq(kA, Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(a.granted);
  // Expanded to the whole object: nothing else there.
  EXPECT_EQ(a.spec.start, 0u);
  EXPECT_EQ(a.spec.end, kExtentEof);
  // A conflicting request elsewhere revokes the wide lock...
  LockInfo b = Enq(kB, Extent(LockMode::kPW, 1 << 20, (2 << 20) - 1));
  EXPECT_FALSE(b.granted);
  ASSERT_EQ(Events(kA).size(), 1u);
  ASSERT_TRUE(m_->Cancel(kA, a.handle).ok());
  auto ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].lock.spec.start, 0u);  // expanded, nothing conflicts now
  // ...while disjoint ranges with narrow holders coexist.
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  LockInfo c1 = Enq(kC, Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(c1.granted);
  ASSERT_TRUE(m_->Convert(kC, c1.handle, LockMode::kPW).ok());
}

TEST_F(LockManagerTest, ExtentExpansionStopsAtConflictingLocks) {
  // A holds [8192, 12287] PW (expanded to everything, then narrowed by B).
  LockInfo a = Enq(kA, Extent(LockMode::kPR, 8192, 12287));
  ASSERT_TRUE(a.granted);
  EXPECT_EQ(a.spec.end, kExtentEof);
  // A compatible PR elsewhere is expanded too (PR does not conflict).
  LockInfo b = Enq(kB, Extent(LockMode::kPR, 0, 100));
  EXPECT_EQ(b.spec.start, 0u);
  EXPECT_EQ(b.spec.end, kExtentEof);
  ASSERT_TRUE(m_->Cancel(kA, a.handle).ok());
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  // Two narrow PW holders with a gap between them.
  std::vector<CallbackEvent> ev;
  auto x = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(x.ok());
  auto y = m_->Enqueue(kB, ++xid_, Extent(LockMode::kPW, 1 << 20, 1 << 20));
  ASSERT_TRUE(y.ok());
  ASSERT_FALSE(y->granted);  // x was expanded to everything
  ASSERT_TRUE(m_->Cancel(kA, x->handle).ok());
  ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].lock.spec.start, 0u);
  EXPECT_EQ(ev[0].lock.spec.end, kExtentEof);
  // C asks for [0, 4095] PW: B is asked back; when B keeps nothing C gets
  // a range bounded by nothing; when D holds [64K, 128K) C stops below it.
  ASSERT_TRUE(m_->Cancel(kB, y->handle).ok());
  LockInfo d = Enq(kA, Extent(LockMode::kPW, 65536, 131071));
  ASSERT_TRUE(d.granted);
  ASSERT_TRUE(m_->Convert(kA, d.handle, LockMode::kPW).ok());
  // Shrink D's view: cancel and take it again while C's request sits below.
  ASSERT_TRUE(m_->Cancel(kA, d.handle).ok());
  LockInfo c = Enq(kC, Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(c.granted);
  EXPECT_EQ(c.spec.end, kExtentEof);
  LockInfo e = Enq(kA, Extent(LockMode::kPW, 65536, 131071));
  EXPECT_FALSE(e.granted);
  ASSERT_TRUE(m_->Cancel(kC, c.handle).ok());
  ev = Events(kA);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kCompletion);
  // Nothing else is on the resource: expanded to all of it.
  EXPECT_EQ(ev.back().lock.spec.start, 0u);
  // Now a PR below is granted but bounded by the PW holder.
  ASSERT_TRUE(m_->Cancel(kA, e.handle).ok());
  LockInfo w = Enq(kA, Extent(LockMode::kPW, 65536, 131071));
  ASSERT_TRUE(w.granted);
  LockInfo r = m_->Enqueue(kB, ++xid_, Extent(LockMode::kPR, 0, 4095)).value();
  ASSERT_FALSE(r.granted);  // w covers everything
}

TEST_F(LockManagerTest, ExactExtentIsNotWidened) {
  // A normal request on a free resource is widened to all of it...
  LockInfo n = Enq(kA, Extent(LockMode::kPW, 0, 99));
  ASSERT_TRUE(n.granted);
  EXPECT_EQ(n.spec.end, kExtentEof);
  ASSERT_TRUE(m_->Cancel(kA, n.handle).ok());
  // ...an exact one is granted over exactly what it asked for, so a
  // disjoint (even adjacent) exact request of another client is granted
  // at once and an overlapping one is refused.
  auto a = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 0, 99),
                       /*no_wait=*/true, /*exact=*/true);
  ASSERT_TRUE(a.ok() && a->granted);
  EXPECT_EQ(a->spec.start, 0u);
  EXPECT_EQ(a->spec.end, 99u);
  auto b = m_->Enqueue(kB, ++xid_, Extent(LockMode::kPW, 100, 199),
                       /*no_wait=*/true, /*exact=*/true);
  ASSERT_TRUE(b.ok() && b->granted);
  EXPECT_EQ(b->spec.start, 100u);
  EXPECT_EQ(b->spec.end, 199u);
  auto c = m_->Enqueue(kC, ++xid_, Extent(LockMode::kPR, 99, 100),
                       /*no_wait=*/true, /*exact=*/true);
  EXPECT_EQ(ToErrno(c.status()), EAGAIN);
  // A waiting exact lock stays exact when granted later.
  auto w = m_->Enqueue(kC, ++xid_, Extent(LockMode::kPW, 50, 59),
                       /*no_wait=*/false, /*exact=*/true);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->granted);
  ASSERT_TRUE(m_->Cancel(kA, a->handle).ok());
  std::vector<CallbackEvent> ev = Events(kC);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev.back().lock.spec.start, 50u);
  EXPECT_EQ(ev.back().lock.spec.end, 59u);
  // The flag survives a restart (persisted) and a normal lock next to
  // exact ones is still widened into the free space around them.
  ASSERT_TRUE(m_->Close().ok());
  Reopen();
  LockInfo g = Enq(kA, Extent(LockMode::kPW, 300, 399));
  ASSERT_TRUE(g.granted);
  EXPECT_EQ(g.spec.start, 200u);
  EXPECT_EQ(g.spec.end, kExtentEof);
}

TEST_F(LockManagerTest, CarvingSplitsAHeldLockBeforeAnyWaiter) {
  LockInfo h = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 0, 199), false,
                           /*exact=*/true)
                   .value();
  ASSERT_TRUE(h.granted);
  // B waits for [0, 49].
  LockInfo w = m_->Enqueue(kB, ++xid_, Extent(LockMode::kPW, 0, 49), false,
                           true)
                   .value();
  ASSERT_FALSE(w.granted);
  // A keeps [0, 49] and [100, 199], and [150, 199] only for reading: the
  // pieces are granted at once although B waits, then the whole goes.
  auto p1 = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 0, 49), true, true,
                        /*carve_from=*/h.handle);
  auto p2 = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 100, 149), true,
                        true, h.handle);
  auto p3 = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPR, 150, 199), true,
                        true, h.handle);
  ASSERT_TRUE(p1.ok() && p1->granted) << p1.status();
  ASSERT_TRUE(p2.ok() && p2->granted) << p2.status();
  ASSERT_TRUE(p3.ok() && p3->granted) << p3.status();
  EXPECT_EQ(p1->spec.end, 49u);
  // Not covered (range or mode), or not A's: refused.
  EXPECT_EQ(ToErrno(m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 150, 250),
                                true, true, h.handle)
                        .status()),
            EINVAL);
  EXPECT_EQ(ToErrno(m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 0, 1), true,
                                true, p3->handle)
                        .status()),
            EINVAL);
  EXPECT_EQ(ToErrno(m_->Enqueue(kC, ++xid_, Extent(LockMode::kPW, 0, 1), true,
                                true, h.handle)
                        .status()),
            EINVAL);
  ASSERT_TRUE(m_->Cancel(kA, h.handle).ok());
  Events(kB);
  for (const LockInfo& l : m_->Locks()) {
    if (l.handle == w.handle) EXPECT_FALSE(l.granted);  // still waits
  }
  auto c = m_->Enqueue(kC, ++xid_, Extent(LockMode::kPW, 50, 99), true, true);
  ASSERT_TRUE(c.ok() && c->granted);
  auto d = m_->Enqueue(kC, ++xid_, Extent(LockMode::kPR, 160, 170), true,
                       true);
  ASSERT_TRUE(d.ok() && d->granted);
  ASSERT_TRUE(m_->Cancel(kA, p1->handle).ok());
  std::vector<CallbackEvent> ev = Events(kB);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev.back().lock.handle, w.handle);
}

TEST_F(LockManagerTest, TestReportsAnotherClientsConflictingLock) {
  LockInfo a = m_->Enqueue(kA, ++xid_, Extent(LockMode::kPW, 10, 19),
                           false, /*exact=*/true)
                   .value();
  ASSERT_TRUE(a.granted);
  auto none = m_->Test(kB, Extent(LockMode::kPW, 20, 29));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto hit = m_->Test(kB, Extent(LockMode::kPR, 0, 10));
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->handle, a.handle);
  EXPECT_EQ((*hit)->spec.start, 10u);
  EXPECT_EQ((*hit)->spec.end, 19u);
  EXPECT_EQ((*hit)->spec.mode, LockMode::kPW);
  // The caller's own locks never count; nothing was created.
  auto own = m_->Test(kA, Extent(LockMode::kPW, 0, 100));
  ASSERT_TRUE(own.ok());
  EXPECT_FALSE(own->has_value());
  EXPECT_EQ(m_->LockCount(), 1u);
}

TEST_F(LockManagerTest, ExpansionIsBoundedByNeighbours) {
  // Neighbours granted first keep the new lock between them.
  LockInfo lo = Enq(kA, Extent(LockMode::kPR, 0, 4095));
  LockInfo hi = Enq(kA, Extent(LockMode::kPR, 1 << 20, (1 << 20) + 4095));
  ASSERT_TRUE(lo.granted && hi.granted);
  // A PW in the middle conflicts with both wide PR locks: they are asked
  // back. Cancel them and re-take narrow ones with no_cache semantics.
  ASSERT_TRUE(m_->Cancel(kA, lo.handle).ok());
  ASSERT_TRUE(m_->Cancel(kA, hi.handle).ok());
  // Narrow PW neighbours (expansion of the second stops at the first).
  LockInfo n1 = Enq(kA, Extent(LockMode::kPW, 0, 4095));
  ASSERT_TRUE(n1.granted);
  ASSERT_TRUE(m_->Convert(kA, n1.handle, LockMode::kPW).ok());
  // n1 is wide; a second PW from B waits, and is granted after n1 goes.
  LockInfo n2 = Enq(kB, Extent(LockMode::kPW, 8192, 12287));
  ASSERT_FALSE(n2.granted);
  LockInfo n3 = Enq(kC, Extent(LockMode::kPW, 1 << 20, (1 << 20) + 4095));
  ASSERT_FALSE(n3.granted);
  ASSERT_TRUE(m_->Cancel(kA, n1.handle).ok());
  // n2 is granted first and may not grow into the waiting n3's range.
  auto ev = Events(kB);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev.back().lock.spec.start, 0u);
  EXPECT_EQ(ev.back().lock.spec.end, (1u << 20) - 1);
  ev = Events(kC);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev.back().lock.spec.start, 1u << 20);
  EXPECT_EQ(ev.back().lock.spec.end, kExtentEof);
}

TEST_F(LockManagerTest, WaitingExHoldsBackLaterPr) {
  LockInfo a = Enq(kA, Plain(LockMode::kPR));
  ASSERT_TRUE(a.granted);
  LockInfo ex = Enq(kB, Plain(LockMode::kEX));
  EXPECT_FALSE(ex.granted);
  // PR is compatible with the granted PR but queues behind the EX.
  LockInfo pr = Enq(kC, Plain(LockMode::kPR));
  EXPECT_FALSE(pr.granted);
  ASSERT_TRUE(m_->Cancel(kA, a.handle).ok());
  // B gets its EX and, at once, the request to give it back for C.
  auto ev = Events(kB);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev[1].kind, CallbackEvent::kBlocking);
  EXPECT_EQ(ev[1].blocking.handle, pr.handle);
  EXPECT_TRUE(Events(kC).empty());  // C still waits
  ASSERT_TRUE(m_->Cancel(kB, ex.handle).ok());
  ev = Events(kC);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
}

TEST_F(LockManagerTest, NoWaitFailsWithEagain) {
  ASSERT_TRUE(Enq(kA, Plain(LockMode::kEX)).granted);
  auto r = m_->Enqueue(kB, ++xid_, Plain(LockMode::kPR), /*no_wait=*/true);
  EXPECT_EQ(ToErrno(r.status()), EAGAIN);
  EXPECT_TRUE(Events(kA).empty());
}

TEST_F(LockManagerTest, ResentEnqueueReturnsTheSameLock) {
  auto r1 = m_->Enqueue(kA, 77, Plain(LockMode::kPR));
  auto r2 = m_->Enqueue(kA, 77, Plain(LockMode::kPR));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->handle, r2->handle);
  EXPECT_EQ(m_->LockCount(), 1u);
}

TEST_F(LockManagerTest, ConvertDownAndUp) {
  LockInfo a = Enq(kA, Plain(LockMode::kEX));
  LockInfo b = Enq(kB, Plain(LockMode::kPR));
  ASSERT_FALSE(b.granted);
  Events(kA);
  // Down-convert EX -> PR: granted at once, lets B in.
  auto d = m_->Convert(kA, a.handle, LockMode::kPR);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->granted);
  EXPECT_EQ(d->spec.mode, LockMode::kPR);
  auto ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  // Up-convert PR -> PW waits for B's PR, which is asked back.
  auto u = m_->Convert(kA, a.handle, LockMode::kPW);
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->granted);
  ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kBlocking);
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  ev = Events(kA);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev[0].lock.spec.mode, LockMode::kPW);
}

TEST_F(LockManagerTest, CancelOfWaitingLockAndIdempotentCancel) {
  LockInfo a = Enq(kA, Plain(LockMode::kEX));
  LockInfo b = Enq(kB, Plain(LockMode::kEX));
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());  // again: fine
  EXPECT_EQ(m_->LockCount(), 1u);
  EXPECT_EQ(ToErrno(m_->Cancel(kB, a.handle)), EPERM);  // not B's
}

TEST_F(LockManagerTest, HolderThatDoesNotCancelIsEvicted) {
  LockInfo a = Enq(kA, Plain(LockMode::kPW));
  Enq(kA, Plain(LockMode::kPR, "config"));
  LockInfo b = Enq(kB, Plain(LockMode::kEX));
  ASSERT_FALSE(b.granted);
  clock_.Advance(absl::Seconds(9));
  m_->Tick();
  EXPECT_EQ(m_->LockCount(), 3u);
  clock_.Advance(absl::Seconds(2));
  m_->Tick();
  // Every lock of A is gone, B got its EX, A's session ends with EVICTED.
  EXPECT_EQ(m_->LockCount(), 1u);
  std::vector<CallbackEvent> ev;
  EXPECT_FALSE(m_->NextEvents(kA, gen_[kA], absl::ZeroDuration(), &ev));
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kEvicted);
  EXPECT_EQ(ev.back().lock.handle, a.handle);
  ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  // A's requests are refused until it connects again.
  EXPECT_EQ(ToErrno(m_->Enqueue(kA, ++xid_, Plain(LockMode::kNL)).status()),
            ENOTCONN);
  m_->CloseSession(kA, gen_[kA]);
  ASSERT_TRUE(m_->Connect(kA, "again").ok());
  EXPECT_TRUE(m_->Enqueue(kA, ++xid_, Plain(LockMode::kNL)).ok());
}

// Controlled failover: the stopping server's EX on active:T stays in the
// table after it exits; its next instance connects on the same id with
// reset, which drops the EX and grants the PR waiters, also after a DLM
// restart (the drop is persisted).
TEST_F(LockManagerTest, ConnectWithResetDropsLocksAndGrantsWaiters) {
  LockInfo ex = Enq(kA, Plain(LockMode::kEX));
  ASSERT_TRUE(ex.granted);
  LockInfo pr = Enq(kB, Plain(LockMode::kPR));
  EXPECT_FALSE(pr.granted);
  Events(kB);
  // A plain reconnect keeps the lock.
  size_t dropped = 99;
  ASSERT_TRUE(m_->Connect(kA, "server mdt0", false, &dropped).ok());
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(m_->LockCount(), 2u);
  EXPECT_TRUE(Events(kB).empty());
  ASSERT_TRUE(m_->Connect(kA, "server mdt0", true, &dropped).ok());
  EXPECT_EQ(dropped, 1u);
  auto ev = Events(kB);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev[0].lock.handle, pr.handle);
  EXPECT_EQ(m_->LockCount(), 1u);
  // Reset with nothing held is a plain connect.
  ASSERT_TRUE(m_->Connect(kA, "server mdt0", true, &dropped).ok());
  EXPECT_EQ(dropped, 0u);
  ASSERT_TRUE(m_->Close().ok());
  Reopen();
  std::vector<LockInfo> locks = m_->Locks();
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(locks[0].handle, pr.handle);
  EXPECT_EQ(locks[0].client_id, kB);
  EXPECT_TRUE(locks[0].granted);
}

TEST_F(LockManagerTest, ResetDropsWaitingLocksToo) {
  LockInfo b = Enq(kB, Plain(LockMode::kEX));
  ASSERT_TRUE(b.granted);
  LockInfo a = Enq(kA, Plain(LockMode::kEX));
  EXPECT_FALSE(a.granted);
  ASSERT_TRUE(m_->Connect(kA, "server ost0", true).ok());
  ASSERT_EQ(m_->LockCount(), 1u);
  EXPECT_EQ(m_->Locks()[0].handle, b.handle);
  // B can cancel without A's old waiter being granted anything.
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  EXPECT_EQ(m_->LockCount(), 0u);
}

TEST_F(LockManagerTest, TouchExtendsTimeoutInsteadOfEvicting) {
  LockInfo a = Enq(kA, Plain(LockMode::kPW));
  Enq(kB, Plain(LockMode::kEX));
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(8));
    ASSERT_TRUE(m_->Touch(kA, {a.handle}).ok());
    m_->Tick();
  }
  EXPECT_EQ(m_->LockCount(), 2u);
  clock_.Advance(absl::Seconds(11));
  m_->Tick();
  EXPECT_EQ(m_->LockCount(), 1u);
}

TEST_F(LockManagerTest, GlimpseAsksWritersWithoutRevoking) {
  LockInfo a = Enq(kA, Extent(LockMode::kPW, 0, 4095));
  auto id = m_->StartGlimpse(kB, {"obj:ost0:7", LockType::kExtent}, 0,
                             kExtentEof);
  ASSERT_TRUE(id.ok());
  auto ev = Events(kA);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kGlimpse);
  ASSERT_TRUE(m_->AnswerGlimpse(kA, ev[0].glimpse_id, a.handle, 12345).ok());
  auto values = m_->WaitGlimpse(*id, absl::Seconds(1));
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].value, 12345u);
  EXPECT_EQ(m_->LockCount(), 1u);
}

TEST_F(LockManagerTest, TablePersistsAcrossCleanReopen) {
  LockInfo a = Enq(kA, Ibits(LockMode::kPR, kBitLookup));
  LockInfo b = Enq(kB, Plain(LockMode::kEX));
  LockInfo w = Enq(kC, Plain(LockMode::kPR));
  ASSERT_FALSE(w.granted);
  ASSERT_TRUE(m_->Close().ok());
  Reopen();
  EXPECT_FALSE(m_->InRecovery());
  auto locks = m_->Locks();
  ASSERT_EQ(locks.size(), 3u);
  EXPECT_EQ(locks[0].handle, a.handle);
  EXPECT_EQ(locks[0].client_id, kA);
  EXPECT_TRUE(locks[0].granted);
  EXPECT_EQ(locks[1].client_id, kB);
  EXPECT_FALSE(locks[2].granted);
  // The queue carries on: B cancels, C gets its PR.
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  auto ev = Events(kC);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  // Handles are never reused.
  EXPECT_GT(Enq(kA, Plain(LockMode::kNL)).handle, w.handle);
}

// dlm.before_persist=error is a failed table write: the grant stands in
// memory (logged) but an unclean restart no longer has it; after_persist
// fires once the change is stored, which the restart then has.
TEST_F(LockManagerTest, FaultPointsAroundThePersist) {
  ASSERT_TRUE(fault::Configure("dlm.before_persist=error", 1).ok());
  LockInfo a = Enq(kA, Plain(LockMode::kPW));
  EXPECT_TRUE(a.granted);
  EXPECT_EQ(fault::Fired("dlm.before_persist"), 1u);
  ASSERT_TRUE(fault::Configure("dlm.after_persist=error", 1).ok());
  LockInfo b = Enq(kB, Plain(LockMode::kPR, "other"));
  EXPECT_TRUE(b.granted);
  EXPECT_EQ(fault::Fired("dlm.after_persist"), 1u);
  ASSERT_TRUE(fault::Configure("", 1).ok());
  Reopen();  // no Close(): unclean
  auto locks = m_->Locks();
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(locks[0].handle, b.handle);
  EXPECT_EQ(locks[0].client_id, kB);
}

TEST_F(LockManagerTest, UncleanRestartOpensRecoveryWindowForReplay) {
  LockInfo a = Enq(kA, Plain(LockMode::kPW));
  // Simulate a lost record (written only to a cache that died).
  storage::WriteBatch b;
  b.Delete(LockKey(a.handle));
  ASSERT_TRUE(kv_->Write(b).ok());
  Reopen();  // no Close(): unclean
  EXPECT_TRUE(m_->InRecovery());
  EXPECT_EQ(m_->LockCount(), 0u);
  // New enqueues wait while the window is open.
  LockInfo c = Enq(kC, Plain(LockMode::kPR));
  EXPECT_FALSE(c.granted);
  ASSERT_TRUE(m_->Replay(kA, a).ok());
  ASSERT_TRUE(m_->ReplayDone(kA).ok());
  ASSERT_TRUE(m_->ReplayDone(kB).ok());
  ASSERT_TRUE(m_->ReplayDone(kC).ok());
  EXPECT_FALSE(m_->InRecovery());
  // The replayed PW is back and conflicts with C's PR: A is asked back.
  auto ev = Events(kA);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, CallbackEvent::kBlocking);
  // Outside the window a missing lock cannot be replayed.
  LockInfo ghost = a;
  ghost.handle = a.handle + 1000;
  EXPECT_EQ(ToErrno(m_->Replay(kA, ghost)), ESTALE);
}

// Own-change exemption: the MDS (C) takes EX for a change asked by mount A.
TEST_F(LockManagerTest, ExemptEnqueueIgnoresOnlyTheExemptClientsLocks) {
  const LockSpec pr = Ibits(LockMode::kPR, kBitLookup | kBitUpdate);
  const LockSpec ex = Ibits(LockMode::kEX, kBitLookup | kBitUpdate);
  LockInfo a = Enq(kA, pr);
  ASSERT_TRUE(a.granted);
  // A alone holds the resource: granted at once, A is not called back.
  auto e1 = m_->Enqueue(kC, ++xid_, ex, false, false, 0, /*exempt=*/kA);
  ASSERT_TRUE(e1.ok()) << e1.status();
  EXPECT_TRUE(e1->granted);
  EXPECT_EQ(e1->exempt_client, kA);
  EXPECT_TRUE(Events(kA).empty());
  // The reverse does not hold: a new lock of A waits for the EX.
  LockInfo a2 = Enq(kA, Ibits(LockMode::kPR, kBitPerm));
  EXPECT_TRUE(a2.granted);  // other bits
  LockInfo a3 = Enq(kA, pr);
  EXPECT_FALSE(a3.granted);
  ASSERT_EQ(Events(kC).size(), 1u);  // the MDS is asked for its EX
  ASSERT_TRUE(m_->Cancel(kA, a3.handle).ok());
  ASSERT_TRUE(m_->Cancel(kC, e1->handle).ok());
  // B holds PR too: B is called back, A still is not, and the EX waits
  // for B only.
  LockInfo b = Enq(kB, pr);
  ASSERT_TRUE(b.granted);
  auto e2 = m_->Enqueue(kC, ++xid_, ex, false, false, 0, kA);
  ASSERT_TRUE(e2.ok());
  EXPECT_FALSE(e2->granted);
  auto bev = Events(kB);
  ASSERT_EQ(bev.size(), 1u);
  EXPECT_EQ(bev[0].kind, CallbackEvent::kBlocking);
  EXPECT_TRUE(Events(kA).empty());
  ASSERT_TRUE(m_->Cancel(kB, b.handle).ok());
  auto cev = Events(kC);
  ASSERT_EQ(cev.size(), 1u);
  EXPECT_EQ(cev[0].kind, CallbackEvent::kCompletion);
  EXPECT_EQ(cev[0].lock.exempt_client, kA);
  EXPECT_TRUE(Events(kA).empty());
  ASSERT_TRUE(m_->Cancel(kC, e2->handle).ok());
  // An old-style request (no exemption) calls A back as before.
  LockInfo e3 = Enq(kC, ex);
  EXPECT_FALSE(e3.granted);
  EXPECT_EQ(e3.exempt_client, 0u);
  auto aev = Events(kA);
  ASSERT_EQ(aev.size(), 1u);
  EXPECT_EQ(aev[0].kind, CallbackEvent::kBlocking);
}

TEST_F(LockManagerTest, LocksGrantedUnderAnExemptionReplayInAnyOrder) {
  const LockSpec pr = Ibits(LockMode::kPR, kBitLookup);
  const LockSpec ex = Ibits(LockMode::kEX, kBitLookup);
  for (bool ex_first : {true, false}) {
    LockInfo a = Enq(kA, pr);
    auto e = m_->Enqueue(kC, ++xid_, ex, false, false, 0, kA);
    ASSERT_TRUE(e.ok() && e->granted);
    LockInfo bx = Enq(kB, Ibits(LockMode::kPR, kBitXattr));
    storage::WriteBatch b;  // the records are lost
    b.Delete(LockKey(a.handle));
    b.Delete(LockKey(e->handle));
    b.Delete(LockKey(bx.handle));
    ASSERT_TRUE(kv_->Write(b).ok());
    Reopen();  // unclean
    ASSERT_TRUE(m_->InRecovery());
    if (ex_first) {
      ASSERT_TRUE(m_->Replay(kC, *e).ok());
      ASSERT_TRUE(m_->Replay(kA, a).ok());
    } else {
      ASSERT_TRUE(m_->Replay(kA, a).ok());
      ASSERT_TRUE(m_->Replay(kC, *e).ok());
    }
    // A lock of B conflicting with both is refused: the exemption was A's.
    LockInfo other = bx;
    other.spec = ex;
    EXPECT_EQ(ToErrno(m_->Replay(kB, other)), ESTALE);
    for (uint64_t c : {kA, kB, kC}) ASSERT_TRUE(m_->ReplayDone(c).ok());
    EXPECT_EQ(m_->LockCount(), 2u);
    ASSERT_TRUE(m_->Cancel(kA, a.handle).ok());
    ASSERT_TRUE(m_->Cancel(kC, e->handle).ok());
    for (uint64_t c : {kA, kB, kC}) Events(c);
  }
}

TEST_F(LockManagerTest, RecoveryWindowClosesOnTimeout) {
  Enq(kA, Plain(LockMode::kPR));
  Reopen();
  ASSERT_TRUE(m_->InRecovery());
  LockInfo c = Enq(kC, Plain(LockMode::kPR));
  EXPECT_FALSE(c.granted);
  clock_.Advance(absl::Seconds(16));
  m_->Tick();
  EXPECT_FALSE(m_->InRecovery());
  auto ev = Events(kC);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
}

// A holder that never opens a session with the new instance (dead with
// the old one) is evicted when the window closes: a conflicting request
// is granted then, not a callback timeout later.
TEST_F(LockManagerTest, ClientAbsentThroughTheRecoveryWindowIsEvicted) {
  constexpr uint64_t kD = 4;
  ASSERT_TRUE(m_->Connect(kD, "client4").ok());
  Enq(kD, Plain(LockMode::kEX));
  Reopen();  // unclean; A, B, C open sessions, D never does
  ASSERT_TRUE(m_->InRecovery());
  LockInfo c = Enq(kC, Plain(LockMode::kPR));
  EXPECT_FALSE(c.granted);
  for (uint64_t id : {kA, kB, kC}) ASSERT_TRUE(m_->ReplayDone(id).ok());
  ASSERT_TRUE(m_->InRecovery());  // D is still awaited
  clock_.Advance(absl::Seconds(16));
  m_->Tick();
  EXPECT_FALSE(m_->InRecovery());
  auto ev = Events(kC);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  for (const auto& l : m_->Locks()) EXPECT_NE(l.client_id, kD);
}

TEST_F(LockManagerTest, OpenSessionResendsGrantsAndBlockingCallbacks) {
  LockInfo a = Enq(kA, Plain(LockMode::kPR));
  Enq(kB, Plain(LockMode::kEX));
  auto gen = m_->OpenSession(kA);
  ASSERT_TRUE(gen.ok());
  gen_[kA] = *gen;
  auto ev = Events(kA);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, CallbackEvent::kCompletion);
  EXPECT_EQ(ev[1].kind, CallbackEvent::kBlocking);
  EXPECT_EQ(ev[1].lock.handle, a.handle);
}

}  // namespace
}  // namespace stripefs::dlm
