// OstAllocator (the order of the OSTs for a new file's objects) alone, and
// through MdsCore over fake OSTs whose statfs the test sets.
#include "mds/ost_allocator.h"

#include <fcntl.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "mds/core_test_util.h"

namespace stripefs::mds {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMiB = uint64_t{1} << 20;

std::vector<AllocCandidate> Targets(const std::vector<uint64_t>& avail,
                                    uint64_t total = 10 * kGiB) {
  std::vector<AllocCandidate> c;
  for (size_t i = 0; i < avail.size(); ++i) {
    c.push_back({uint32_t(i), true, true, avail[i], total});
  }
  return c;
}

// Objects per target over `files` one-object files.
std::map<uint32_t, int> Pick(OstAllocator& a,
                             const std::vector<AllocCandidate>& c, int files,
                             std::vector<uint32_t>* sequence = nullptr) {
  std::map<uint32_t, int> n;
  for (int f = 0; f < files; ++f) {
    std::vector<size_t> order = a.Order(c);
    EXPECT_FALSE(order.empty());
    if (order.empty()) break;
    const uint32_t idx = c[order[0]].index;
    a.Used(idx);
    ++n[idx];
    if (sequence != nullptr) sequence->push_back(idx);
  }
  return n;
}

// How far a count may be from files * p: 4 binomial standard deviations
// (the penalty keeps the counts much closer than independent draws).
double Tolerance(int files, double p) {
  return 4 * std::sqrt(files * p * (1 - p));
}

TEST(OstAllocatorTest, BalancedTargetsAreRoundRobin) {
  // 100, 95, 90 GiB free: 10% apart, within the default 17%.
  OstAllocator a(AllocatorOptions{.seed = 1});
  auto c = Targets({100 * kGiB, 95 * kGiB, 90 * kGiB}, 200 * kGiB);
  EXPECT_TRUE(a.Balanced(c));
  for (int f = 0; f < 9; ++f) {
    std::vector<size_t> order = a.Order(c);
    ASSERT_EQ(order.size(), 3u);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(order[k], (f + k) % 3);
    a.Used(c[order[0]].index);
  }
}

TEST(OstAllocatorTest, UnknownSpaceIsRoundRobin) {
  OstAllocator a(AllocatorOptions{.seed = 1});
  auto c = Targets({100 * kGiB, 1 * kGiB, 1 * kGiB});
  c[1].space_known = false;
  EXPECT_TRUE(a.Balanced(c));
  std::vector<uint32_t> seq;
  Pick(a, c, 6, &seq);
  EXPECT_EQ(seq, (std::vector<uint32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(OstAllocatorTest, UnbalancedTargetsGetTheirShareOfFreeSpace) {
  // Target 2 has 10% of the others' free space: 20% apart, weighted.
  OstAllocator a(AllocatorOptions{.seed = 7});
  auto c = Targets({1000 * kMiB, 1000 * kMiB, 100 * kMiB});
  EXPECT_FALSE(a.Balanced(c));
  const int files = 2000;
  auto n = Pick(a, c, files);
  const double p_small = 100.0 / 2100, p_big = 1000.0 / 2100;
  EXPECT_NEAR(n[2], files * p_small, Tolerance(files, p_small));
  EXPECT_NEAR(n[0], files * p_big, Tolerance(files, p_big));
  EXPECT_NEAR(n[1], files * p_big, Tolerance(files, p_big));
}

TEST(OstAllocatorTest, ThresholdIsAnOption) {
  // 30% apart: weighted by default, round-robin with a 40% threshold.
  auto c = Targets({100 * kGiB, 70 * kGiB});
  EXPECT_FALSE(OstAllocator(AllocatorOptions{}).Balanced(c));
  OstAllocator a(AllocatorOptions{.threshold_rr = 0.40, .seed = 1});
  EXPECT_TRUE(a.Balanced(c));
  auto n = Pick(a, c, 10);
  EXPECT_EQ(n[0], 5);
  EXPECT_EQ(n[1], 5);
}

TEST(OstAllocatorTest, FullTargetOnlyAsLastResort) {
  // Target 1 has less than 0.1% of its total free: full.
  OstAllocator a(AllocatorOptions{.seed = 3});
  auto c = Targets({5 * kGiB, 5 * kMiB, 4 * kGiB});
  EXPECT_TRUE(OstAllocator::Full(c[1]));
  EXPECT_FALSE(OstAllocator::Full(c[0]));
  for (int f = 0; f < 200; ++f) {
    std::vector<size_t> order = a.Order(c);
    ASSERT_EQ(order.size(), 3u);
    EXPECT_EQ(order.back(), 1u);  // still offered, after the others
    a.Used(c[order[0]].index);
  }
  // Under the 1 MiB floor on a small target is full too.
  auto small = Targets({kMiB / 2}, 64 * kMiB);
  EXPECT_TRUE(OstAllocator::Full(small[0]));
}

TEST(OstAllocatorTest, InactiveTargetsAreNeverOffered) {
  OstAllocator a(AllocatorOptions{.seed = 3});
  for (auto avail : {std::vector<uint64_t>{kGiB, kGiB, kGiB},
                     std::vector<uint64_t>{kGiB, 9 * kGiB, 2 * kGiB}}) {
    auto c = Targets(avail);
    c[1].active = false;
    for (int f = 0; f < 50; ++f) {
      std::vector<size_t> order = a.Order(c);
      ASSERT_EQ(order.size(), 2u);
      for (size_t pos : order) EXPECT_NE(pos, 1u);
      a.Used(c[order[0]].index);
    }
  }
}

TEST(OstAllocatorTest, PenaltySpreadsConsecutiveAllocations) {
  // Equal space, weighted (threshold 0): independent draws would repeat
  // the last target half the time; the penalty makes it about a third.
  OstAllocator a(AllocatorOptions{.threshold_rr = 0, .seed = 11});
  auto c = Targets({kGiB, kGiB});
  EXPECT_FALSE(a.Balanced(c));
  std::vector<uint32_t> seq;
  const int files = 2000;
  auto n = Pick(a, c, files, &seq);
  int repeats = 0;
  for (size_t i = 1; i < seq.size(); ++i) repeats += seq[i] == seq[i - 1];
  EXPECT_LT(repeats, (files - 1) * 0.5 - Tolerance(files - 1, 0.5));
  EXPECT_NEAR(n[0], files / 2, Tolerance(files, 0.5));
  // An object adds 1 - share to its target's penalty; a reset clears it.
  const double before = a.penalty(0);
  a.Order(c);
  a.Used(0);
  EXPECT_DOUBLE_EQ(a.penalty(0) - before, 0.5);
  a.ResetPenalty(0);
  EXPECT_EQ(a.penalty(0), 0);
}

TEST(OstAllocatorTest, StripesTakeDistinctTargetsWeighted) {
  OstAllocator a(AllocatorOptions{.seed = 5});
  auto c = Targets({8 * kGiB, kGiB, 4 * kGiB, 2 * kGiB});
  for (int f = 0; f < 100; ++f) {
    std::vector<size_t> order = a.Order(c);
    ASSERT_EQ(order.size(), 4u);
    std::vector<bool> seen(4, false);
    for (size_t pos : order) {
      EXPECT_FALSE(seen[pos]);
      seen[pos] = true;
    }
  }
}

// Through MdsCore: the space comes from the OSTs' statfs
// (RefreshOstSpace), the allocation from the pools.
class MdsAllocationTest : public CoreTestBase {
 protected:
  MdsAllocationTest() : CoreTestBase(3) {}
  void SetUp() override {
    CoreTestBase::SetUp();
    MdsOptions o;
    o.alloc_seed = 17;
    Restart(o);
  }
  // Creates `files` one-object files; objects per OST, and the OSTs in
  // creation order.
  std::map<uint32_t, int> CreateFiles(const std::string& prefix, int files,
                                      std::vector<uint32_t>* seq) {
    std::map<uint32_t, int> n;
    for (int i = 0; i < files; ++i) {
      auto r = core_->Create({5, ++xid_}, kRoot, kRootIno,
                             absl::StrCat(prefix, i), 0644, O_CREAT | O_RDWR);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      EXPECT_EQ(r->inode.layout.objects.size(), 1u);
      const uint32_t ost = r->inode.layout.objects[0].ost;
      ++n[ost];
      seq->push_back(ost);
    }
    return n;
  }
  uint64_t xid_ = 0;
};

TEST_F(MdsAllocationTest, NearlyFullOstGetsItsWeightedShare) {
  // ost2 has 10% of the others' free space.
  osts_->SetStatfs(0, 2 * kGiB, 1000 * kMiB);
  osts_->SetStatfs(1, 2 * kGiB, 1000 * kMiB);
  osts_->SetStatfs(2, 2 * kGiB, 100 * kMiB);
  core_->RefreshOstSpace();
  std::vector<uint32_t> seq;
  const int files = 600;
  auto n = CreateFiles("w", files, &seq);
  const double p = 100.0 / 2100;
  EXPECT_NEAR(n[2], files * p, Tolerance(files, p));
  EXPECT_EQ(n[0] + n[1] + n[2], files);

  // Balanced again (within 17%): exact round-robin.
  osts_->SetStatfs(2, 2 * kGiB, 950 * kMiB);
  core_->RefreshOstSpace();
  seq.clear();
  n = CreateFiles("r", 30, &seq);
  EXPECT_EQ(n[0], 10);
  EXPECT_EQ(n[1], 10);
  EXPECT_EQ(n[2], 10);
  for (size_t i = 1; i < seq.size(); ++i) {
    EXPECT_EQ(seq[i], (seq[i - 1] + 1) % 3) << "file " << i;
  }
}

TEST_F(MdsAllocationTest, FullOstIsSkippedAndStatfsFailureKeepsLastSpace) {
  osts_->SetStatfs(1, 2 * kGiB, 512 * 1024);  // below 0.1% and 1 MiB
  core_->RefreshOstSpace();
  osts_->SetFailing(1, true);  // statfs fails: the last numbers stay
  core_->RefreshOstSpace();
  osts_->SetFailing(1, false);
  std::vector<uint32_t> seq;
  auto n = CreateFiles("f", 40, &seq);
  EXPECT_EQ(n[1], 0);
  EXPECT_EQ(n[0] + n[2], 40);
  // A file on every OST still gets an object on the full one (last).
  auto d = core_->Mkdir({5, ++xid_}, kRoot, kRootIno, "wide", 0755);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(core_->SetLayout({5, ++xid_}, kRoot, d->ino, 0, -1, -1).ok());
  auto r = core_->Create({5, ++xid_}, kRoot, d->ino, "all", 0644,
                         O_CREAT | O_RDWR);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->inode.layout.objects.size(), 3u);
  EXPECT_EQ(r->inode.layout.objects[2].ost, 1u);
  // After its failed statfs ost1 is not asked for 5 s: still full here.
  osts_->SetStatfs(1, 2 * kGiB, 512 * kMiB);
  core_->RefreshOstSpace();
  seq.clear();
  n = CreateFiles("g", 10, &seq);
  EXPECT_EQ(n[1], 0);
  clock_.Advance(absl::Seconds(6));
  core_->RefreshOstSpace();
  seq.clear();
  n = CreateFiles("h", 30, &seq);
  EXPECT_EQ(n[1], 10);  // all balanced: round-robin
}

}  // namespace
}  // namespace stripefs::mds
