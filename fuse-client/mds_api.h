// MdsApi: what the filesystem (Fs) asks of the metadata server, in the
// client's own types: one method per MDS operation, plain structs in and
// out, no protobuf and no gRPC. Errors are absl::Status carrying the errno
// the MDS answered (common/errors.h: ToErrno reads it back).
//
// Two implementations: GrpcMds (grpc_mds.h) over the mount's MdsClient
// (gate, xids, resends, recovery and protocol negotiation are the
// TargetClient's), and, for unit tests, InprocMds (inproc_mds.h) over an
// MdsCore in the same process. Fs keeps its caching and lock decisions to
// itself; an MdsApi only carries requests.
//
// Each call carries the caller (OpCtx): its credentials for the MDS's
// permission checks and the interrupt that abandons the wait. Calls that the
// MDS answers without credentials (GetAttr, Statfs, Release, Sync) use only
// the interrupt. Thread-safe (implementations must be).
//
//   GrpcMds mds(&mds_client);
//   absl::StatusOr<Entry> e = mds.Lookup(ctx, kRootIno, "a");
//   if (!e.ok()) return ToErrno(e.status());
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fuse-client/request_gate.h"

namespace stripefs::client {

inline constexpr uint64_t kRootIno = 1;

// The caller of one operation.
struct OpCtx {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t pid = 0;
  std::vector<uint32_t> groups;
  InterruptFn interrupted;
};

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};
Timespec NowTimespec();

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFMT type bits | permission bits
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  uint64_t blocks = 0;  // 512-byte blocks
  Timespec atime, mtime, ctime;
};

struct StripeRef {
  uint32_t ost = 0;
  uint64_t oid = 0;
};

// A file's layout (objects filled) or a directory's default (no objects).
// All zero when the MDS sent none (not a regular file).
struct Layout {
  uint32_t stripe_size = 0;
  int32_t stripe_count = 0;   // -1 in a default: all active OSTs
  int32_t stripe_offset = 0;  // -1: the allocator's choice
  std::vector<StripeRef> objects;
};

// An inode as the MDS describes it.
struct Entry {
  Attr attr;
  Layout layout;  // regular files only
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;    // S_IFMT bits
  uint64_t cookie = 0;  // continue the listing after this entry
  std::optional<Entry> entry;  // with plus
};

struct Listing {
  std::vector<DirEntry> entries;
  bool eof = false;
};

struct StatfsInfo {
  uint32_t bsize = 0;
  uint64_t blocks = 0, bfree = 0, bavail = 0;
  uint64_t files = 0, ffree = 0;
  uint32_t namelen = 0;
};

struct OpenResult {
  Entry entry;
  uint64_t handle = 0;     // 0: not opened
  bool truncated = false;  // O_TRUNC dropped the size: cut the objects
  // Create of an own change (set_own_md_cache): the parent's attributes
  // right after the change, when the MDS sent them.
  std::optional<Entry> parent;
  // Create with intent locks (set_intent_locks): the handle of the PR lock
  // on entry's inode the MDS took in this mount's name (entry was read
  // after its grant), for MdCache::AdoptIntent; 0: none.
  uint64_t intent_lock = 0;
};

// SetAttr's `valid` bits (the same values as the wire's SetAttrValid).
inline constexpr uint32_t kSetMode = 1;
inline constexpr uint32_t kSetUid = 2;
inline constexpr uint32_t kSetGid = 4;
inline constexpr uint32_t kSetSize = 8;
inline constexpr uint32_t kSetAtime = 16;
inline constexpr uint32_t kSetMtime = 32;
inline constexpr uint32_t kSetAtimeNow = 64;
inline constexpr uint32_t kSetMtimeNow = 128;
inline constexpr uint32_t kSetCtime = 256;

// What a SetAttr changes (fields without their `valid` bit are ignored).
struct AttrChange {
  uint32_t valid = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  Timespec atime;
  Timespec mtime;
};

// A SetLayout: 0 keeps the stripe size / count; no offset: the allocator's.
struct LayoutChange {
  uint32_t stripe_size = 0;
  int32_t stripe_count = 0;
  std::optional<int32_t> stripe_offset;
};

class MdsApi {
 public:
  virtual ~MdsApi() = default;

