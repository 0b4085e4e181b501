// The plain types of MdsCore's interface: options, the caller's
// credentials and request id, arguments and results of the operations.
// No RPC types (MdsService converts them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "mds/ost_pool.h"
#include "mds/records.h"

namespace stripefs::mds {

// Bits of SetAttrArgs::valid (same values as rpc SetAttrValid).
inline constexpr uint32_t kSetMode = 1;
inline constexpr uint32_t kSetUid = 2;
inline constexpr uint32_t kSetGid = 4;
inline constexpr uint32_t kSetSize = 8;
inline constexpr uint32_t kSetAtime = 16;
inline constexpr uint32_t kSetMtime = 32;
inline constexpr uint32_t kSetAtimeNow = 64;
inline constexpr uint32_t kSetMtimeNow = 128;
inline constexpr uint32_t kSetCtime = 256;

inline constexpr uint32_t kRenameNoReplace = 1;
inline constexpr uint32_t kRenameExchange = 2;
inline constexpr uint32_t kXattrCreate = 1;
inline constexpr uint32_t kXattrReplace = 2;

inline constexpr size_t kNameMax = 255;
inline constexpr size_t kSymlinkMax = 4095;
inline constexpr size_t kXattrValueMax = 64 * 1024;
inline constexpr uint64_t kMaxFileSize = (1ULL << 63) - 1;
inline constexpr uint64_t kMaxInodes = 1ULL << 32;

struct MdsOptions {
  std::string target = "mdt0";
  // HOST:PORT of the lock service, handed to clients in GetConfig; empty
  // when the cluster runs without one.
  std::string dlm_address;
  // Root directory's default layout, used when the store is formatted.
  uint32_t default_stripe_size = 1 << 20;
  int32_t default_stripe_count = 1;
  // Objects precreated per OSS call, and the pool level that triggers a
  // background refill.
  uint32_t precreate_batch = 512;
  uint32_t precreate_low_water = 256;
  // Run the refill and destroy threads (unit tests may drive them by hand).
  bool background_threads = true;
  // How long the destroy thread waits after a failed destroy.
  absl::Duration destroy_retry = absl::Seconds(2);
  // How long the destroy thread lets removals accumulate before an OSS call.
  absl::Duration destroy_batch_delay = absl::Milliseconds(200);
  // Start(): keep the open handles the previous instance persisted (it
  // stopped cleanly or crashed; the start is not forced) so their clients
  // can Reopen them for `reopen_window`; false: discard them at start.
  // Default false.
  bool keep_open_handles = false;
  // How long kept handles wait for Reopen before ExpireReopenWindow
  // discards them (a background thread calls it). Default 60 s.
  absl::Duration reopen_window = absl::Seconds(60);
  // How long a reply record is kept (a client resends a request whose reply
  // it lost for much less: 30 s), and how often the background sweep
  // prunes older ones. Defaults 10 min and 60 s.
  absl::Duration reply_retention = absl::Minutes(10);
  absl::Duration reply_sweep_interval = absl::Seconds(60);
  // How long a client that negotiated rpc::kFeatureLease may stay silent
  // before it is evicted (mds/client_leases.h; --client-lease). Zero: never.
  // Default 60 s.
  absl::Duration client_lease = absl::Seconds(60);
  // Measures elapsed time for the reply records (only differences of its
  // Now() count): they are stamped with the wall time at Start() plus the
  // time elapsed since on this clock, so that a step of the wall clock
  // neither prunes young records nor keeps old ones. nullptr: the system's
  // monotonic clock. Must outlive the core.
  Clock* steady_clock = nullptr;
  // Object allocation (mds/ost_allocator.h): the spread of the OSTs' free
  // space below which it is round-robin (Lustre's qos_threshold_rr;
  // --qos-threshold-rr, default 17%), how often the OSTs' statfs is
  // refreshed for it (default 5 s), and the seed of its random source
  // (0: random).
  double qos_threshold_rr = 0.17;
  absl::Duration statfs_interval = absl::Seconds(5);
  uint64_t alloc_seed = 0;
};

// The caller of a syscall.
struct Cred {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;
};

// (client_id, xid) of a modifying request; reply records key on it. Every
// modifying method that commits writes a reply record for a non-zero
// client_id in the same batch as its change, and answers a request whose
// record exists from it without executing it again (exactly once across
// resends and restarts, for `reply_retention`). client_id 0: no record.
struct ReqId {
  uint64_t client_id = 0;
  uint64_t xid = 0;
  // The mount applies this namespace change to its own metadata cache
  // (ReqHeader.own_md_cache): its locks may stay (DLM exemption for
  // client_id). Not part of the request's identity.
  bool own_md_cache = false;
};

struct SetAttrArgs {
  uint32_t valid = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  Timespec atime, mtime, ctime;
  uint64_t handle = 0;
};

struct OpenResult {
  Inode inode;
  uint64_t handle = 0;
  bool truncated = false;
  bool created = false;      // Create made the file (else opened it)
  uint64_t intent_lock = 0;  // Create's intent lock (IntentLock), 0: none
};

// Create's intent lock (CreateRequest.intent_dlm_client): once the file is
// made, a PR lock with `bits` on it in the name of the mount whose DLM
// client id is `dlm_client` (0: none asked); the reply's attributes are
// read after its grant.
struct IntentLock {
  uint64_t dlm_client = 0;
  uint64_t bits = 0;
};

struct DirEntryOut {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;
  uint64_t cookie = 0;
  std::optional<Inode> inode;  // when plus
};

// What MdsCore::EvictClient dropped.
struct EvictResult {
  size_t handles = 0;    // open handles dropped
  size_t reclaimed = 0;  // unlinked-while-open inodes deleted
  // With handles > 0: the highest dropped handle id plus one. Handle ids
  // only grow (across restarts too), so every handle the client gets after
  // the eviction is at or above it (StatusReply.evicted_below_handle).
  uint64_t below_handle = 0;
};

struct ReaddirResult {
  std::vector<DirEntryOut> entries;
  bool eof = false;
};

struct StatfsResult {
  uint32_t bsize = 4096;
  uint64_t blocks = 0, bfree = 0, bavail = 0;
  uint64_t files = 0, ffree = 0;
  uint32_t namelen = kNameMax;
};

// What the MDS knows about one OST, for statfs/df.
struct OstUsage {
  uint32_t index = 0;
  bool ok = false;
  OstStatfs statfs;
};

}  // namespace stripefs::mds
