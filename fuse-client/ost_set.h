// OstSet: the mount's OST connections by OST index, and the ObjectIo that
// FileIo uses over them. Built once at mount time from GetConfig; the set of
// OSTs is fixed afterwards (online target changes come later).
// Thread-safe after construction.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "fuse-client/file_io.h"
#include "fuse-client/target_client.h"
#include "fuse-client/write_behind.h"

namespace stripefs::client {

class DataLocks;

class OstSet : public ObjectIo {
 public:
  OstSet() = default;
  // Adds (and connects) OST `index` at `address`. Not thread-safe: call
  // before the mount serves requests.
  absl::Status Add(uint32_t index, const std::string& address,
                   const TargetOptions& options);

  // With a lock service: Truncate then takes PW over [size, EOF] of the
  // object once it is cut (DataLocks::RevokeBeyond). Set before use.
  void set_data_locks(DataLocks* d) { data_locks_ = d; }

  // Buffers writes in the mount from now on (write_behind.h; only with a
  // lock service). Call before the mount serves requests.
  void EnableWriteBehind(const WriteBehindOptions& options);
  // Null unless enabled.
  WriteBehind* write_behind() const { return wb_.get(); }

  // Null when the index is unknown.
  OstClient* Get(uint32_t index) const;
  const std::map<uint32_t, std::unique_ptr<OstClient>>& all() const {
    return osts_;
  }

  absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid, uint64_t offset,
                                   uint32_t len,
                                   const InterruptFn& intr) override;
  absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                     const char* data, size_t len,
                     const InterruptFn& intr) override;
  absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                        const InterruptFn& intr) override;
  absl::Status Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                    const InterruptFn& intr) override;
  absl::Status Flush(const std::vector<ObjectRef>& objects,
                     const InterruptFn& intr) override;

 private:
  // The RPCs themselves (under the write-behind when there is one).
  class Rpcs : public ObjectIo {
   public:
    explicit Rpcs(const OstSet* set) : set_(set) {}
    absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid,
                                     uint64_t offset, uint32_t len,
                                     const InterruptFn& intr) override;
    absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                       const char* data, size_t len,
                       const InterruptFn& intr) override;
    absl::Status WriteOwned(uint32_t ost, uint64_t oid, uint64_t offset,
                            std::string&& data,
                            const InterruptFn& intr) override;
    absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                          const InterruptFn& intr) override;
    absl::Status Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                      const InterruptFn& intr) override;

   private:
    const OstSet* const set_;
  };
  ObjectIo* io() {
    if (wb_ != nullptr) return wb_.get();
    return &rpcs_;
  }
  absl::StatusOr<OstClient*> Find(uint32_t index) const;
  std::map<uint32_t, std::unique_ptr<OstClient>> osts_;
  DataLocks* data_locks_ = nullptr;
  Rpcs rpcs_{this};
  std::unique_ptr<WriteBehind> wb_;  // destroyed (written back) first
};

}  // namespace stripefs::client
