#include "fuse-client/ost_set.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "fuse-client/data_locks.h"
#include "fuse-client/versioned_calls.h"

namespace stripefs::client {

using rpc::Oss;

absl::Status OstSet::Add(uint32_t index, const std::string& address,
                         const TargetOptions& options) {
  if (Get(index) != nullptr) {
    return Errno(EEXIST, absl::StrCat("ost", index, " is known"));
  }
  auto ost =
      std::make_unique<OstClient>(absl::StrCat("ost", index), address, options);
  if (absl::Status s = ost->Connect(); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  auto [it, added] = osts_.try_emplace(index);
  if (!added) return Errno(EEXIST, absl::StrCat("ost", index, " is known"));
  it->second.client = std::move(ost);
  return absl::OkStatus();
}

bool OstSet::SetState(uint32_t index, bool active, bool fail_io) {
  {
    absl::MutexLock l(&mu_);
    auto it = osts_.find(index);
    if (it == osts_.end()) return false;
    State& st = it->second.state;
    st.active = active;
    if (!fail_io || st.fail_io) {
      st.fail_io = fail_io;
      return true;
    }
  }
  // Failing its I/O from now on: what this mount buffered for it is
  // written back first (a controlled change loses nothing acknowledged).
  if (wb_ != nullptr) wb_->FlushOst(index);
  // Its cached data locks go too (their handlers write back and drop the
  // pages), so no read is answered from pages cached under them.
  if (data_locks_ != nullptr) data_locks_->CancelOst(index);
  absl::MutexLock l(&mu_);
  osts_[index].state.fail_io = true;
  return true;
}

bool OstSet::Remove(uint32_t index) {
  if (!SetState(index, false, true)) return false;
  absl::MutexLock l(&mu_);
  osts_[index].state.removed = true;
  return true;
}

OstSet::State OstSet::state(uint32_t index) const {
  absl::MutexLock l(&mu_);
  auto it = osts_.find(index);
  return it == osts_.end() ? State{} : it->second.state;
}

OstClient* OstSet::Get(uint32_t index) const {
  absl::MutexLock l(&mu_);
  auto it = osts_.find(index);
  return it == osts_.end() ? nullptr : it->second.client.get();
}

std::vector<std::pair<uint32_t, OstClient*>> OstSet::all() const {
  absl::MutexLock l(&mu_);
  std::vector<std::pair<uint32_t, OstClient*>> out;
  for (const auto& [index, t] : osts_) {
    if (!t.state.removed) out.emplace_back(index, t.client.get());
  }
  return out;
}

absl::Status OstSet::CheckKnown(uint32_t index) const {
  absl::MutexLock l(&mu_);
  auto it = osts_.find(index);
  if (it == osts_.end()) {
    return Errno(EIO, absl::StrCat("layout names unknown OST ", index));
  }
  if (it->second.state.removed) {
    return Errno(EIO, absl::StrCat("ost", index, " was removed from the "
                                   "cluster"));
  }
  if (it->second.state.fail_io) {
    return Errno(EIO, absl::StrCat("ost", index, " is deactivated and its "
                                   "I/O fails (stripefs target activate)"));
  }
  return absl::OkStatus();
}

absl::Status OstSet::CheckIo(uint32_t index) const {
  absl::Status s = CheckKnown(index);
  if (s.ok() || resolver_ == nullptr || Get(index) != nullptr) return s;
  // A target added since this mount last read the configuration.
  if (absl::Status r = resolver_(); !r.ok()) {
    return Errno(EIO, absl::StrCat("layout names unknown OST ", index,
                                   " (re-reading the configuration: ",
                                   r.message(), ")"));
  }
  return CheckKnown(index);
}

absl::StatusOr<OstClient*> OstSet::Find(uint32_t index) const {
  STRIPEFS_RETURN_IF_ERROR(CheckIo(index));
  return Get(index);
}

void OstSet::EnableWriteBehind(const WriteBehindOptions& options) {
  wb_ = std::make_unique<WriteBehind>(&rpcs_, options);
}

absl::StatusOr<std::string> OstSet::Read(uint32_t ost, uint64_t oid,
                                         uint64_t offset, uint32_t len,
                                         const InterruptFn& intr) {
  STRIPEFS_RETURN_IF_ERROR(CheckIo(ost));
  return io()->Read(ost, oid, offset, len, intr);
}

absl::Status OstSet::Write(uint32_t ost, uint64_t oid, uint64_t offset,
                           const char* data, size_t len,
                           const InterruptFn& intr) {
  STRIPEFS_RETURN_IF_ERROR(CheckIo(ost));
  return io()->Write(ost, oid, offset, data, len, intr);
}

absl::Status OstSet::Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                              const InterruptFn& intr) {
  STRIPEFS_RETURN_IF_ERROR(CheckIo(ost));
  // The write-behind sends what it holds of the object first.
  absl::Status s = io()->Truncate(ost, oid, size, intr);
  if (!s.ok() || data_locks_ == nullptr) return s;
  // Pages other mounts cache beyond the cut go now (data_locks.h).
  return data_locks_->RevokeBeyond(ost, oid, size, intr);
}

absl::Status OstSet::Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                          const InterruptFn& intr) {
  STRIPEFS_RETURN_IF_ERROR(CheckIo(ost));
  return io()->Sync(ost, oids, intr);
}

