// WriteBehind: an ObjectIo over another one (the OST RPCs) that buffers
// writes in the mount and sends them asynchronously (docs/internals.md
// "Data path"). Used only with a lock service: the data of a write is
// buffered while the writer holds its PW extent lock in use, and the lock's
// blocking callback writes it back (WriteBack) before the lock goes, so no
// other mount can see the object without it (data_locks.h).
//  - Write: copies the bytes into the object's dirty extents and returns;
//    waits first while the mount (max_dirty) or the object
//    (max_object_dirty) holds too much (buffered + in flight). Returns the
//    object's pending write-back error, if any, instead.
//  - Write-back: per object at most one batch in flight (so overlapping
//    writes reach the OST in order); the extents of a batch are disjoint,
//    adjacent small ones (below flush_chunk) are coalesced into RPCs of up
//    to max_rpc, big ones sent as they are (no copy), and the
//    batches of different objects run in parallel on `threads` workers. A
//    batch starts when the object has a contiguous extent of flush_chunk,
//    when the object or the mount is past half its limit, when the data is
//    older than max_age, and whenever someone waits for it.
//  - Read, Truncate: write the object's dirty data back first (a read of
//    this mount sees its own writes; a truncate cuts after them).
//  - Flush (close), Sync (fsync): write back the objects, then report and
//    clear their pending error (like the kernel's AS_EIO: a failed
//    asynchronous write-back is reported once, on the next fsync or close;
//    a write to the object meanwhile fails with it too).
//  - WriteBack(ost, oid): the blocking callback of a data lock; Discard:
//    the lock was lost, the dirty bytes may not be written any more (the
//    next Flush/Sync/Write of the object reports EIO). FlushOst: before a
//    controlled failover of that OST pauses its requests.
// Thread-safe. The destructor writes everything back.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fuse-client/file_io.h"
#include "fuse-client/thread_pool.h"

namespace stripefs::client {

struct WriteBehindOptions {
  uint64_t max_dirty = uint64_t{256} << 20;        // whole mount
  uint64_t max_object_dirty = uint64_t{64} << 20;  // one object
  uint64_t flush_chunk = uint64_t{1} << 20;
  uint64_t max_rpc = uint64_t{4} << 20;
  absl::Duration max_age = absl::Seconds(2);
  int threads = 8;
};

class WriteBehind : public ObjectIo {
 public:
  // `inner` must outlive this.
  WriteBehind(ObjectIo* inner, WriteBehindOptions options);
  ~WriteBehind() override;
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid,
                                   uint64_t offset, uint32_t len,
                                   const InterruptFn& intr) override;
  absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                     const char* data, size_t len,
                     const InterruptFn& intr) override;
  absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                        const InterruptFn& intr) override;
  absl::Status Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                    const InterruptFn& intr) override;
  absl::Status Flush(const std::vector<ObjectRef>& objects,
                     const InterruptFn& intr) override;

  // Blocking callback of a data lock on (ost, oid): writes its dirty data
  // back and waits (an error stays pending for the next Flush/Sync).
  void WriteBack(uint32_t ost, uint64_t oid);
  // The lock on (ost, oid) is lost: drops its dirty data (waits for a
  // batch in flight); the object's next Flush/Sync/Write fails with EIO.
  void Discard(uint32_t ost, uint64_t oid);
  // Writes back everything buffered for OST `ost` (errors stay pending).
  void FlushOst(uint32_t ost);
  // A controlled failover of `ost`: PauseOst writes its data back, then
  // writes to it wait in Write (their locks in use, so the DLM keeps them)
  // until ResumeOst; nothing is buffered for a paused OST, so no blocking
  // callback waits for its gate.
  void PauseOst(uint32_t ost);
  void ResumeOst(uint32_t ost);

  // Bytes buffered or in flight.
  uint64_t dirty_bytes() const;

 private:
  using Key = std::pair<uint32_t, uint64_t>;
  struct Obj {
    std::map<uint64_t, std::string> dirty;  // offset -> bytes, disjoint
    uint64_t dirty_bytes = 0;               // in `dirty`
    uint64_t inflight = 0;                  // bytes of the batch in flight
    bool busy = false;                      // a batch is in flight
    bool big = false;  // an extent reached flush_chunk
    int waiters = 0;                        // someone waits for it clean
    absl::Time since = absl::InfiniteFuture();  // oldest dirty byte
    absl::Status error;                     // pending write-back error
  };
  using Batch = std::map<uint64_t, std::string>;

  void Insert(Obj& o, uint64_t offset, const char* data, size_t len)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a batch of o when it is idle and dirty and `force` or one of
  // the reasons in the header holds.
  void MaybeStart(const Key& k, Obj& o, bool force)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunBatch(Key k, Batch batch);
  // Sends (and consumes) the batch; the first error.
  absl::Status SendBatch(const Key& k, Batch& batch);
  // Writes back every key and waits until each is clean; returns the
  // first pending error (cleared when `take`).
  absl::Status FlushKeys(const std::vector<Key>& keys, bool take);
  void AgeLoop();
  void Forget(const Key& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ObjectIo* const inner_;
  const WriteBehindOptions opts_;
  mutable absl::Mutex mu_;
  std::map<Key, Obj> objs_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;  // buffered + in flight
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::set<uint32_t> paused_ ABSL_GUARDED_BY(mu_);
  ThreadPool pool_;
  std::thread age_thread_;
};

}  // namespace stripefs::client
