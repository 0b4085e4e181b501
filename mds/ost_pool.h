// OstPool: what the MDS needs from the object storage targets — precreate
// objects on OST i, destroy objects, statfs of each OST, and the list of
// OSTs (the target registry). Two implementations: a gRPC one that talks to
// stripefs-oss (NewGrpcOstPool) and an in-memory fake for unit tests
// (FakeOstPool). Both are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stripefs::dlm {
class DlmClient;
}  // namespace stripefs::dlm

namespace stripefs::mds {

struct OstTarget {
  uint32_t index = 0;
  std::string address;
  // False: deactivated by the administrator (no new objects on it).
  bool active = true;
  // With !active: mounts fail I/O to the target's objects at once (EIO)
  // instead of going on with it (`stripefs target deactivate --fail-io`).
  bool fail_io = false;
  bool operator==(const OstTarget&) const = default;
};

struct OstStatfs {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t avail_bytes = 0;
  uint64_t objects = 0;
};

struct ObjectRange {
  uint64_t first_oid = 0;  // objects [first_oid, first_oid + count) exist
  uint32_t count = 0;
};

class OstPool {
 public:
  virtual ~OstPool() = default;
  // The registry, ordered by index: a copy (targets come and go online,
  // mds/target_registry.h).
  virtual std::vector<OstTarget> Targets() const = 0;
  // A new target (index not in use): connects to it (the first call does
  // the handshake) and lists it. EEXIST for a known index.
  virtual absl::Status AddTarget(const OstTarget& target) {
    return absl::UnimplementedError("targets cannot be added to this pool");
  }
  // Drops a target from the registry (ENOENT when unknown); calls to it
  // fail from then on.
  virtual absl::Status RemoveTarget(uint32_t index) {
    return absl::UnimplementedError("targets cannot be removed from this pool");
  }
  // Sets `active` and `fail_io` of a known target (ENOENT otherwise).
  virtual absl::Status SetTargetState(uint32_t index, bool active,
                                      bool fail_io) {
    return absl::UnimplementedError("target states are fixed in this pool");
  }
  // `wait`: how long the call may take in all (at a closed gate, and
  // resending to an OSS that is away); then EAGAIN or the last error.
  virtual absl::StatusOr<ObjectRange> Precreate(uint32_t ost, uint32_t count,
                                                absl::Duration wait) = 0;
  // Unknown oids are skipped (destroy is idempotent).
  virtual absl::Status Destroy(uint32_t ost,
                               const std::vector<uint64_t>& oids) = 0;
  virtual absl::StatusOr<OstStatfs> Statfs(uint32_t ost) = 0;
  // The same, giving up after `wait` (the allocator's background refresh,
  // which must not hold up a stop for an OSS that is away).
  virtual absl::StatusOr<OstStatfs> Statfs(uint32_t ost,
                                           absl::Duration wait) {
    return Statfs(ost);
  }
  // Controlled failover of the OSTs (conn/active_gate.h): holds PR on
  // active:ost<i> for every OST; while an OST's server is stopping, calls
  // to it wait before they are formatted (within the call's retry window,
  // then EAGAIN), and go on after a new handshake with the next instance.
  // `dlm` must outlive the pool or StopWatching. Default: nothing.
  virtual void WatchActive(dlm::DlmClient* dlm) {}
  virtual void StopWatching() {}
};

// Talks to each OST at its address through conn::OstClient, as a mount
// does: the connection starts with the Connect handshake, every send has a
// deadline (Precreate: at most its `wait`), and a call that finds the OSS
// unreachable (restarting, killed) is resent with the same xid after a
// reconnect for up to 30 s (Statfs: 10 s) before it fails. client_id names
// the MDS in request headers.
std::unique_ptr<OstPool> NewGrpcOstPool(std::vector<OstTarget> targets,
                                        uint64_t client_id);

// $STRIPEFS_TEST_PRECREATE_BATCH=N (tests; unset: nothing changes): sets
// the MDS's precreate batch (MdsOptions::precreate_batch) to N and its low
// water mark to N/2 (at least 1), so its pools stay small and creates call
// the OSTs often. Logs the setting; a bad value is logged and ignored.
void ApplyTestPrecreateBatch(uint32_t* batch, uint32_t* low_water);

// In-memory OSTs: object ids count up from 1 per OST; records what exists.
class FakeOstPool : public OstPool {
 public:
  explicit FakeOstPool(uint32_t n_osts);
  std::vector<OstTarget> Targets() const override;
  absl::Status AddTarget(const OstTarget& target) override;
  absl::Status SetTargetState(uint32_t index, bool active,
                              bool fail_io) override;
  absl::Status RemoveTarget(uint32_t index) override;
  absl::StatusOr<ObjectRange> Precreate(uint32_t ost, uint32_t count,
                                        absl::Duration wait) override;
  absl::Status Destroy(uint32_t ost,
                       const std::vector<uint64_t>& oids) override;
  absl::StatusOr<OstStatfs> Statfs(uint32_t ost) override;

  // Test controls and probes.
  void SetFailing(uint32_t ost, bool failing);
  // What Statfs(ost) reports from now on (default: 1 GiB total, half free).
  void SetStatfs(uint32_t ost, uint64_t total_bytes, uint64_t avail_bytes);
  // While blocked, Precreate calls wait (and then go on as usual).
  void BlockPrecreates(bool blocked);
  // Precreate calls waiting at the block now.
  int blocked_precreates() const;
  bool Exists(uint32_t ost, uint64_t oid) const;
  size_t ObjectCount(uint32_t ost) const;
  int precreate_calls() const;
  absl::Duration last_precreate_wait() const;
  std::vector<uint64_t> destroyed(uint32_t ost) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<OstTarget> targets_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, uint64_t> next_oid_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::set<uint64_t>> objects_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::vector<uint64_t>> destroyed_ ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> failing_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> space_
      ABSL_GUARDED_BY(mu_);  // ost -> (total, avail)
  int precreate_calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool block_ ABSL_GUARDED_BY(mu_) = false;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration last_precreate_wait_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::mds
