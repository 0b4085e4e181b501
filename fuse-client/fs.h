// Fs: the filesystem operations of a stripefs mount, independent of FUSE
// types. Names, attributes and permissions go to the MDS (which enforces
// permissions with the caller's credentials); file data goes to the OSTs
// through FileIo. Per-open-inode state (refcounted by opens) keeps the size
// this mount knows (max of the MDS size and the end of its own writes) and
// whether the MDS must be told (UpdateSize on flush, fsync and release).
// With a lock service, attributes, dentries and directory listings are
// cached in an MdCache under PR IBITS locks (see md_cache.h).
//
// Metadata goes through an MdsApi (mds_api.h): GrpcMds in a mount, an
// in-process MDS in unit tests; every cached read goes through one
// lock -> check -> call -> fill sequence (ReadThrough, md_cache.h).
// Without a lock service (set_dlm(nullptr), the default) nothing is cached.
//
// Thread-safe. Lock order: open_mu_ before InodeState::mu; no lock is held
// across an RPC.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fuse-client/file_io.h"
#include "fuse-client/mds_api.h"
#include "fuse-client/request_gate.h"
#include "fuse-client/thread_pool.h"

namespace stripefs::dlm {
class DlmClient;
}  // namespace stripefs::dlm

namespace stripefs::client {

class MdCache;
class MdsClient;
class OstSet;
class PosixLocks;
class DataLocks;

inline constexpr size_t kNameMax = 255;

struct FsOptions {
  double attr_timeout = 1.0;     // seconds the kernel may cache attributes
  double entry_timeout = 1.0;    // seconds the kernel may cache names
  bool writeback_cache = false;  // the single switch for kernel writeback
  int io_threads = 8;            // FileIo pool
  uint32_t readdir_batch = 256;  // entries fetched per MDS Readdir
  // With a lock service: bypass the metadata cache of contended inodes
  // (md_cache.h, "adaptive caching"); -o no_md_adaptive turns it off.
  bool md_adaptive = true;
  // With a lock service: seconds the kernel may cache attributes that are
  // backed by a metadata lock of this mount (the lock's callback makes the
  // kernel forget them, attr_inval.h). 0: the kernel asks every time.
  double locked_attr_timeout = 60.0;
};

// State of an inode that this mount has open. Shared by its OpenFiles.
struct InodeState {
  explicit InodeState(uint64_t i) : ino(i) {}
  const uint64_t ino;
  // Held across a size report (Fs::ReportSize), so that one which finds
  // nothing left to report (an fsync's) returns only after the report in
  // flight is committed at the MDS.
  absl::Mutex report_mu;
  absl::Mutex mu ABSL_ACQUIRED_AFTER(report_mu);
  std::shared_ptr<const FileLayout> layout ABSL_GUARDED_BY(mu);
  uint32_t mode ABSL_GUARDED_BY(mu) = 0;
  uint32_t gid ABSL_GUARDED_BY(mu) = 0;
  uint64_t mds_size ABSL_GUARDED_BY(mu) = 0;   // last size the MDS gave
  uint64_t write_end ABSL_GUARDED_BY(mu) = 0;  // end of unreported writes
  bool dirty ABSL_GUARDED_BY(mu) = false;      // the MDS must be told
  bool kill_priv ABSL_GUARDED_BY(mu) = false;
  uint64_t write_gen ABSL_GUARDED_BY(mu) = 0;  // bumped by every write
  // write_gen when an fsync last completed: writes since then are what an
  // evicted mount cannot vouch for (Fs::ReopenAll).
  uint64_t synced_gen ABSL_GUARDED_BY(mu) = 0;
  // DataLocks::Gen() when mds_size was last fetched (with a DLM).
  uint64_t size_gen ABSL_GUARDED_BY(mu) = 0;
  Timespec mtime ABSL_GUARDED_BY(mu);     // of the last write
  // The MDS size and mtime that the kernel page cache of this inode matches
  // (close-to-open: a later open that sees the same keeps the cache).
  uint64_t cache_size ABSL_GUARDED_BY(mu) = 0;
  Timespec cache_mtime ABSL_GUARDED_BY(mu);
  bool cache_valid ABSL_GUARDED_BY(mu) = false;
  // security.capability, which the kernel asks for before every write
  // (libfuse 3.14 cannot negotiate FUSE_HANDLE_KILLPRIV_V2): cached while
  // the inode is open here. cap_state: 0 unknown, 1 absent, 2 present.
  int cap_state ABSL_GUARDED_BY(mu) = 0;
  std::string cap_value ABSL_GUARDED_BY(mu);
  int opens = 0;  // guarded by Fs::open_mu_

