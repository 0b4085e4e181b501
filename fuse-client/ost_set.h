// OstSet: the mount's OST connections by OST index, and the ObjectIo that
// FileIo uses over them. Built at mount time from GetConfig; targets added
// online join it later (fuse-client/config_watch.h), and each target has
// the administrator's state (active, fail_io) apart from its connection
// state: a target deactivated with fail_io fails its I/O at once (EIO),
// after what was buffered for it was written back. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "fuse-client/file_io.h"
#include "fuse-client/target_client.h"
#include "fuse-client/write_behind.h"

namespace stripefs::client {

class DataLocks;

class OstSet : public ObjectIo {
 public:
  OstSet() = default;
  // Adds (and connects) OST `index` at `address`; EEXIST when known. The
  // client lives as long as the set.
  absl::Status Add(uint32_t index, const std::string& address,
                   const TargetOptions& options);
  // Called (on the I/O's thread) when a layout names a target this mount
  // does not know yet (added while the mount was away or before its
  // config lock was called back): re-reads the configuration. Set before
  // use.
  void set_resolver(std::function<absl::Status()> r) {
    resolver_ = std::move(r);
  }
  // The administrator's state of a known target (false when unknown).
  // Turning fail_io on writes back what is buffered for it first.
  bool SetState(uint32_t index, bool active, bool fail_io);
  // Removed from the cluster: its I/O fails, listings leave it out.
  bool Remove(uint32_t index);
  struct State {
    bool active = true;
    bool fail_io = false;
    bool removed = false;
  };
  State state(uint32_t index) const;

  // With a lock service: Truncate then takes PW over [size, EOF] of the
  // object once it is cut (DataLocks::RevokeBeyond). Set before use.
  void set_data_locks(DataLocks* d) { data_locks_ = d; }

  // Buffers writes in the mount from now on (write_behind.h; only with a
  // lock service). Call before the mount serves requests.
  void EnableWriteBehind(const WriteBehindOptions& options);
  // Null unless enabled.
  WriteBehind* write_behind() const { return wb_.get(); }

  // OK when I/O may go to target `index`; EIO when it is unknown (after
  // the resolver re-read the configuration) or deactivated with fail_io.
  absl::Status CheckIo(uint32_t index) const;
  // Null when the index is unknown.
  OstClient* Get(uint32_t index) const;
  // Every target, by index (a snapshot; the clients stay valid).
  std::vector<std::pair<uint32_t, OstClient*>> all() const;

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
  // The client of `index`; EIO when unknown or failing its I/O.
  absl::StatusOr<OstClient*> Find(uint32_t index) const;
  absl::Status CheckKnown(uint32_t index) const;
  std::function<absl::Status()> resolver_;
  struct Target {
    std::unique_ptr<OstClient> client;
    State state;
  };
  mutable absl::Mutex mu_;
  std::map<uint32_t, Target> osts_ ABSL_GUARDED_BY(mu_);
  DataLocks* data_locks_ = nullptr;
  Rpcs rpcs_{this};
  std::unique_ptr<WriteBehind> wb_;  // destroyed (written back) first
};

}  // namespace stripefs::client
