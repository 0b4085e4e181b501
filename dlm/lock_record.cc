#include "dlm/lock_record.h"

#include <cerrno>

#include "common/errors.h"
#include "storage/kv.h"

namespace stripefs::dlm {
namespace {

constexpr uint8_t kLockVersion = 1;
constexpr size_t kLockFixed = 1 + 8 * 6 + 4;  // version, 6 u64, 4 bytes

}  // namespace

std::string LockKey(uint64_t handle) {
  std::string k(1, kLockPrefix);
  storage::AppendBE64(&k, handle);
  return k;
}

std::string ClientKey(uint64_t client_id) {
  std::string k(1, kClientPrefix);
  storage::AppendBE64(&k, client_id);
  return k;
}

std::string EncodeLock(const LockRecord& r) {
  std::string v;
  v.push_back(static_cast<char>(kLockVersion));
  storage::AppendBE64(&v, r.client_id);
  storage::AppendBE64(&v, r.xid);
  storage::AppendBE64(&v, r.seq);
  storage::AppendBE64(&v, r.spec.bits);
  storage::AppendBE64(&v, r.spec.start);
  storage::AppendBE64(&v, r.spec.end);
  v.push_back(static_cast<char>(r.spec.resource.type));
  v.push_back(static_cast<char>(r.spec.mode));
  v.push_back(static_cast<char>(r.req_mode));
  // Flags byte: bit 0 granted, bit 1 exact (records written before the
  // exact flag existed have only bit 0).
  v.push_back(static_cast<char>((r.granted ? 1 : 0) | (r.exact ? 2 : 0)));
  v.append(r.spec.resource.name);
  return v;
}

absl::StatusOr<LockRecord> DecodeLock(std::string_view key,
                                      std::string_view v) {
  if (key.size() != 9 || key[0] != kLockPrefix || v.size() < kLockFixed ||
      static_cast<uint8_t>(v[0]) != kLockVersion) {
    return Errno(EIO, "corrupt lock record");
  }
  LockRecord r;
  r.handle = storage::DecodeBE64(key.substr(1));
  size_t p = 1;
  auto next = [&]() {
    uint64_t x = storage::DecodeBE64(v.substr(p));
    p += 8;
    return x;
  };
  r.client_id = next();
  r.xid = next();
  r.seq = next();
  r.spec.bits = next();
  r.spec.start = next();
  r.spec.end = next();
  int type = v[p++];
  int mode = v[p++];
  int req = v[p++];
  const uint8_t flags = static_cast<uint8_t>(v[p++]);
  r.granted = (flags & 1) != 0;
  r.exact = (flags & 2) != 0;
  if (!ValidType(type) || !ValidMode(mode) || !ValidMode(req)) {
    return Errno(EIO, "corrupt lock record: bad type or mode");
  }
  r.spec.resource.type = static_cast<LockType>(type);
  r.spec.mode = static_cast<LockMode>(mode);
  r.req_mode = static_cast<LockMode>(req);
  r.spec.resource.name = std::string(v.substr(p));
  return r;
}

std::string EncodeMeta(const MetaRecord& m) {
  std::string v;
  storage::AppendBE64(&v, m.next_handle);
  storage::AppendBE64(&v, m.next_seq);
  v.push_back(m.clean ? 1 : 0);
  return v;
}

absl::StatusOr<MetaRecord> DecodeMeta(std::string_view v) {
  if (v.size() != 17) return Errno(EIO, "corrupt DLM meta record");
  MetaRecord m;
  m.next_handle = storage::DecodeBE64(v);
  m.next_seq = storage::DecodeBE64(v.substr(8));
  m.clean = v[16] != 0;
  return m;
}

}  // namespace stripefs::dlm
