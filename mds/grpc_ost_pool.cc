// OstPool over gRPC: the MDS is a client of each OSS like a mount is, over
// the same library (conn/target_client.h): one conn::OstClient per OST
// with the MDS's client id, a Connect handshake before the first call, a
// deadline on every send, a call that finds the OSS unreachable resent with
// the same xid after a reconnect (a fresh channel once connecting keeps
// failing) within a retry window, and, with a lock service, the OST's gate
// closed while its server stops (conn/active_gate.h: PR on active:ost<i>).
//
// Resending is safe on the OSS: Destroy skips unknown objects, Statfs
// changes nothing, and a resent Precreate creates a fresh range (the range
// of a call whose reply was lost stays unused: empty objects past the pool).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/errors.h"
#include "conn/active_gate.h"
#include "conn/target_client.h"
#include "dlm/active_watch.h"
#include "mds/ost_pool.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {

// How long a call resends (and waits at a closed gate) before it fails.
constexpr absl::Duration kRetryWindow = absl::Seconds(30);
// One Precreate send (the OSS syncs the new objects before it answers).
constexpr absl::Duration kPrecreateDeadline = absl::Seconds(10);
// Statfs leaves an unreachable OST out of the sums: it gives up sooner.
constexpr absl::Duration kStatfsWindow = absl::Seconds(10);
constexpr absl::Duration kDestroyDeadline = absl::Seconds(30);
constexpr absl::Duration kStatfsDeadline = absl::Seconds(10);

class GrpcOstPool : public OstPool {
 public:
  GrpcOstPool(std::vector<OstTarget> targets, uint64_t client_id) {
    options_.client_id = client_id;
    options_.client_kind = "mds";
    options_.client_name = absl::StrCat("mds:", getpid());
    options_.retry_window = kRetryWindow;
    absl::MutexLock l(&mu_);
    for (const auto& t : targets) AddLocked(t);
  }

  ~GrpcOstPool() override { StopWatching(); }

  std::vector<OstTarget> Targets() const override {
    absl::MutexLock l(&mu_);
    return targets_;
  }

  absl::Status AddTarget(const OstTarget& target) override {
    conn::OstClient* added = nullptr;
    dlm::DlmClient* dlm = nullptr;
    {
      absl::MutexLock l(&mu_);
      if (removed_.count(target.index) != 0) {
        return Errno(EEXIST, absl::StrCat("ost", target.index, " was removed "
                                          "from this MDS instance: use "
                                          "another index"));
      }
      if (osts_.count(target.index) != 0) {
        return Errno(EEXIST, absl::StrCat("ost", target.index, " exists"));
      }
      added = AddLocked(target);
      dlm = watching_;
    }
    if (dlm != nullptr) Watch(dlm, added);
    return absl::OkStatus();
  }

  absl::Status RemoveTarget(uint32_t index) override {
    absl::MutexLock l(&mu_);
    for (auto it = targets_.begin(); it != targets_.end(); ++it) {
      if (it->index == index) {
        targets_.erase(it);
        removed_.insert(index);
        return absl::OkStatus();
      }
    }
    return Errno(ENOENT, absl::StrCat("no ost", index));
  }

  absl::Status SetTargetState(uint32_t index, bool active,
                              bool fail_io) override {
    absl::MutexLock l(&mu_);
    for (OstTarget& t : targets_) {
      if (t.index == index) {
        t.active = active;
        t.fail_io = fail_io;
        return absl::OkStatus();
      }
    }
    return Errno(ENOENT, absl::StrCat("no ost", index));
  }

  // Unlike a mount, the MDS does not hold its OST calls until the first
  // grant: an unreachable lock service must not stop object allocation.
  void WatchActive(dlm::DlmClient* dlm) override {
    if (dlm == nullptr) return;
    std::vector<conn::OstClient*> all;
    {
      absl::MutexLock l(&mu_);
      watching_ = dlm;
      for (const auto& [index, ost] : osts_) all.push_back(ost.get());
    }
    for (conn::OstClient* ost : all) Watch(dlm, ost);
  }

  void StopWatching() override {
    std::vector<std::unique_ptr<dlm::ActiveWatch>> watches;
    {
      absl::MutexLock l(&mu_);
      watching_ = nullptr;
      watches.swap(watches_);
    }
    for (auto& w : watches) w->Stop();
  }

  absl::StatusOr<ObjectRange> Precreate(uint32_t ost, uint32_t count,
                                        absl::Duration wait) override {
    rpc::PrecreateReply reply;
    absl::Status s = Call(
        ost, &rpc::Oss::Stub::Precreate, "Precreate", wait,
        std::min(wait, kPrecreateDeadline),
        [count](conn::OstClient& c, rpc::PrecreateRequest& req) {
          c.FillHeader(req.mutable_hdr());
          req.set_count(count);
        },
        &reply);
    if (!s.ok()) return s;
    if (reply.count() == 0) return Errno(EIO, "OST precreated no objects");
    return ObjectRange{reply.first_oid(), reply.count()};
  }

