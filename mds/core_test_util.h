// What the MdsCore unit tests (mds_core_test, reply_records_test,
// client_leases_test) share: the errno of a result, the root credential and
// a fixture that runs an MdsCore over an in-memory store and fake OSTs and
// can restart it over the same store (a restart of the MDS: what is on disk
// stays, what was in memory is gone). Test-only; not thread-safe (a fixture
// belongs to one test).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/fake_clock.h"
#include "common/fault_points.h"
#include "gtest/gtest.h"
#include "mds/mds_core.h"
#include "mds/ost_pool.h"
#include "storage/kv.h"

namespace stripefs::mds {

inline const Cred kRoot{0, 0, {}};

// The errno the client would see for a result (0 when it is ok).
template <typename T>
int Err(const absl::StatusOr<T>& r) {
  return ToErrno(r.status());
}
inline int Err(const absl::Status& s) { return ToErrno(s); }

class CoreTestBase : public ::testing::Test {
 protected:
  // `n_osts` fake OSTs. The core runs on clock_ (fake: time moves only by
  // clock_.Advance) unless `real_clock`.
  explicit CoreTestBase(uint32_t n_osts, bool real_clock = false)
      : n_osts_(n_osts), core_clock_(real_clock ? RealClock() : &clock_) {}

  void SetUp() override {
    store_ = storage::NewMemKv();
    osts_ = std::make_unique<FakeOstPool>(n_osts_);
    Restart();
  }
  // A test that armed fault points must not leave them to the next one.
  void TearDown() override { ASSERT_TRUE(fault::Configure("", 1).ok()); }

  // A new instance over the same store and OSTs. No background threads
  // (tests drive the work themselves); small precreate batches. Elapsed
  // time (MdsOptions::steady_clock) is the core's clock unless opts name
  // another.
  void Restart(MdsOptions opts = {}) {
    core_.reset();
    if (opts.steady_clock == nullptr) opts.steady_clock = core_clock_;
    opts.background_threads = false;
    opts.precreate_batch = 64;
    opts.precreate_low_water = 8;
    core_ = std::make_unique<MdsCore>(store_.get(), osts_.get(), core_clock_,
                                      opts);
    ASSERT_TRUE(core_->Start().ok());
  }

  // The inode `ino` (a test failure and an empty inode when it fails).
  Inode Attr(uint64_t ino) {
    auto r = core_->GetAttr(ino);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Inode{};
  }
  // The names in directory `dir` as root, read a few entries at a time (so
  // that paging is exercised too).
  std::vector<std::string> List(uint64_t dir) {
    std::vector<std::string> names;
    uint64_t cookie = 0;
    while (true) {
      auto r = core_->Readdir(kRoot, dir, cookie, 3, false);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      for (auto& e : r->entries) {
        names.push_back(e.name);
        cookie = e.cookie;
      }
      if (r->eof) break;
    }
    return names;
  }

  FakeClock clock_{absl::FromUnixSeconds(1'700'000'000)};
  const uint32_t n_osts_;
  Clock* const core_clock_;
  std::unique_ptr<storage::KvStore> store_;
  std::unique_ptr<FakeOstPool> osts_;
  std::unique_ptr<MdsCore> core_;
  uint64_t xid_ = 0;
};

}  // namespace stripefs::mds
