// MdCache: the daemon-side metadata cache of a mount with a lock service.
// Attributes (whole Entry) of an inode, the dentries (positive and
// negative) and the listing of a directory are cached only while this mount holds a PR
// IBITS lock on "ino:<N>" (bits kMdBits). The blocking callback of such a
// lock drops everything cached for that inode (its attributes and the
// dentries of which it is the parent) before the library cancels it, so a
// cached answer is always backed by a granted lock.
//
// Adaptive caching: when a lock on a directory (or any inode) has been asked
// back soon after this mount took it (kContendedLife) kContendedRevokes
// times in a row, the inode is "contended":
// for a bypass window (1 s, doubling up to 8 s while the contention goes
// on) lookups, getattrs and listings of it go straight to the MDS without
// enqueueing the lock and without caching. Without this, every create in a
// directory costs a PR/EX ping-pong (the negative lookup caches under PR,
// the MDS's create revokes it). Answers in bypass mode are uncached MDS
// answers, so coherence is unchanged; children returned by a bypassed
// lookup are bypassed for the same window (their attributes would otherwise
// be locked and revoked one by one by the following unlink or rename).
//
// Never wait for one lock while holding another in use (the MDS takes its
// EX locks in inode order and the client must not form a cycle with it).
//
// Thread-safe: one mutex guards the maps; no lock is held across an RPC or
// a DLM call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "dlm/dlm_client.h"
#include "fuse-client/request_gate.h"
#include "fuse-client/mds_api.h"

namespace stripefs::client {

// The IBITS a mount's metadata lock covers.
inline constexpr uint64_t kMdBits = dlm::kBitLookup | dlm::kBitUpdate |
                                    dlm::kBitPerm | dlm::kBitXattr;
inline constexpr char kInoPrefix[] = "ino:";

class MdCache : public dlm::LockHandler {
 public:
  // A lock asked back within this time of being taken marks contention.
  static constexpr absl::Duration kContendedLife = absl::Seconds(2);
  // Quick revokes in a row before bypassing: a few changes (a test that
  // creates ten files, then stats them) keep the cache.
  static constexpr int kContendedRevokes = 16;
  static constexpr absl::Duration kBypassMin = absl::Seconds(1);
  static constexpr absl::Duration kBypassMax = absl::Seconds(8);

  // Registers itself for "ino:" with dlm (which must outlive it). clock:
  // null = real clock.
  explicit MdCache(dlm::DlmClient* dlm, Clock* clock = nullptr);
  ~MdCache() override;
  MdCache(const MdCache&) = delete;
  MdCache& operator=(const MdCache&) = delete;

  // Takes (or reuses) this mount's PR lock on the inode; the result is in
  // use until Release.
  absl::StatusOr<dlm::LockInfo> LockInode(uint64_t ino,
                                          const InterruptFn& interrupted);
  void Release(const dlm::LockInfo& lock) { dlm_->Release(lock.handle); }

  std::optional<Entry> GetAttr(uint64_t ino);
  // Call only while holding LockInode(ino).
  void PutAttr(uint64_t ino, const Entry& e);

  // Dentry lookup: nullopt = not cached; 0 = cached negative; else ino.
  std::optional<uint64_t> GetDentry(uint64_t parent, const std::string& name);
  // Call only while holding LockInode(parent). ino 0 = negative.
  void PutDentry(uint64_t parent, const std::string& name, uint64_t ino);

  // A directory's complete listing (entries without attributes).
  std::shared_ptr<const std::vector<DirEntry>> GetListing(uint64_t ino);
  // Call only while holding LockInode(ino). Also caches the dentries.
  void PutListing(uint64_t ino, std::vector<DirEntry> entries);

  // Drops what is cached about ino (attributes, dentries, listing).
  void Drop(uint64_t ino);

