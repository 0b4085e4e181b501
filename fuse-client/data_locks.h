// DataLocks: file data coherence of a mount with a lock service.
// Thread-safe.
//
// Protocol (resource "data:<ino>", PLAIN):
//  - A read through the daemon holds PR in use while it reads the OSTs; a
//    write holds PW in use while it writes the OSTs (OSS writes are
//    synchronous) and, when it extends the file, while it reports the new
//    size to the MDS (UpdateSize). Afterwards the lock stays cached, and
//    the kernel page cache of the file is valid while it is cached.
//  - The size is therefore on the MDS before any other mount can get a
//    conflicting lock: the blocking callback never needs an RPC (it cannot
//    make one safely: the MDS's EX lock taken by UpdateSize would need the
//    callback of this mount's metadata lock, which the library runs on the
//    same single worker thread).
//  - OnBlocking (PR or PW asked back, LRU drop or loss): bumps the data
//    generation (a reader refetches the size from the MDS when it changed)
//    and drops the kernel's cached pages of the inode with
//    fuse_lowlevel_notify_inval_inode on a separate invalidator thread. The
//    callback waits for that at most kInvalWait: the kernel may hold a page
//    lock of this inode for a read of this mount that waits for a data lock
//    that waits for this very callback; after the timeout the callback
//    returns (the lock goes, that read proceeds and releases the page) and
//    the invalidation completes later.
//    Exception: when this mount's own write is converting its cached PR to
//    PW, the kernel holds the pages of that write locked while it waits, so
//    a PR asked back while a PW request of this mount on the same inode is
//    pending does not invalidate (our own write keeps the cache right).
//
// Lock order: a request holds at most one data lock in use and never waits
// for a metadata lock while holding it (UpdateSize only waits for the MDS).
// mu_ is never held across a DLM call or a kernel notification.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dlm/dlm_client.h"
#include "fuse-client/request_gate.h"

struct fuse_session;

namespace stripefs::client {

inline constexpr char kDataPrefix[] = "data:";

class DataLocks : public dlm::LockHandler {
 public:
  static constexpr absl::Duration kInvalWait = absl::Seconds(2);

  // Registers itself for "data:" with dlm (which must outlive it).
  explicit DataLocks(dlm::DlmClient* dlm);
  ~DataLocks() override;
  DataLocks(const DataLocks&) = delete;
  DataLocks& operator=(const DataLocks&) = delete;

  // Where kernel page invalidations go; null (the default) skips them.
  // Setting null waits for an invalidation in progress to finish.
  void set_session(fuse_session* se);

  // PR (write=false) or PW on data:<ino>, in use until Release.
  absl::StatusOr<dlm::LockInfo> Lock(uint64_t ino, bool write,
                                     const InterruptFn& interrupted);
  void Release(const dlm::LockInfo& lock);

  // Changes whenever any data lock of this mount is given back: sizes and
  // pages learnt before may be stale.
  uint64_t Gen() const;

  void OnBlocking(const dlm::LockInfo& lock, bool lost) override;

 private:
  struct Inval {
    uint64_t ino = 0;
    bool done = false;
  };
  void InvalLoop();

  dlm::DlmClient* const dlm_;
  mutable absl::Mutex mu_;
  fuse_session* se_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t gen_ ABSL_GUARDED_BY(mu_) = 1;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a notification is running
  std::deque<std::shared_ptr<Inval>> queue_ ABSL_GUARDED_BY(mu_);
  // Inode -> PW requests of this mount waiting for their grant.
  absl::flat_hash_map<uint64_t, int> pending_writes_ ABSL_GUARDED_BY(mu_);
  std::thread inval_thread_;
};

}  // namespace stripefs::client