  // Notes attributes the MDS reported for this inode.
  void SawMds(const Attr& a, bool own_change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  uint64_t KnownSize() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return std::max(mds_size, write_end);
  }
};

// One open(2) of a regular file (fuse_file_info::fh).
struct OpenFile {
  uint64_t handle = 0;  // MDS open handle
  std::shared_ptr<InodeState> inode;
  uint32_t flags = 0;
  OpCtx opener;  // credentials used when reporting the size at release
  bool keep_cache = false;  // the kernel may keep its cached pages
  bool direct_io = false;   // bypass the page cache (O_APPEND with a DLM)
  // The MDS refused to re-establish the handle after a failover (or this
  // mount was evicted with writes the MDS never heard of): every later
  // operation fails with EIO; release only forgets it (Fs::ReopenAll).
  std::atomic<bool> broken{false};
};

// One opendir(2) (fuse_file_info::fh): a batch of entries fetched ahead.
struct DirHandle {
  absl::Mutex mu;
  bool valid ABSL_GUARDED_BY(mu) = false;
  uint64_t from_cookie ABSL_GUARDED_BY(mu) = 0;  // batch continues after this
  std::vector<DirEntry> entries ABSL_GUARDED_BY(mu);
  bool eof ABSL_GUARDED_BY(mu) = false;
};

// One readdir item handed to the FUSE layer.
struct DirItem {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;      // S_IFMT bits
  uint64_t next_off = 0;  // FUSE offset that continues after this item
  const Entry* entry = nullptr;  // with plus, for real entries only
};

struct SetAttrArgs : AttrChange {
  OpenFile* file = nullptr;  // set when called through an fd
};

class Fs {
 public:
  // A mount: metadata through a GrpcMds over mds, data through osts.
  Fs(MdsClient* mds, OstSet* osts, FsOptions options);
  // Metadata through mds, data through objects (both must outlive this).
  // osts (may be null) only names the OSTs for user.stripefs.stats and
  // user.stripefs.df.
  Fs(MdsApi* mds, ObjectIo* objects, OstSet* osts, FsOptions options);
  ~Fs();
  Fs(const Fs&) = delete;
  Fs& operator=(const Fs&) = delete;

  const FsOptions& options() const { return options_; }

  // The lock client (null when the cluster has no lock service). Set once,
  // before the mount serves requests.
  // With a lock service, attributes and dentries are cached (MdCache).
  void set_dlm(dlm::DlmClient* dlm);
  // With a lock service: called with an inode whose metadata lock is being
  // called back (the mount invalidates the kernel's attributes). Set
  // before the mount serves requests.
  void set_on_md_drop(std::function<void(uint64_t)> fn);
  // Seconds the kernel may cache the attributes of ino just answered:
  // attr_timeout without a lock service; with one, locked_attr_timeout
  // while they are cached under a lock of this mount, else 0.
  double AttrTimeout(uint64_t ino) const;
  // Counts a FUSE GETATTR the kernel sent (it sends none while its cached
  // attributes are valid; "client fuse_getattr" in StatsText).
  void CountFuseGetattr() { fuse_getattrs_.fetch_add(1); }
  dlm::DlmClient* dlm() const { return dlm_; }
  // fcntl/flock locks through the DLM (posix_locks.h) and data coherence
  // (data_locks.h); null without a DLM. Owned by the mount; set once before
  // the mount serves requests.
  void set_posix_locks(PosixLocks* p) { posix_locks_ = p; }
  PosixLocks* posix_locks() const { return posix_locks_; }
  void set_data_locks(DataLocks* d);
  DataLocks* data_locks() const { return data_locks_; }