  // Namespace.
  virtual absl::StatusOr<Entry> Lookup(const OpCtx& ctx, uint64_t parent,
                                       const std::string& name) = 0;
  virtual absl::StatusOr<Entry> GetAttr(const OpCtx& ctx, uint64_t ino) = 0;
  // `handle`: the open handle when called through an fd (else 0).
  virtual absl::StatusOr<Entry> SetAttr(const OpCtx& ctx, uint64_t ino,
                                        const AttrChange& change,
                                        uint64_t handle) = 0;
  virtual absl::StatusOr<Entry> Mknod(const OpCtx& ctx, uint64_t parent,
                                      const std::string& name, uint32_t mode,
                                      uint64_t rdev) = 0;
  virtual absl::StatusOr<Entry> Mkdir(const OpCtx& ctx, uint64_t parent,
                                      const std::string& name,
                                      uint32_t mode) = 0;
  virtual absl::StatusOr<Entry> Symlink(const OpCtx& ctx, uint64_t parent,
                                        const std::string& name,
                                        const std::string& target) = 0;
  virtual absl::StatusOr<Entry> Link(const OpCtx& ctx, uint64_t ino,
                                     uint64_t new_parent,
                                     const std::string& new_name) = 0;
  // parent_after (may be null): the parent's attributes right after the
  // change, when the MDS sent them (own changes, set_own_md_cache).
  // exempt_child (own changes): the inode this mount has cached for name,
  // whose cache it drops itself (RemoveRequest.exempt_child); 0: none.
  virtual absl::Status Remove(const OpCtx& ctx, uint64_t parent,
                              const std::string& name, bool dir,
                              uint64_t exempt_child,
                              std::optional<Entry>* parent_after) = 0;
  virtual absl::Status Rename(const OpCtx& ctx, uint64_t parent,
                              const std::string& name, uint64_t new_parent,
                              const std::string& new_name,
                              uint32_t flags) = 0;
  virtual absl::StatusOr<std::string> Readlink(const OpCtx& ctx,
                                               uint64_t ino) = 0;
  // Up to max_entries entries after `cookie` (0: from the start).
  virtual absl::StatusOr<Listing> Readdir(const OpCtx& ctx, uint64_t ino,
                                          uint64_t cookie,
                                          uint32_t max_entries,
                                          bool plus) = 0;
  virtual absl::StatusOr<StatfsInfo> Statfs(const OpCtx& ctx) = 0;
  // R_OK/W_OK/X_OK on ino for the caller.
  virtual absl::Status Access(const OpCtx& ctx, uint64_t ino,
                              uint32_t mask) = 0;

  // Open files. Create also opens (flags get O_CREAT). Open with
  // `reopen_handle` re-establishes that handle of a previous server
  // instance (failover), in the protocol negotiated with the server.
  virtual absl::StatusOr<OpenResult> Create(const OpCtx& ctx, uint64_t parent,
                                            const std::string& name,
                                            uint32_t mode, uint32_t flags) = 0;
  virtual absl::StatusOr<OpenResult> Open(const OpCtx& ctx, uint64_t ino,
                                          uint32_t flags,
                                          uint64_t reopen_handle) = 0;
  virtual absl::Status Release(const OpCtx& ctx, uint64_t handle) = 0;
  // Grow-only size report (0 keeps the size), with the mtime of the writes;
  // kill_priv clears S_ISUID/S_ISGID as an unprivileged write does.
  virtual absl::StatusOr<Entry> UpdateSize(const OpCtx& ctx, uint64_t ino,
                                           uint64_t size, Timespec mtime,
                                           bool kill_priv) = 0;
  // Makes every change acknowledged so far durable.
  virtual absl::Status Sync(const OpCtx& ctx) = 0;

  // Extended attributes and layouts.
  virtual absl::Status SetXattr(const OpCtx& ctx, uint64_t ino,
                                const std::string& name,
                                const std::string& value, uint32_t flags) = 0;
  virtual absl::StatusOr<std::string> GetXattr(const OpCtx& ctx, uint64_t ino,
                                               const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListXattr(
      const OpCtx& ctx, uint64_t ino) = 0;
  virtual absl::Status RemoveXattr(const OpCtx& ctx, uint64_t ino,
                                   const std::string& name) = 0;
  virtual absl::StatusOr<Layout> SetLayout(const OpCtx& ctx, uint64_t ino,
                                           const LayoutChange& change) = 0;
  virtual absl::StatusOr<Layout> GetLayout(const OpCtx& ctx, uint64_t ino) = 0;

  // The session with the server (client lease, failover). Defaults: a
  // session that cannot be lost (in-process).
  //
  // True when this mount cannot vouch for its lease (MdsClient::LeaseInDoubt).
  virtual bool LeaseInDoubt() const { return false; }
  // True while a controlled failover holds new requests (gate closed).
  virtual bool FailoverInProgress() const { return false; }
  // Asks the server until it answers (MdsClient::ConfirmLease).
  virtual absl::Status ConfirmLease(const InterruptFn& intr) {
    return absl::OkStatus();
  }
  // Requests sent, by method (user.stripefs.stats).
  virtual std::map<std::string, uint64_t> RpcCounts() const = 0;
  // The namespace changes (Create, Mknod, Mkdir, Symlink, Link, Remove)
  // tell the MDS that this mount applies them to its own metadata cache
  // (ReqHeader.own_md_cache: the MDS may leave this mount's locks in
  // place). Set before use, only by an Fs with an MdCache.
  virtual void set_own_md_cache(bool on) {}
  // Create asks the MDS for an intent lock (CreateRequest.intent_dlm_client)
  // in the name of this DLM client id with these bits (0: none, default).
  // Set before use, only by an Fs with an MdCache, which adopts every
  // intent lock a Create brings (MdCache::AdoptIntent).
  virtual void set_intent_locks(uint64_t dlm_client, uint64_t bits) {}
};

}  // namespace stripefs::client
