// TargetRegistry: the OSTs of the cluster as the MDS records them (index,
// address, state) in its store, and the changes an administrator makes
// while the cluster runs (issue 15, seed 004): add a target, deactivate it
// (no new objects; with fail_io mounts also fail its I/O at once), activate
// it again, remove it once it holds nothing. Every party follows a change live: after it is committed the
// registry calls `changed`, with which the MDS takes EX on the `config`
// lock; the mounts hold PR on it and re-read GetConfig when it is called
// back (fuse-client/config_watch.h).
//
// The MDS's --ost flags seed it: a flag's target missing from the store is
// added (active), a flag's address replaces the stored one (a target moved);
// a stored target missing from the flags stays (a CLI that did not know of
// it yet). The store is the authority for states.
//
// Thread-safe: changes are serialized by the registry's mutex; the OstPool
// and MdsCore it calls are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mds/ost_pool.h"
#include "storage/kv.h"

namespace stripefs::mds {

class MdsCore;

// The store's targets merged with the flags' (see above), written back.
[[nodiscard]] absl::StatusOr<std::vector<OstTarget>> LoadTargets(
    storage::KvStore* store, const std::vector<OstTarget>& flags);

class TargetRegistry {
 public:
  // All pointers must outlive the registry.
  TargetRegistry(storage::KvStore* store, OstPool* pool, MdsCore* core,
                 std::function<void()> changed)
      : store_(store), pool_(pool), core_(core), changed_(std::move(changed)) {}

  // A new OST at `address` (HOST:PORT of a running stripefs-oss). It is
  // recorded inactive, connected, given its first precreated objects (so
  // its object ids are agreed before any file uses it), then made active.
  // EEXIST: the index or the address is in use; EINVAL: a bad address;
  // EAGAIN: the OSS did not answer a precreate within `wait` (the target
  // then stays recorded, inactive: `activate` it once it answers).
  [[nodiscard]] absl::Status Add(uint32_t index, const std::string& address,
                                 absl::Duration wait);
  // Deactivate (active=false, optionally fail_io) or activate (active=true,
  // fail_io=false). ENOENT: unknown index; EBUSY: it would leave no active
  // OST for new files.
  [[nodiscard]] absl::Status SetState(uint32_t index, bool active,
                                      bool fail_io);
  // Drops a deactivated target from the registry and from every party's
  // configuration. EBUSY: it is active, or the last target; ENOTEMPTY:
  // files have objects on it (drain it first) unless `force`, which leaves
  // those files with holes where it was (their I/O there fails).
  [[nodiscard]] absl::Status Remove(uint32_t index, bool force);

 private:
  absl::Status Record(const OstTarget& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  storage::KvStore* const store_;
  OstPool* const pool_;
  MdsCore* const core_;
  const std::function<void()> changed_;
  absl::Mutex mu_;  // one change at a time
};

}  // namespace stripefs::mds