  // Namespace (fs.cc).
  absl::StatusOr<Entry> Lookup(const OpCtx& ctx, uint64_t parent,
                                    const std::string& name);
  absl::StatusOr<Entry> GetAttr(const OpCtx& ctx, uint64_t ino);
  absl::StatusOr<Entry> SetAttr(const OpCtx& ctx, uint64_t ino,
                                     const SetAttrArgs& args);
  absl::StatusOr<Entry> Mknod(const OpCtx& ctx, uint64_t parent,
                                   const std::string& name, uint32_t mode,
                                   uint64_t rdev);
  absl::StatusOr<Entry> Mkdir(const OpCtx& ctx, uint64_t parent,
                                   const std::string& name, uint32_t mode);
  absl::StatusOr<Entry> Symlink(const OpCtx& ctx, uint64_t parent,
                                     const std::string& name,
                                     const std::string& target);
  absl::StatusOr<Entry> Link(const OpCtx& ctx, uint64_t ino,
                                  uint64_t new_parent,
                                  const std::string& new_name);
  absl::Status Remove(const OpCtx& ctx, uint64_t parent,
                      const std::string& name, bool dir);
  absl::Status Rename(const OpCtx& ctx, uint64_t parent,
                      const std::string& name, uint64_t new_parent,
                      const std::string& new_name, uint32_t flags);
  absl::StatusOr<std::string> Readlink(const OpCtx& ctx, uint64_t ino);
  absl::StatusOr<StatfsInfo> Statfs(const OpCtx& ctx);
  absl::Status Access(const OpCtx& ctx, uint64_t ino, uint32_t mask);
  // A name was created in parent (for the metadata cache's adaptive mode:
  // the child of a contended directory starts uncached, md_cache.h).
  void NoteNewChild(uint64_t parent, uint64_t child);
  // Early lock cancel before a change (md_cache.h CancelEarly); 0s skipped.
  void CancelEarly(std::initializer_list<uint64_t> inos);
  // The inode this mount has cached for parent/name, or 0.
  uint64_t CachedChild(uint64_t parent, const std::string& name);
  // The MDS Create of Fs::Create, as an own change of parent (fs.cc).
  absl::StatusOr<OpenResult> CreateInMds(const OpCtx& ctx, uint64_t parent,
                                         const std::string& name,
                                         uint32_t mode, uint32_t flags);

  // Files (fs_file.cc). Open/Create return an OpenFile owned by the caller
  // until Release.
  absl::StatusOr<OpenFile*> Open(const OpCtx& ctx, uint64_t ino,
                                 uint32_t flags);
  absl::StatusOr<std::pair<Entry, OpenFile*>> Create(
      const OpCtx& ctx, uint64_t parent, const std::string& name, uint32_t mode,
      uint32_t flags);
  absl::StatusOr<ReadData> Read(const OpCtx& ctx, OpenFile* f, uint64_t off,
                                uint64_t size);
  absl::StatusOr<size_t> Write(const OpCtx& ctx, OpenFile* f, uint64_t off,
                               const char* data, size_t size);
  absl::Status Flush(const OpCtx& ctx, OpenFile* f);
  // Returns when the file's data on every OST and its metadata (size,
  // and the entry that created it) at the MDS are durable.
  absl::Status Fsync(const OpCtx& ctx, OpenFile* f);
  // Makes every change to the namespace acknowledged so far durable.
  absl::Status FsyncDir(const OpCtx& ctx);
  // Reports the size, closes the MDS handle and deletes f.
  absl::Status Release(const OpCtx& ctx, OpenFile* f);