  absl::Status Destroy(uint32_t ost,
                       const std::vector<uint64_t>& oids) override {
    rpc::Empty reply;
    return Call(
        ost, &rpc::Oss::Stub::Destroy, "Destroy", kRetryWindow,
        kDestroyDeadline,
        [&oids](conn::OstClient& c, rpc::DestroyRequest& req) {
          c.FillHeader(req.mutable_hdr());
          for (uint64_t oid : oids) req.add_oids(oid);
        },
        &reply);
  }

  absl::StatusOr<OstStatfs> Statfs(uint32_t ost) override {
    return Statfs(ost, kStatfsWindow);
  }

  absl::StatusOr<OstStatfs> Statfs(uint32_t ost,
                                   absl::Duration wait) override {
    rpc::OssStatfsReply reply;
    absl::Status s = Call(
        ost, &rpc::Oss::Stub::Statfs, "Statfs", wait,
        std::min(wait, kStatfsDeadline),
        [](conn::OstClient&, rpc::OssStatfsRequest&) {}, &reply);
    if (!s.ok()) return s;
    return OstStatfs{reply.total_bytes(), reply.free_bytes(),
                     reply.avail_bytes(), reply.objects()};
  }

 private:
  // One call to `ost`: handshake first if none succeeded yet, then
  // conn::OstClient::Call (gate, format once, resend with the same xid)
  // with a deadline per send. The wait at a closed gate and the resends
  // together last at most `window`; then EAGAIN (still at the gate) or the
  // last error.
  template <typename Req, typename Reply, typename Format>
  absl::Status Call(uint32_t ost,
                    grpc::Status (rpc::Oss::Stub::*fn)(grpc::ClientContext*,
                                                       const Req&, Reply*),
                    const char* method, absl::Duration window,
                    absl::Duration deadline, Format&& format, Reply* reply) {
    conn::OstClient* found = Find(ost);
    if (found == nullptr) {
      return Errno(EINVAL, absl::StrCat("unknown OST index ", ost));
    }
    conn::OstClient& c = *found;
    if (c.instance() == 0) {
      // Not connected yet (the OSS was not up when the MDS started): an
      // unreachable OSS is the resend loop's to wait for; any other
      // handshake error (versions) is final.
      absl::Status s = c.Connect();
      if (!s.ok() && !absl::IsUnavailable(s)) return s;
    }
    const absl::Time give_up = absl::Now() + window;
    absl::Status s = c.Call(
        fn, method, [give_up] { return absl::Now() >= give_up; },
        [&](Req& req) { format(c, req); }, reply, deadline);
    if (ToErrno(s) == EINTR) {
      return Errno(EAGAIN, absl::StrCat(c.name(), " ", method, ": not back "
                                        "within ", absl::FormatDuration(window),
                                        " (", s.message(), ")"));
    }
    return s;
  }

  conn::OstClient* AddLocked(const OstTarget& t)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    targets_.push_back(t);
    std::sort(targets_.begin(), targets_.end(),
              [](const OstTarget& a, const OstTarget& b) {
                return a.index < b.index;
              });
    auto& c = osts_[t.index];
    c = std::make_unique<conn::OstClient>(absl::StrCat("ost", t.index),
                                          t.address, options_);
    return c.get();
  }

  // Clients are never dropped while the pool lives: a pointer stays valid.
  conn::OstClient* Find(uint32_t index) const {
    absl::MutexLock l(&mu_);
    if (removed_.count(index) != 0) return nullptr;
    auto it = osts_.find(index);
    return it == osts_.end() ? nullptr : it->second.get();
  }

  void Watch(dlm::DlmClient* dlm, conn::OstClient* ost) {
    auto w =
        dlm::ActiveWatch::Start(dlm, ost->name(), conn::GateHooks(ost));
    if (!w.ok()) {
      spdlog::error("{}: cannot watch its active lock: {}", ost->name(),
                    w.status().ToString());
      return;
    }
    absl::MutexLock l(&mu_);
    watches_.push_back(std::move(*w));
  }

  conn::TargetOptions options_;
  mutable absl::Mutex mu_;
  std::vector<OstTarget> targets_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, std::unique_ptr<conn::OstClient>> osts_
      ABSL_GUARDED_BY(mu_);
  dlm::DlmClient* watching_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::set<uint32_t> removed_ ABSL_GUARDED_BY(mu_);  // clients kept alive
  std::vector<std::unique_ptr<dlm::ActiveWatch>> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void ApplyTestPrecreateBatch(uint32_t* batch, uint32_t* low_water) {
  const char* v = std::getenv("STRIPEFS_TEST_PRECREATE_BATCH");
  uint32_t n = 0;
  if (v == nullptr) return;
  if (!absl::SimpleAtoi(v, &n) || n == 0) {
    spdlog::warn("STRIPEFS_TEST_PRECREATE_BATCH={}: not a positive number; "
                 "ignored",
                 v);
    return;
  }
  *batch = n;
  *low_water = std::max<uint32_t>(1, n / 2);
  spdlog::warn("STRIPEFS_TEST_PRECREATE_BATCH={}: precreate batch {}, low "
               "water {} (a test setting)",
               v, *batch, *low_water);
}

std::unique_ptr<OstPool> NewGrpcOstPool(std::vector<OstTarget> targets,
                                        uint64_t client_id) {
  return std::make_unique<GrpcOstPool>(std::move(targets), client_id);
}

}  // namespace stripefs::mds