absl::Status OstSet::Flush(const std::vector<ObjectRef>& objects,
                           const InterruptFn& intr) {
  return io()->Flush(objects, intr);
}

absl::StatusOr<std::string> OstSet::Rpcs::Read(uint32_t ost, uint64_t oid,
                                               uint64_t offset, uint32_t len,
                                               const InterruptFn& intr) {
  absl::StatusOr<OstClient*> c = set_->Find(ost);
  if (!c.ok()) return c.status();
  rpc::ReadReply reply;
  absl::Status s = (*c)->Call(
      &Oss::Stub::Read, "Read", intr,
      [&](rpc::ReadRequest& r) {
        r.set_oid(oid);
        r.set_offset(offset);
        r.set_length(len);
      },
      &reply);
  if (!s.ok()) return s;
  return std::move(*reply.mutable_data());
}

absl::Status OstSet::Rpcs::Write(uint32_t ost, uint64_t oid, uint64_t offset,
                                 const char* data, size_t len,
                                 const InterruptFn& intr) {
  absl::StatusOr<OstClient*> c = set_->Find(ost);
  if (!c.ok()) return c.status();
  rpc::WriteReply reply;
  // Write or Write2 (with a crc32), as negotiated (versioned_calls.h).
  return WriteInProtocol(
      **c, {.oid = oid, .offset = offset, .data = data, .len = len}, intr,
      &reply);
}

absl::Status OstSet::Rpcs::WriteOwned(uint32_t ost, uint64_t oid,
                                      uint64_t offset, std::string&& data,
                                      const InterruptFn& intr) {
  absl::StatusOr<OstClient*> c = set_->Find(ost);
  if (!c.ok()) return c.status();
  rpc::WriteReply reply;
  return WriteInProtocol(**c,
                         {.oid = oid,
                          .offset = offset,
                          .data = data.data(),
                          .len = data.size(),
                          .owned = &data},
                         intr, &reply);
}

absl::Status OstSet::Rpcs::Truncate(uint32_t ost, uint64_t oid,
                                    uint64_t size, const InterruptFn& intr) {
  absl::StatusOr<OstClient*> c = set_->Find(ost);
  if (!c.ok()) return c.status();
  rpc::Empty reply;
  return (*c)->Call(
      &Oss::Stub::Truncate, "Truncate", intr,
      [&](rpc::TruncateRequest& r) {
        (*c)->FillHeader(r.mutable_hdr());
        r.set_oid(oid);
        r.set_size(size);
      },
      &reply);
}

absl::Status OstSet::Rpcs::Sync(uint32_t ost,
                                const std::vector<uint64_t>& oids,
                                const InterruptFn& intr) {
  absl::StatusOr<OstClient*> c = set_->Find(ost);
  if (!c.ok()) return c.status();
  rpc::Empty reply;
  return (*c)->Call(
      &Oss::Stub::Sync, "Sync", intr,
      [&](rpc::SyncRequest& r) {
        (*c)->FillHeader(r.mutable_hdr());
        for (uint64_t oid : oids) r.add_oids(oid);
      },
      &reply);
}

}  // namespace stripefs::client