  // Controlled failover of the MDS (fuse-client/failover.h): re-establishes
  // the MDS handle of every open file of this mount on the server instance
  // now active (Open with reopen_handle, in the negotiated protocol). A file
  // whose handle is refused (ESTALE: forced start, reopen window over), or,
  // when `evicted` (this mount lost its active lock without cancelling it,
  // e.g. it was stopped during the shutdown), that has something to replay
  // beyond its open (writes not yet fsynced, or a size the MDS was not
  // told), is marked broken (OpenFile::broken). Other errors (the
  // MDS unreachable) are returned: call again. Runs while the MDS gate is
  // closed, under a GateBypass.
  absl::Status ReopenAll(bool evicted);
  // Number of open files marked broken (for logs and tests).
  size_t BrokenFiles();
  // The MDS reports that it evicted this mount (its client lease ran out;
  // MdsClient::SetEvictedHandler): the MDS handles below `below_handle`
  // (StatusReply.evicted_below_handle; 0: the MDS did not say, every
  // handle) are gone, so each open file with such a handle is marked
  // broken at once (their reads and writes fail with EIO before touching an
  // OSS) and one error line is logged. Files opened after the eviction
  // (handles at or above it) keep working, as do later opens. Returns how
  // many files it marked.
  size_t Evicted(uint64_t below_handle = 0);

  // Directories (fs_dir.cc). emit returns false when the reply is full.
  absl::StatusOr<DirHandle*> OpenDir(const OpCtx& ctx, uint64_t ino);
  absl::Status ReadDir(const OpCtx& ctx, uint64_t ino, DirHandle* d,
                       uint64_t off, bool plus,
                       absl::FunctionRef<bool(const DirItem&)> emit);
  void ReleaseDir(DirHandle* d);

  // Extended attributes, including the virtual user.stripefs.* (fs_xattr.cc).
  absl::Status SetXattr(const OpCtx& ctx, uint64_t ino, const std::string& name,
                        const std::string& value, uint32_t flags);
  absl::StatusOr<std::string> GetXattr(const OpCtx& ctx, uint64_t ino,
                                       const std::string& name);
  absl::StatusOr<std::vector<std::string>> ListXattr(const OpCtx& ctx,
                                                     uint64_t ino);
  absl::Status RemoveXattr(const OpCtx& ctx, uint64_t ino,
                           const std::string& name);

