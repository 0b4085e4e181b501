#include "mds/records.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "storage/kv.h"

namespace stripefs::mds {
namespace {

using storage::AppendBE32;
using storage::AppendBE64;

std::string Prefixed(char p, uint64_t v) {
  std::string k(1, p);
  AppendBE64(&k, v);
  return k;
}

// Bounds-checked reader over an encoded record.
class Reader {
 public:
  explicit Reader(std::string_view v) : v_(v) {}
  bool U64(uint64_t* out) {
    if (v_.size() < 8) return ok_ = false;
    *out = storage::DecodeBE64(v_);
    v_.remove_prefix(8);
    return true;
  }
  bool U32(uint32_t* out) {
    if (v_.size() < 4) return ok_ = false;
    *out = storage::DecodeBE32(v_);
    v_.remove_prefix(4);
    return true;
  }
  bool I64(int64_t* out) {
    uint64_t u;
    if (!U64(&u)) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  bool I32(int32_t* out) {
    uint32_t u;
    if (!U32(&u)) return false;
    *out = static_cast<int32_t>(u);
    return true;
  }
  bool U8(uint8_t* out) {
    if (v_.empty()) return ok_ = false;
    *out = static_cast<uint8_t>(v_[0]);
    v_.remove_prefix(1);
    return true;
  }
  bool Str(std::string* out) {
    uint32_t n;
    if (!U32(&n) || v_.size() < n) return ok_ = false;
    out->assign(v_.data(), n);
    v_.remove_prefix(n);
    return true;
  }
  std::string_view rest() const { return v_; }
  bool ok() const { return ok_; }

 private:
  std::string_view v_;
  bool ok_ = true;
};

void PutStr(std::string* dst, std::string_view s) {
  AppendBE32(dst, static_cast<uint32_t>(s.size()));
  dst->append(s.data(), s.size());
}

absl::Status Corrupt(const char* what) {
  return Errno(EIO, absl::StrCat("corrupt ", what, " record"));
}

constexpr uint8_t kInodeVersion = 1;
constexpr uint8_t kReplyVersion = 1;

}  // namespace

std::string SuperKey() { return "S"; }
std::string InodeKey(uint64_t ino) { return Prefixed('I', ino); }
std::string DentryPrefix(uint64_t parent) { return Prefixed('D', parent); }
std::string DentryKey(uint64_t parent, std::string_view name) {
  std::string k = DentryPrefix(parent);
  k.append(name.data(), name.size());
  return k;
}
std::string CookiePrefix(uint64_t parent) { return Prefixed('C', parent); }
std::string CookieKey(uint64_t parent, uint64_t cookie) {
  std::string k = CookiePrefix(parent);
  AppendBE64(&k, cookie);
  return k;
}
std::string XattrPrefix(uint64_t ino) { return Prefixed('X', ino); }
std::string XattrKey(uint64_t ino, std::string_view name) {
  std::string k = XattrPrefix(ino);
  k.append(name.data(), name.size());
  return k;
}
std::string HandleKey(uint64_t handle) { return Prefixed('H', handle); }
std::string OrphanKey(uint64_t ino) { return Prefixed('O', ino); }
std::string DestroyKey(uint32_t ost, uint64_t oid) {
  std::string k = "Q";
  AppendBE32(&k, ost);
  AppendBE64(&k, oid);
  return k;
}
std::string PrecreateKey(uint32_t ost) {
  std::string k = "P";
  AppendBE32(&k, ost);
  return k;
}

std::string ReplyKey(uint64_t client_id, uint64_t xid) {
  std::string k = Prefixed('R', client_id);
  AppendBE64(&k, xid);
  return k;
}
std::string ReplyTimeKey(int64_t commit_sec, uint64_t client_id,
                         uint64_t xid) {
  // Negative times (a clock before 1970) sort first: pruned first.
  std::string k = Prefixed('r', static_cast<uint64_t>(std::max<int64_t>(
                                    commit_sec, 0)));
  AppendBE64(&k, client_id);
  AppendBE64(&k, xid);
  return k;
}

std::string EncodeInode(const Inode& n) {
  std::string v;
  v.reserve(128 + n.layout.objects.size() * 12 + n.symlink.size());
  v.push_back(static_cast<char>(kInodeVersion));
  AppendBE64(&v, n.ino);
  AppendBE32(&v, n.mode);
  AppendBE32(&v, n.nlink);
  AppendBE32(&v, n.uid);
  AppendBE32(&v, n.gid);
  AppendBE64(&v, n.size);
  AppendBE64(&v, n.rdev);
  for (const Timespec* t : {&n.atime, &n.mtime, &n.ctime}) {
    AppendBE64(&v, static_cast<uint64_t>(t->sec));
    AppendBE32(&v, t->nsec);
  }
  AppendBE64(&v, n.parent);
  AppendBE64(&v, n.next_cookie);
  AppendBE64(&v, n.nentries);
  v.push_back(n.has_xattrs ? 1 : 0);
  AppendBE32(&v, n.layout.stripe_size);
  AppendBE32(&v, static_cast<uint32_t>(n.layout.stripe_count));
  AppendBE32(&v, static_cast<uint32_t>(n.layout.stripe_offset));
  AppendBE32(&v, static_cast<uint32_t>(n.layout.objects.size()));
  for (const auto& o : n.layout.objects) {
    AppendBE32(&v, o.ost);
    AppendBE64(&v, o.oid);
  }
  PutStr(&v, n.symlink);
  return v;
}

absl::StatusOr<Inode> DecodeInode(std::string_view v) {
  Reader r(v);
  Inode n;
  uint8_t ver = 0, hx = 0;
  uint32_t nobj = 0;
  r.U8(&ver);
  if (!r.ok() || ver != kInodeVersion) return Corrupt("inode");
  r.U64(&n.ino) && r.U32(&n.mode) && r.U32(&n.nlink) && r.U32(&n.uid) &&
      r.U32(&n.gid) && r.U64(&n.size) && r.U64(&n.rdev);
  for (Timespec* t : {&n.atime, &n.mtime, &n.ctime}) {
    r.I64(&t->sec) && r.U32(&t->nsec);
  }
  r.U64(&n.parent) && r.U64(&n.next_cookie) && r.U64(&n.nentries) &&
      r.U8(&hx) && r.U32(&n.layout.stripe_size) &&
      r.I32(&n.layout.stripe_count) && r.I32(&n.layout.stripe_offset) &&
      r.U32(&nobj);
  if (!r.ok() || nobj > 100000) return Corrupt("inode");
  n.has_xattrs = hx != 0;
  n.layout.objects.resize(nobj);
  for (auto& o : n.layout.objects) r.U32(&o.ost) && r.U64(&o.oid);
  r.Str(&n.symlink);
  if (!r.ok()) return Corrupt("inode");
  return n;
}

std::string EncodeDentry(const Dentry& d) {
  std::string v;
  AppendBE64(&v, d.ino);
  AppendBE32(&v, d.type);
  AppendBE64(&v, d.cookie);
  return v;
}
absl::StatusOr<Dentry> DecodeDentry(std::string_view v) {
  Reader r(v);
  Dentry d;
  r.U64(&d.ino) && r.U32(&d.type) && r.U64(&d.cookie);
  if (!r.ok()) return Corrupt("dentry");
  return d;
}

std::string EncodeCookieEntry(const CookieEntry& c) {
  std::string v;
  AppendBE64(&v, c.ino);
  AppendBE32(&v, c.type);
  v.append(c.name);
  return v;
}
absl::StatusOr<CookieEntry> DecodeCookieEntry(std::string_view v) {
  Reader r(v);
  CookieEntry c;
  r.U64(&c.ino) && r.U32(&c.type);
  if (!r.ok()) return Corrupt("readdir cookie");
  c.name = std::string(r.rest());
  return c;
}

std::string EncodeHandle(const HandleRec& h) {
  std::string v;
  AppendBE64(&v, h.ino);
  AppendBE32(&v, h.flags);
  AppendBE64(&v, h.client_id);
  return v;
}
absl::StatusOr<HandleRec> DecodeHandle(std::string_view v) {
  Reader r(v);
  HandleRec h;
  r.U64(&h.ino) && r.U32(&h.flags);
  if (!r.ok()) return Corrupt("handle");
  // The owner was added later: older records end before it.
  if (v.size() >= 20) r.U64(&h.client_id);
  if (!r.ok()) return Corrupt("handle");
  return h;
}

std::string EncodeReply(const ReplyRec& r) {
  std::string v;
  v.push_back(static_cast<char>(kReplyVersion));
  AppendBE64(&v, static_cast<uint64_t>(r.commit_sec));
  AppendBE64(&v, r.ino);
  AppendBE64(&v, r.handle);
  v.push_back(static_cast<char>((r.truncated ? 1 : 0) |
                                (r.has_inode ? 2 : 0)));
  if (r.has_inode) v += EncodeInode(r.inode);
  return v;
}
absl::StatusOr<ReplyRec> DecodeReply(std::string_view v) {
  Reader r(v);
  ReplyRec out;
  uint8_t version = 0, bits = 0;
  r.U8(&version) && r.I64(&out.commit_sec) && r.U64(&out.ino) &&
      r.U64(&out.handle) && r.U8(&bits);
  if (!r.ok() || version != kReplyVersion) return Corrupt("reply");
  out.truncated = bits & 1;
  out.has_inode = bits & 2;
  if (out.has_inode) {
    absl::StatusOr<Inode> n = DecodeInode(r.rest());
    if (!n.ok()) return Corrupt("reply");
    out.inode = std::move(*n);
  } else if (!r.rest().empty()) {
    return Corrupt("reply");
  }
  return out;
}

std::string EncodeSuperblock(const Superblock& sb) {
  std::string v = "SFMD";
  AppendBE32(&v, sb.format);
  AppendBE64(&v, sb.compat);
  AppendBE64(&v, sb.ro_compat);
  AppendBE64(&v, sb.incompat);
  AppendBE64(&v, sb.next_ino);
  AppendBE64(&v, sb.next_handle);
  AppendBE64(&v, sb.inode_count);
  PutStr(&v, sb.target);
  return v;
}
absl::StatusOr<Superblock> DecodeSuperblock(std::string_view v) {
  if (v.substr(0, 4) != "SFMD") return Corrupt("superblock");
  Reader r(v.substr(4));
  Superblock sb;
  r.U32(&sb.format) && r.U64(&sb.compat) && r.U64(&sb.ro_compat) &&
      r.U64(&sb.incompat) && r.U64(&sb.next_ino) && r.U64(&sb.next_handle) &&
      r.U64(&sb.inode_count) && r.Str(&sb.target);
  if (!r.ok()) return Corrupt("superblock");
  return sb;
}

std::string EncodePrecreate(const PrecreateState& p) {
  std::string v;
  AppendBE64(&v, p.last_used);
  AppendBE32(&v, static_cast<uint32_t>(p.ranges.size()));
  for (const auto& [first, end] : p.ranges) {
    AppendBE64(&v, first);
    AppendBE64(&v, end);
  }
  return v;
}
absl::StatusOr<PrecreateState> DecodePrecreate(std::string_view v) {
  Reader r(v);
  PrecreateState p;
  uint32_t n = 0;
  r.U64(&p.last_used) && r.U32(&n);
  if (!r.ok() || n > 100000) return Corrupt("precreate");
  p.ranges.resize(n);
  for (auto& [first, end] : p.ranges) r.U64(&first) && r.U64(&end);
  if (!r.ok()) return Corrupt("precreate");
  return p;
}

}  // namespace stripefs::mds
