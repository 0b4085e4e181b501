// MdLockTaker: how MdsCore takes the metadata locks of a change, in the
// core's own types. Before a change to what clients may cache (attributes,
// names in a directory, xattrs) the core takes EX locks on the affected
// inodes; clients cache under PR locks on the same inodes, so their caches
// are dropped (blocking callback) before the change is made. Locks are
// taken in ascending inode order, never while MdsCore's mutex is held, and
// released when the change has returned. MdsCore decides which inodes a
// change locks (mds_core_locks.cc); mds/md_locks.h implements the taking
// over the lock service; NoMdLocks (the default) takes none.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace stripefs::mds {

// Locks held for one change; released when destroyed (or Release()).
class MdLocks {
 public:
  MdLocks() = default;
  explicit MdLocks(std::function<void()> release)
      : release_(std::move(release)) {}
  MdLocks(MdLocks&& o) noexcept : release_(std::exchange(o.release_, {})) {}
  MdLocks& operator=(MdLocks&& o) noexcept {
    Release();
    release_ = std::exchange(o.release_, {});
    return *this;
  }
  MdLocks(const MdLocks&) = delete;
  MdLocks& operator=(const MdLocks&) = delete;
  ~MdLocks() { Release(); }

  void Release() {
    std::function<void()> r = std::exchange(release_, {});
    if (r) r();
  }

 private:
  std::function<void()> release_;
};

// Own-change exemption of one change: the mount with DLM client id
// `client` (0: none) applies the change to its own cache, so its locks on
// the directories `inos` do not conflict with the change's EX locks there
// (EnqueueRequest.exempt_client). Other inodes of the change are locked as
// always.
struct Exemption {
  uint64_t client = 0;
  std::vector<uint64_t> inos;
  uint64_t For(uint64_t ino) const {
    if (client == 0) return 0;
    for (uint64_t i : inos) {
      if (i == ino) return client;
    }
    return 0;
  }
};

class MdLockTaker {
 public:
  virtual ~MdLockTaker() = default;
  // False: no lock service, LockInodes takes nothing (and MdsCore does not
  // resolve names to lock them).
  virtual bool enabled() const = 0;
  // EX on every inode of `inos` (0s and duplicates ignored), in ascending
  // order; all of them or none (an error releases what was taken).
  // `exempt`: which of them leave the asking mount's locks in place.
  virtual absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t> inos,
                                             const Exemption& exempt) = 0;
  // Intent lock: a PR lock with `bits` on ino in the name of the mount
  // whose DLM client id is `owner` (request id (owner, xid)), granted at
  // once or not at all (never waits); returns its handle, which the mount
  // adopts. Default: none (UNIMPLEMENTED).
  virtual absl::StatusOr<uint64_t> GrantFor(uint64_t owner, uint64_t xid,
                                            uint64_t ino, uint64_t bits) {
    return absl::UnimplementedError("no intent locks");
  }
};

// Without a lock service: every call is a no-op.
class NoMdLocks final : public MdLockTaker {
 public:
  bool enabled() const override { return false; }
  absl::StatusOr<MdLocks> LockInodes(std::vector<uint64_t>,
                                     const Exemption&) override {
    return MdLocks();
  }
};

}  // namespace stripefs::mds
