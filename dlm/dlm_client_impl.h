// DlmClient::Impl, the state and helpers shared by the files that
// implement the DLM client library (private to them; the public API is
// dlm/dlm_client.h, which keeps gRPC out):
//   dlm_client.cc          start, close, the worker and maintenance threads,
//                          the public class forwarding to Impl;
//   dlm_client_session.cc  the session reader: connect, replay, callbacks;
//   dlm_client_locks.cc    Lock, Release, Convert, Cancel, Test, Glimpse.
//
// Lock order: mu_ before counts_mu_; handlers_mu_ is taken alone. No
// handler and no RPC runs while mu_ is held.
#pragma once

#include "dlm/dlm_client.h"

#include <algorithm>
#include <cerrno>
#include <deque>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/errors.h"
#include "dlm/lock_cache.h"
#include "dlm/proto_convert.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/proto/dlm.grpc.pb.h"
#include "rpc/status.h"
#include "spdlog/spdlog.h"

namespace stripefs::dlm {

class DlmClient::Impl {
 public:
  void HandlerWorking(bool on);
  Impl(DlmClientOptions options, uint64_t client_id)
      : options_(std::move(options)),
        client_id_(client_id),
        clock_(options_.clock != nullptr ? options_.clock : RealClock()),
        stub_(rpc::Dlm::NewStub(rpc::MakeChannel(options_.address))),
        cache_({options_.lru_max_count, options_.lru_max_age}, clock_),
        next_xid_(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))) {}

  void Start() {
    if (!options_.defer_connect) connect_allowed_.Notify();
    reader_ = std::thread([this] { ReaderLoop(); });
    worker_ = std::thread([this] { WorkerLoop(); });
    maintenance_ = std::thread([this] { MaintenanceLoop(); });
  }

  void Close(bool cancel_locks, uint64_t keep) {
    {
      absl::MutexLock l(&mu_);
      if (closed_) return;
      closed_ = true;
      closing_.store(true);
      if (session_ctx_ != nullptr) session_ctx_->TryCancel();
    }
    stop_.Notify();
    reader_.join();
    worker_.join();
    maintenance_.join();
    if (!cancel_locks) return;
    std::vector<uint64_t> handles;
    {
      absl::MutexLock l(&mu_);
      handles = cache_.Handles();
      for (uint64_t h : handles) cache_.Erase(h);
    }
    for (uint64_t h : handles) {
      if (h == keep) continue;
      absl::Status s = CancelRpc(h, /*retry=*/false);
      if (!s.ok()) {
        spdlog::warn("dlm: cancelling lock {} at close: {}", h, s.ToString());
      }
    }
  }

  void RegisterHandler(const std::string& prefix, LockHandler* handler) {
    absl::MutexLock l(&handlers_mu_);
    handlers_[prefix] = handler;
  }
  void UnregisterHandler(const std::string& prefix) {
    absl::MutexLock l(&handlers_mu_);
    handlers_.erase(prefix);
  }

  absl::StatusOr<LockInfo> Lock(const LockSpec& spec, const LockOptions& opts);
  void Release(uint64_t handle);
  absl::StatusOr<LockInfo> Convert(uint64_t handle, LockMode mode,
                                   const std::function<bool()>& interrupted);
  absl::Status Cancel(uint64_t handle);
  absl::StatusOr<LockInfo> EnqueueFor(uint64_t owner, uint64_t xid,
                                      const LockSpec& spec);
  uint64_t PrepareAdopt();
  absl::StatusOr<LockInfo> Adopt(uint64_t evictions,
                                 const std::optional<LockInfo>& lock);
  absl::StatusOr<std::optional<LockInfo>> Test(const LockSpec& spec);
  size_t CancelUnused(const ResourceId& resource);
  size_t CancelUnusedPrefix(const std::string& prefix);
  // Handlers, then cancel RPCs, of locks taken out of the cache.
  size_t CancelTaken(const std::vector<LockInfo>& victims);
  absl::StatusOr<std::vector<GlimpseValue>> Glimpse(const ResourceId& res,
                                                    uint64_t start,
                                                    uint64_t end);

  bool Connected() const {
    absl::MutexLock l(&mu_);
    return connected_;
  }
  uint64_t Evictions() const { return evictions_.load(); }
  void StartConnecting() {
    absl::MutexLock l(&mu_);
    if (!connect_allowed_.HasBeenNotified()) connect_allowed_.Notify();
  }
  size_t CachedCount() const {
    absl::MutexLock l(&mu_);
    return cache_.size();
  }
  std::map<std::string, uint64_t> RpcCounts() const {
    absl::MutexLock l(&counts_mu_);
    return counts_;
  }

 private:
  // How often a waiter polls its interrupt check.
  static constexpr absl::Duration kInterruptPoll = absl::Milliseconds(20);
  // After Connect has failed this long, the reader opens a new channel.
  static constexpr absl::Duration kNewChannelAfter = absl::Seconds(2);

  // The DLM is away (restarting, unreachable, not yet connected to us):
  // worth sending the same request again (see dlm_client.cc).
  static bool Retryable(const absl::Status& s);

  struct Work {
    LockInfo lock;
    bool lost = false;        // gone already: handler only, no cancel
    bool call_handler = true;  // false: just cancel on the server
    // Only tell the handler that this in-use lock was asked back
    // (OnBlockedInUse); no cancel.
    bool in_use_notice = false;
  };

  rpc::ReqHeader Header() {
    rpc::ReqHeader h;
    h.set_client_id(client_id_);
    h.set_xid(next_xid_.fetch_add(1));
    return h;
  }
  std::shared_ptr<rpc::Dlm::Stub> Stub() {
    absl::MutexLock l(&stub_mu_);
    return stub_;
  }
  // A fresh channel: a gRPC channel whose connection was lost can stay in
  // TRANSIENT_FAILURE for many seconds after the DLM is back (seen ~17 s
  // after a SIGTERM restart), long enough for the new DLM to evict us.
  void NewChannel() {
    auto stub = rpc::Dlm::NewStub(rpc::MakeChannel(options_.address));
    absl::MutexLock l(&stub_mu_);
    stub_ = std::move(stub);
  }
  void CountRpc(const char* method) {
    absl::MutexLock l(&counts_mu_);
    ++counts_[method];
  }
  bool Stopping() { return closing_.load() || stop_.HasBeenNotified(); }
  // Sleeps `d` unless stopping or interrupted; false if cut short.
  bool Nap(absl::Duration d, const std::function<bool()>& interrupted) {
    const absl::Time end = absl::Now() + d;
    while (absl::Now() < end) {
      if (interrupted && interrupted()) return false;
      if (stop_.WaitForNotificationWithTimeout(
              std::min(kInterruptPoll, end - absl::Now()))) {
        return false;
      }
    }
    return true;
  }
  absl::Duration Jitter(absl::Duration d) {
    absl::MutexLock l(&rng_mu_);
    return d * std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
  }

  // One unary call; with `retry`, retried (same request, same xid) with
  // jittered backoff while the DLM is unreachable.
  template <typename Fn>
  absl::Status Rpc(const char* method, Fn call, bool retry,
                   const std::function<bool()>& interrupted = {}) {
    absl::Duration backoff = options_.backoff_min;
    for (;;) {
      grpc::ClientContext ctx;
      rpc::SetDeadline(ctx, options_.rpc_deadline);
      CountRpc(method);
      absl::Status s = rpc::FromGrpc(call(&ctx));
      if (!s.ok() && ToErrno(s) == ENOTCONN) KickSession();
      if (s.ok() || !retry || !Retryable(s)) return s;
      if (Stopping()) return Errno(ESHUTDOWN, "DLM client closed");
      if (!Nap(Jitter(backoff), interrupted)) {
        if (Stopping()) return Errno(ESHUTDOWN, "DLM client closed");
        return Errno(EINTR, absl::StrCat(method, " interrupted"));
      }
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
  }

  // The DLM does not know this client (ENOTCONN): it evicted us (the
  // EVICTED callback may be lost with a broken stream) or lost its table.
  // Ends the session stream so the reader connects anew (a new life on the
  // DLM) and replays the locks it holds; those the DLM no longer has are
  // dropped as lost (ESTALE), so a retried request does not spin on
  // ENOTCONN.
  void KickSession() {
    absl::MutexLock l(&mu_);
    if (connected_ && session_ctx_ != nullptr) {
      spdlog::warn("dlm {}: the DLM does not know this client (evicted?); "
                   "reconnecting",
                   options_.address);
      evictions_.fetch_add(1);
      connected_ = false;
      session_ctx_->TryCancel();
    }
  }

  absl::Status CancelRpc(uint64_t handle, bool retry) {
    rpc::CancelRequest req;
    *req.mutable_hdr() = Header();
    req.set_handle(handle);
    rpc::DlmEmpty rep;
    return Rpc(
        "Cancel",
        [&](grpc::ClientContext* ctx) {
          return Stub()->Cancel(ctx, req, &rep);
        },
        retry);
  }

  LockHandler* FindHandler(const std::string& name) {
    absl::MutexLock l(&handlers_mu_);
    LockHandler* best = nullptr;
    size_t best_len = 0;
    for (const auto& [prefix, h] : handlers_) {
      if (name.compare(0, prefix.size(), prefix) == 0 &&
          (best == nullptr || prefix.size() >= best_len)) {
        best = h;
        best_len = prefix.size();
      }
    }
    return best;
  }

  void PushWork(Work w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    work_.push_back(std::move(w));
  }
  // No enqueue or adoption in flight any more: a lock asked back while one
  // was, and still unknown, is one this client does not hold (an
  // interrupted wait, an intent lock whose reply was lost): cancelled, as
  // when no enqueue is in flight (HandleCallback).
  void ForgetEarlyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (uint64_t h : early_blocks_) {
      if (cache_.Find(h) != nullptr) continue;
      LockInfo unknown;
      unknown.handle = h;
      PushWork({unknown, false, /*call_handler=*/false});
    }
    early_grants_.clear();
    early_blocks_.clear();
  }
  // Hands an unused, asked-back lock to the worker.
  void MaybeCancelLocked(CachedLock& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (c.users == 0 && c.blocked && c.info.granted && !c.cancelling) {
      cache_.MarkCancelling(c);
      PushWork({c.info, false, true});
    }
  }

  void ReaderLoop();
  void Replay();
  void HandleCallback(const rpc::Callback& cb);
  void WorkerLoop();
  void MaintenanceLoop();

  const DlmClientOptions options_;
  const uint64_t client_id_;
  Clock* const clock_;
  absl::Mutex stub_mu_;  // taken alone
  // Replaced by the reader when the DLM stays unreachable (see ReaderLoop).
  std::shared_ptr<rpc::Dlm::Stub> stub_ ABSL_GUARDED_BY(stub_mu_);

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // a lock changed state
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* session_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  LockCache cache_ ABSL_GUARDED_BY(mu_);
  // Handlers inside HandlerWorking(true) (DlmClient::HandlerWorking).
  int handlers_working_ ABSL_GUARDED_BY(mu_) = 0;
  // Callbacks that overtook the Enqueue reply of their lock.
  std::map<uint64_t, LockInfo> early_grants_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> early_blocks_ ABSL_GUARDED_BY(mu_);
  int pending_enqueues_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Work> work_ ABSL_GUARDED_BY(mu_);

  absl::Mutex handlers_mu_;
  std::map<std::string, LockHandler*> handlers_ ABSL_GUARDED_BY(handlers_mu_);
  mutable absl::Mutex counts_mu_;
  std::map<std::string, uint64_t> counts_ ABSL_GUARDED_BY(counts_mu_);
  absl::Mutex rng_mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_){std::random_device{}()};

  std::atomic<uint64_t> next_xid_;
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> evictions_{0};  // see DlmClient::Evictions
  absl::Notification stop_;
  // Set by Start() or, with defer_connect, by StartConnecting().
  absl::Notification connect_allowed_;
  std::thread reader_;
  std::thread worker_;
  std::thread maintenance_;
};

}  // namespace stripefs::dlm
