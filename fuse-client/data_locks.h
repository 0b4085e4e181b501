// DataLocks: file data coherence of a mount with a lock service.
// Thread-safe.
//
// Protocol (resources "obj:<ost_index>:<object_id>", EXTENT, object bytes):
//  - A read through the daemon holds PR in use on every object its file
//    range touches, over the object byte range it touches, while it reads
//    the OSTs; a write holds PW the same way while it writes the OSTs (OSS
//    writes are synchronous) and, when it extends the file, while it
//    reports the new size to the MDS (UpdateSize). One lock per object,
//    taken in resource-name order (no deadlock between two I/Os). The DLM
//    may grant a wider range than asked (expansion): a sequential writer
//    keeps one growing lock, and writers of disjoint regions of one file
//    (N-to-1) end up with disjoint locks. Afterwards the locks stay cached,
//    and the kernel page cache of the file is valid while they are.
//    Expansion alone ping-pongs: a waiter is granted (and widened) once the
//    lock it waited for is gone, so two alternating writers would swap a
//    whole-object lock on every write. Hence contention mode: for
//    kContendedFor after a lock on an object was asked back, this mount
//    asks for that object's locks `exact` (LockOptions::exact), rounded out
//    to whole chunks (ContendedChunk: the object bytes of a kContendedChunk
//    aligned file region, at least one stripe unit): writers of disjoint
//    aligned regions then hold disjoint chunk locks and stop conflicting
//    after the first round.
//  - O_APPEND needs the true end of file: it takes PW over [0, EOF] of
//    every object of the file (LockWhole), so every other writer's size is
//    on the MDS before it looks.
//  - The size is therefore on the MDS before any other mount can get a
//    conflicting lock: the blocking callback never needs an RPC (it cannot
//    make one safely: the MDS's EX lock taken by UpdateSize would need the
//    callback of this mount's metadata lock, which the library runs on the
//    same single worker thread).
//  - Truncate: with `stripefs-oss --dlm` the OSS takes PW over
//    [new object size, EOF] before it cuts the object (EX over all of it
//    before destroying it), so every mount caching pages there drops them
//    first. The truncating mount never holds a data lock in use across the
//    Truncate RPC (that would deadlock with the OSS's lock); after the OSS
//    answered it takes the same PW itself once (RevokeBeyond), which also
//    covers an OSS started without --dlm.
//  - Write-behind (write_behind.h, with -o write_behind; off by default): a
//    write's data may stay buffered in the mount after the write returned,
//    under the PW lock it was written with. OnBlocking of a PW lock first
//    writes back every buffered byte of its object (OST Write RPCs only,
//    no MDS RPC: the size of an extending write is still reported while
//    the write holds its lock); a lost lock drops them and the file's next
//    fsync/close fails with EIO.
//  - OnBlocking (asked back, LRU drop or loss): bumps the data generation
//    (a reader refetches the size from the MDS when it changed) and drops
//    the kernel's cached pages of the file range the lock's object range
//    spans (from the file offset of its first byte to that of its last)
//    with fuse_lowlevel_notify_inval_inode on a separate invalidator
//    thread. The
//    callback waits for that at most kInvalWait: the kernel may hold a page
//    lock of this inode for a read of this mount that waits for a data lock
//    that waits for this very callback; after the timeout the callback
//    returns (the lock goes, that read proceeds and releases the page) and
//    the invalidation completes later.
//    Exception: while this mount's own write waits for its PW locks (e.g.
//    converting a cached PR), the kernel holds the pages of that write
//    locked, so the pages of the file range of every write of this inode
//    still waiting are left out (that write keeps them right).
//  - The inode of an object is learnt when this mount locks it (objects
//    belong to one file for their whole life); the map only grows.
//
// Lock order: a request holds data locks of one inode only (taken in name
// order) and never waits for a metadata lock while holding them (UpdateSize
// only waits for the MDS). mu_ is never held across a DLM call or a kernel
// notification.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "dlm/dlm_client.h"
#include "fuse-client/file_io.h"
#include "fuse-client/request_gate.h"
#include "fuse-client/write_behind.h"

struct fuse_session;

namespace stripefs::client {

inline constexpr char kObjPrefix[] = "obj:";

// "obj:<ost>:<oid>": the DLM resource of one OST object.
std::string ObjResource(uint32_t ost, uint64_t oid);
// The inverse of ObjResource; false for another name.
bool ParseObjResource(absl::string_view name, uint32_t* ost, uint64_t* oid);

// Per object of a layout, the inclusive object byte range that the file
// range [offset, offset + length) touches; objects not touched are absent.
struct ObjectExtent {
  uint32_t stripe = 0;
  uint64_t start = 0;
  uint64_t end = 0;  // inclusive
};
std::vector<ObjectExtent> ObjectExtents(const FileLayout& layout,
                                        uint64_t offset, uint64_t length);

// Object bytes of one contention-mode lock: whole stripe units, as many as
// make up DataLocks::kContendedChunk of file per row of the layout.
uint64_t ContendedChunk(const FileLayout& layout);

class DataLocks : public dlm::LockHandler {
 public:
  static constexpr absl::Duration kInvalWait = absl::Seconds(2);
  static constexpr uint64_t kContendedChunk = uint64_t{1} << 20;
  static constexpr absl::Duration kContendedFor = absl::Seconds(30);