 private:
  // Overlays this mount's knowledge of an open inode onto MDS attributes.
  void Overlay(Entry* entry);
  // Registers an open of entry's inode; returns its state and whether the
  // kernel's cached pages still match the file.
  std::shared_ptr<InodeState> AddOpen(const Entry& entry,
                                      bool* keep_cache);
  void DropOpen(const std::shared_ptr<InodeState>& st);
  std::shared_ptr<InodeState> FindOpen(uint64_t ino);
  // Common tail of Open and Create.
  // `lists`: reopen_lists_ before the open was sent (a ReopenAll that took
  // its list since may have missed the new file: it is re-established
  // here, ReopenLate).
  absl::StatusOr<OpenFile*> FinishOpen(const OpCtx& ctx,
                                       const OpenResult& opened,
                                       uint32_t flags, uint64_t lists);
  // Re-establishes f's handle on the instance now connected (as ReopenAll
  // does for each file); a failure marks f broken.
  void ReopenLate(const OpCtx& ctx, OpenFile* f);
  // When the mount cannot vouch for its MDS lease (MdsClient::LeaseInDoubt)
  // and no controlled failover is in progress: ConfirmLease, then EIO if
  // f was lost (an eviction reported, or a reopen refused). Before an
  // action an evicted mount must not take (data to an OSS).
  absl::Status CheckLease(const OpCtx& ctx, const OpenFile& f);
  // Tells the MDS about unreported writes of st (no-op when clean).
  // Sends what the mount buffered of the file (write_behind.h) and reports
  // a failed earlier write-back of it.
  absl::Status WriteBack(const OpCtx& ctx, InodeState& st);
  absl::Status ReportSize(const OpCtx& ctx, InodeState& st);
  // Clears S_ISUID/S_ISGID through UpdateSize(kill_priv) when new_mode
  // differs from the current mode only by dropping them (EPERM otherwise).
  absl::StatusOr<Entry> KillPriv(const OpCtx& ctx, uint64_t ino,
                                      uint32_t new_mode);
  absl::Status ReleaseHandle(const OpCtx& ctx, uint64_t handle);
  // EIO for an open file lost in a failover (OpenFile::broken).
  static absl::Status CheckNotBroken(const OpenFile& f);
  // `s` is the MDS's answer to a request on f's handle. EBADF means the MDS
  // no longer knows the handle: it evicted this mount (its client lease
  // ran out, mds/client_leases.h). Marks f broken, logs it once and
  // returns EIO; any other status is returned as is.
  static absl::Status HandleGone(OpenFile& f, const absl::Status& s);
  absl::StatusOr<std::string> DfText(const OpCtx& ctx);
  void ForgetCap(uint64_t ino);
  // ReadDir from offset 0 with a metadata cache: fills d with the cached
  // listing or the first MDS batch (cached when it is the whole directory).
  absl::Status ListWhole(const OpCtx& ctx, uint64_t ino, DirHandle* d,
                         bool plus) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu);
  // With a metadata cache, before a lookup of a name not cached in dir:
  // one Readdir (names only, up to readdir_batch) under dir's lock; a
  // whole directory is cached complete (MdCache::PutListing), so its
  // missing names (a create's lookup) cost no MDS Lookup. A bigger one is
  // not probed again until its lock goes.
  void ProbeListing(const OpCtx& ctx, uint64_t dir);
  // GetAttr from the MDS, through the metadata cache when there is one.
  absl::StatusOr<Entry> CachedGetAttr(const OpCtx& ctx, uint64_t ino);
  // "target method count" lines of this mount's RPCs (user.stripefs.stats).
  std::string StatsText() const;

  std::unique_ptr<MdsApi> owned_mds_;  // the GrpcMds of a mount
  MdsApi* const mds_;
  OstSet* const osts_;  // may be null (tests)
  const FsOptions options_;
  dlm::DlmClient* dlm_ = nullptr;
  std::unique_ptr<MdCache> md_;  // set with dlm_
  std::atomic<uint64_t> fuse_getattrs_{0};
  PosixLocks* posix_locks_ = nullptr;
  DataLocks* data_locks_ = nullptr;
  ThreadPool pool_;
  FileIo io_;

  absl::Mutex open_mu_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<InodeState>> open_
      ABSL_GUARDED_BY(open_mu_);
  // Every OpenFile of this mount (between FinishOpen and Release).
  absl::flat_hash_set<OpenFile*> files_ ABSL_GUARDED_BY(open_mu_);
  // Bumped (under open_mu_) each time ReopenAll takes its list of files_.
  std::atomic<uint64_t> reopen_lists_{0};
  // Size and mtime of closed inodes whose kernel cache was valid at the
  // last close; bounded, cleared when it grows too big.
  struct CacheStamp {
    uint64_t size = 0;
    int64_t sec = 0;
    uint32_t nsec = 0;
  };
  absl::flat_hash_map<uint64_t, CacheStamp> stamps_ ABSL_GUARDED_BY(open_mu_);
};

// Helpers shared by the fs_*.cc files.
absl::Status CheckName(const std::string& name);
std::shared_ptr<const FileLayout> ToFileLayout(const Layout& layout);

}  // namespace stripefs::client
