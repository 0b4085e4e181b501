// On-disk records of the MDS and their keys (see docs/internals.md, "MDS
// storage"): prefix byte, big-endian integers. Plain value types with
// encode/decode helpers; no state, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace stripefs::mds {

inline constexpr uint64_t kRootIno = 1;

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};

struct StripeObject {
  uint32_t ost = 0;
  uint64_t oid = 0;
  bool operator==(const StripeObject&) const = default;
};

// A regular file's layout (objects filled) or a directory's default.
struct Layout {
  uint32_t stripe_size = 1 << 20;
  int32_t stripe_count = 1;    // -1 in a default: all OSTs
  int32_t stripe_offset = -1;  // -1: allocator's choice
  std::vector<StripeObject> objects;
};

struct Inode {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  Timespec atime, mtime, ctime;
  uint64_t parent = 0;       // directories: the parent directory
  uint64_t next_cookie = 1;  // directories: next readdir cookie
  uint64_t nentries = 0;     // directories: number of entries
  bool has_xattrs = false;   // an X key may exist
  Layout layout;             // files: layout; directories: default
  std::string symlink;       // symlinks: target
};

// Value of D<parent><name>.
struct Dentry {
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits
  uint64_t cookie = 0;
};

// Value of C<parent><cookie>.
struct CookieEntry {
  uint64_t ino = 0;
  uint32_t type = 0;
  std::string name;
};

// Value of H<handle>. client_id: the client that opened it (0 in records
// written before it was kept), the only one that may reopen it after a
// server restart (MdsCore::Reopen).
struct HandleRec {
  uint64_t ino = 0;
  uint32_t flags = 0;
  uint64_t client_id = 0;
};

// Value of R<client_id><xid>: the reply record of a modifying request that
// committed (only successes commit, so the status is always OK). What the
// reply is rebuilt from when the same request is resent (MdsCore).
struct ReplyRec {
  int64_t commit_sec = 0;  // commit time, Unix seconds (pruning)
  uint64_t ino = 0;        // the result inode (0: the method returns none)
  uint64_t handle = 0;     // Create / Open: the handle handed out
  bool truncated = false;  // Create / Open: O_TRUNC cut data
  bool has_inode = false;  // `inode` holds the result as committed
  Inode inode;             // answered when the inode is gone since
};

// Value of S.
struct Superblock {
  uint32_t format = 1;
  uint64_t compat = 0, ro_compat = 0, incompat = 0;
  uint64_t next_ino = 2;
  uint64_t next_handle = 1;
  uint64_t inode_count = 1;
  std::string target;
};

// Value of P<ost>: the last object id handed out and the precreated ranges
// [first, end) not handed out yet.
struct PrecreateState {
  uint64_t last_used = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
};

// Keys.
std::string SuperKey();
std::string InodeKey(uint64_t ino);
std::string DentryKey(uint64_t parent, std::string_view name);
std::string DentryPrefix(uint64_t parent);
std::string CookieKey(uint64_t parent, uint64_t cookie);
std::string CookiePrefix(uint64_t parent);
std::string XattrKey(uint64_t ino, std::string_view name);
std::string XattrPrefix(uint64_t ino);
std::string HandleKey(uint64_t handle);
std::string OrphanKey(uint64_t ino);
std::string DestroyKey(uint32_t ost, uint64_t oid);
std::string PrecreateKey(uint32_t ost);
// R<client_id><xid> -> ReplyRec; r<commit_sec><client_id><xid> -> "" is its
// time index, so pruning reads only the expired range.
std::string ReplyKey(uint64_t client_id, uint64_t xid);
std::string ReplyTimeKey(int64_t commit_sec, uint64_t client_id,
                         uint64_t xid);

inline constexpr char kHandlePrefix[] = "H";
inline constexpr char kOrphanPrefix[] = "O";
inline constexpr char kDestroyPrefix[] = "Q";
inline constexpr char kReplyPrefix[] = "R";
inline constexpr char kReplyTimePrefix[] = "r";
inline constexpr size_t kReplyTimeKeySize = 25;

// Encoding. Decoders return EIO on a malformed record.
std::string EncodeInode(const Inode& inode);
absl::StatusOr<Inode> DecodeInode(std::string_view v);
std::string EncodeDentry(const Dentry& d);
absl::StatusOr<Dentry> DecodeDentry(std::string_view v);
std::string EncodeCookieEntry(const CookieEntry& c);
absl::StatusOr<CookieEntry> DecodeCookieEntry(std::string_view v);
std::string EncodeHandle(const HandleRec& h);
absl::StatusOr<HandleRec> DecodeHandle(std::string_view v);
std::string EncodeReply(const ReplyRec& r);
absl::StatusOr<ReplyRec> DecodeReply(std::string_view v);
std::string EncodeSuperblock(const Superblock& sb);
absl::StatusOr<Superblock> DecodeSuperblock(std::string_view v);
std::string EncodePrecreate(const PrecreateState& p);
absl::StatusOr<PrecreateState> DecodePrecreate(std::string_view v);

}  // namespace stripefs::mds