  // Registers itself for "obj:" with dlm (which must outlive it). `clock`
  // (null: the real one) times contention mode.
  explicit DataLocks(dlm::DlmClient* dlm, Clock* clock = nullptr);
  ~DataLocks() override;
  DataLocks(const DataLocks&) = delete;
  DataLocks& operator=(const DataLocks&) = delete;

  // Buffered writes of this mount (write_behind.h), written back by the
  // blocking callback of a PW lock before it goes (dropped when the lock
  // was lost). Null (the default): writes are synchronous. Set before use.
  void set_write_behind(WriteBehind* wb) { wb_ = wb; }
  // Checked for each object before its lock is taken: a target whose I/O
  // fails (deactivated with fail_io) fails the call at once instead of
  // waiting for other mounts' locks. Set before use; null: none.
  void set_ost_check(std::function<absl::Status(uint32_t ost)> check) {
    ost_check_ = std::move(check);
  }
  // Cancels the unused cached locks of every object on OST `ost` (a target
  // taken out of service), each written back and invalidated first.
  void CancelOst(uint32_t ost);

  // Where kernel page invalidations go; null (the default) skips them.
  // Setting null waits for an invalidation in progress to finish.
  void set_session(fuse_session* se);

  // PR (write=false) or PW on the objects that [offset, offset+length) of
  // inode `ino` touches, in use until Release. On error nothing is held.
  absl::StatusOr<std::vector<dlm::LockInfo>> Lock(
      uint64_t ino, const FileLayout& layout, uint64_t offset,
      uint64_t length, bool write, const InterruptFn& interrupted);
  // PR or PW over [0, EOF] of every object of the file.
  absl::StatusOr<std::vector<dlm::LockInfo>> LockWhole(
      uint64_t ino, const FileLayout& layout, bool write,
      const InterruptFn& interrupted);
  void Release(const std::vector<dlm::LockInfo>& locks);

  // After object (ost, oid) was cut to `size`: takes PW over [size, EOF]
  // once and releases it, so that no other mount keeps pages beyond it.
  absl::Status RevokeBeyond(uint32_t ost, uint64_t oid, uint64_t size,
                            const InterruptFn& interrupted);

  // Changes whenever any data lock of this mount is given back: sizes and
  // pages learnt before may be stale.
  uint64_t Gen() const;

  void OnBlocking(const dlm::LockInfo& lock, bool lost) override;

 private:
  struct Inval {
    uint64_t ino = 0;
    // File ranges [start, end) of the pages to drop; end kExtentEof: to
    // the end of the file.
    std::vector<std::pair<uint64_t, uint64_t>> pieces;
    bool done = false;
  };
  // The file an object belongs to and where the object lies in it.
  struct Owner {
    uint64_t ino = 0;
    uint64_t stripe_size = 0;
    uint64_t stripe_count = 0;
    uint32_t stripe = 0;
  };
  struct Want {
    std::string name;
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t chunk = 1;  // contention mode rounds to this (object bytes)
    Owner owner;
  };
  // [file_start, file_end): the file range of the I/O (pages it locks).
  absl::StatusOr<std::vector<dlm::LockInfo>> LockAll(
      uint64_t ino, std::vector<Want> wants, bool write, uint64_t file_start,
      uint64_t file_end, const InterruptFn& interrupted);
  void InvalLoop();

  dlm::DlmClient* const dlm_;
  Clock* const clock_;
  WriteBehind* wb_ = nullptr;
  std::function<absl::Status(uint32_t ost)> ost_check_;
  mutable absl::Mutex mu_;
  fuse_session* se_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t gen_ ABSL_GUARDED_BY(mu_) = 1;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a notification is running
  std::deque<std::shared_ptr<Inval>> queue_ ABSL_GUARDED_BY(mu_);
  // Inode -> page-aligned file ranges [start, end) of this mount's writes
  // waiting for their PW locks.
  absl::flat_hash_map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>>
      pending_writes_ ABSL_GUARDED_BY(mu_);
  // Object resource name -> its file.
  absl::flat_hash_map<std::string, Owner> owner_ ABSL_GUARDED_BY(mu_);
  // Object resource name -> end of its contention mode.
  absl::flat_hash_map<std::string, absl::Time> contended_ ABSL_GUARDED_BY(mu_);
  std::thread inval_thread_;
};

}  // namespace stripefs::client
