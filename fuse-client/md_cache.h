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
// Own changes (own-change exemption, docs/internals.md "Metadata
// coherence"): this mount's namespace changes ask the MDS (own_md_cache) to
// leave its locks in place, so their effect is put into this cache here:
// BeginChange(dir) before the request, EndChange after the reply. The
// change is applied only if this mount's lock on dir was granted at
// BeginChange and not lost since (no drop of dir in between: dir's
// generation is unchanged); otherwise dir's cache is dropped. While a
// change of dir is in flight, dir's cached answers are not served and no
// fill of dir is accepted.
//
// Generations: each inode has one, bumped by every Drop (callback, early
// cancel, lost lock) and every EndChange. A fill (Put*) names the
// generation it read before its MDS call (Gen) and is ignored when it has
// changed meanwhile, so a stale answer never overwrites a newer own change.
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
#include "absl/container/flat_hash_set.h"
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

  // gen for Put*: skips the generation check (tests).
  static constexpr uint64_t kAnyGen = 0;
  // ino's generation now (see above): read it before the MDS call whose
  // answer a Put* will cache.
  uint64_t Gen(uint64_t ino);

  std::optional<Entry> GetAttr(uint64_t ino);
  // Call only while holding LockInode(ino). Ignored (false) when ino's
  // generation is no longer `gen` or a change of ino is in flight.
  bool PutAttr(uint64_t ino, const Entry& e, uint64_t gen);

  // Dentry lookup: nullopt = not cached; 0 = cached negative (or absent
  // from a complete directory, see PutListing); else ino.
  std::optional<uint64_t> GetDentry(uint64_t parent, const std::string& name);
  // Call only while holding LockInode(parent). ino 0 = negative. `gen`:
  // parent's, as PutAttr.
  bool PutDentry(uint64_t parent, const std::string& name, uint64_t ino,
                 uint64_t gen);

  // A directory's complete listing (entries without attributes).
  std::shared_ptr<const std::vector<DirEntry>> GetListing(uint64_t ino);
  // Call only while holding LockInode(ino). Also caches the dentries, and
  // the directory is "complete": a name absent from its dentries is known
  // absent (no MDS Lookup) until the directory is dropped; own changes
  // (EndChange) keep it complete. `gen`: as PutAttr.
  bool PutListing(uint64_t ino, std::vector<DirEntry> entries, uint64_t gen);
  // Complete-directory probe (Fs::ProbeListing): true while a whole
  // listing of dir may be worth fetching (not complete, not marked too
  // big, no change in flight, not bypassed, its lock not asked back soon
  // after it was taken twice in a row lately).
  bool WorthProbing(uint64_t dir);
  // The probe found dir bigger than one batch (or could not list it): not
  // probed again until it is dropped. Call only while holding LockInode(dir); `gen` as PutAttr.
  void MarkBig(uint64_t dir, uint64_t gen);

  // Drops what is cached about ino (attributes, dentries, listing).
  void Drop(uint64_t ino);

  // Create's intent lock (CreateRequest.intent_dlm_client): PrepareIntent
  // before the Create, then AdoptIntent exactly once after it with the new
  // inode's attributes and the reply's lock handle (e null or handle 0:
  // none came). The lock is adopted into the DlmClient (held like one this
  // mount took) and the attributes, which the MDS read after its grant,
  // are cached under it, unless the inode was dropped since PrepareIntent
  // (a callback or a lost lock). Returns whether they were cached.
  struct Intent {
    dlm::DlmClient::AdoptToken token;
    uint64_t gen_mark = 0;  // next_gen_ at PrepareIntent
  };
  Intent PrepareIntent();
  bool AdoptIntent(const Intent& in, const Entry* e, uint64_t handle);

  // An own namespace change in directory `dir` (see above).
  struct Change {
    uint64_t dir = 0;
    uint64_t gen = 0;   // dir's generation at BeginChange
    bool held = false;  // this mount's lock on dir was granted then
  };
  Change BeginChange(uint64_t dir);
  // After the reply. `ok`: the MDS made the change. `name` in dir now
  // names `child` (0: nothing, after an unlink/rmdir); dir's listing is
  // dropped and its attributes replaced by `dir_after` (the reply's, read
  // by the MDS right after the change) or dropped (null); `changed`'s
  // attributes are dropped (an inode the change altered; 0: none).
  void EndChange(const Change& c, bool ok, const std::string& name,
                 uint64_t child, uint64_t changed,
                 const Entry* dir_after = nullptr);

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
  // Directories whose dentries_ hold every name (PutListing), and those a
  // probe found too big; both forgotten by a drop.
  absl::flat_hash_set<uint64_t> complete_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> big_ ABSL_GUARDED_BY(mu_);
  // Generations (see above): inodes absent here are at gen_floor_.
  uint64_t BumpLocked(uint64_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t GenLocked(uint64_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FillOkLocked(uint64_t ino, uint64_t gen)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropLocked(uint64_t ino) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t next_gen_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t gen_floor_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, uint64_t> gens_ ABSL_GUARDED_BY(mu_);
  // Own changes in flight, per directory.
  absl::flat_hash_map<uint64_t, int> pending_ ABSL_GUARDED_BY(mu_);
  // Inodes whose lock this mount has taken and not lost since (NoteTaken
  // adds, the blocking callback removes).
  absl::flat_hash_set<uint64_t> held_ ABSL_GUARDED_BY(mu_);
};

// The one place where a metadata read goes lock -> check -> call -> fill:
//   1. check(): answered from the cache (no lock, no request);
//   2. md null (no lock service), or ino contended (MdCache::Bypassed):
//      call() alone, nothing cached;
//   3. otherwise this mount's PR lock on ino, check() again (another
//      request may have filled the cache while this one waited), else
//      call() and fill(result, gen) while the lock is still held (a
//      blocking callback, which runs only after the release, drops it
//      again), then the release. gen: ino's generation read before call(),
//      for the Put* of fill (an own change or a drop meanwhile wins).
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
  const uint64_t gen = md->Gen(ino);
  out.reply = call();
  fill(out.reply, gen);
  md->Release(*l);
  return out;
}

}  // namespace stripefs::client