  // Called on a blocking callback after ino's cached state was dropped and
  // before the lock is cancelled (the mount makes the kernel forget the
  // attributes it cached for ino, attr_inval.h). Must be quick. Set before
  // use.
  void set_on_drop(std::function<void(uint64_t)> fn) {
    on_drop_ = std::move(fn);
  }
  // Early lock cancel: the MDS is about to take EX on ino for a change this
  // mount asked for; cancels this mount's idle lock on it now (one Cancel
  // RPC, cache dropped first) instead of being called back while the MDS
  // waits. A lock in use is left to the callback.
  void CancelEarly(uint64_t ino);
  // True while ino's attributes are cached (under a granted lock): only
  // then may the kernel cache them for long.
  bool HasAttr(uint64_t ino);

  // Adaptive caching on (default) or off. Set before use.
  void set_adaptive(bool on) { adaptive_ = on; }

  // True while ino is in its bypass window: ask the MDS, take no lock,
  // cache nothing.
  bool Bypassed(uint64_t ino);
  // Puts child in bypass mode until parent's window ends (a child looked
  // up through a bypassed parent).
  void InheritBypass(uint64_t parent, uint64_t child);
  // Number of requests answered in bypass mode (for tests and stats).
  uint64_t BypassCount();
  // Notes that this mount has taken (or reused) its lock on ino; called by
  // LockInode (public for tests).
  void NoteTaken(uint64_t ino);

  void OnBlocking(const dlm::LockInfo& lock, bool lost) override;

 private:
  struct Contention {
    absl::Time taken;         // when this mount last took the lock (or Past)
    absl::Time bypass_until;  // InfinitePast: not bypassed
    absl::Duration window;    // next bypass window
    int quick = 0;            // quick revokes in a row
  };

  dlm::DlmClient* const dlm_;
  Clock* const clock_;
  std::function<void(uint64_t)> on_drop_;
  bool adaptive_ = true;
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Contention> contention_ ABSL_GUARDED_BY(mu_);
  uint64_t bypassed_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Entry> attrs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, absl::flat_hash_map<std::string, uint64_t>>
      dentries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t,
                      std::shared_ptr<const std::vector<DirEntry>>>
      listings_ ABSL_GUARDED_BY(mu_);
};

// The one place where a metadata read goes lock -> check -> call -> fill:
//   1. check(): answered from the cache (no lock, no request);
//   2. md null (no lock service), or ino contended (MdCache::Bypassed):
//      call() alone, nothing cached;
//   3. otherwise this mount's PR lock on ino, check() again (another
//      request may have filled the cache while this one waited), else
//      call() and fill(result) while the lock is still held (a blocking
//      callback, which runs only after the release, drops it again), then
//      the release.
// `check` returns std::optional<Hit>; `call` returns absl::StatusOr<R>;
// `fill` gets that StatusOr (also a failure: a negative entry). No lock of
// this mount is held when ReadThrough returns (never wait for one lock while
// holding another, see above).
template <typename Hit, typename R>
struct ReadThroughResult {
  std::optional<Hit> hit;  // set: answered by check()
  absl::StatusOr<R> reply = R();  // else: call()'s, or the lock's error
  bool bypassed = false;  // ino was contended: call() ran without a lock
};

template <typename Check, typename Call, typename Fill>
auto ReadThrough(MdCache* md, uint64_t ino, const InterruptFn& interrupted,
                 Check&& check, Call&& call, Fill&& fill)
    -> ReadThroughResult<typename decltype(check())::value_type,
                         typename decltype(call())::value_type> {
  ReadThroughResult<typename decltype(check())::value_type,
                    typename decltype(call())::value_type>
      out;
  if (md == nullptr) {
    out.reply = call();
    return out;
  }
  if ((out.hit = check()).has_value()) return out;
  if (md->Bypassed(ino)) {
    out.reply = call();
    out.bypassed = true;
    return out;
  }
  absl::StatusOr<dlm::LockInfo> l = md->LockInode(ino, interrupted);
  if (!l.ok()) {
    out.reply = l.status();
    return out;
  }
  if ((out.hit = check()).has_value()) {
    md->Release(*l);
    return out;
  }
  out.reply = call();
  fill(out.reply);
  md->Release(*l);
  return out;
}

}  // namespace stripefs::client
