// DlmClient::Impl: the session reader (connect, replay, callbacks), the
// worker that runs handlers and cancels, and the maintenance thread that
// Touches in-use locks and sweeps the LRU.
//
// Lock order: mu_ before counts_mu_; handlers_mu_ is taken alone. No
// handler and no RPC runs while mu_ is held.
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
namespace {

// How often a waiter polls its interrupt check.
constexpr absl::Duration kInterruptPoll = absl::Milliseconds(20);
// After Connect has failed this long, the reader opens a new channel.
constexpr absl::Duration kNewChannelAfter = absl::Seconds(2);

// The DLM is away (restarting, unreachable, not yet connected to us):
// worth sending the same request again. EAGAIN (busy lock) is an answer.
// ENOTCONN (the DLM does not know us, e.g. evicted) is retried only because
// Rpc() kicks the session on it: the reader connects anew, so the retry is
// bounded by a reconnect.
bool Retryable(const absl::Status& s) {
  int err = ToErrno(s);
  if (err == ESHUTDOWN || err == ENOTCONN) return true;
  if (err == EAGAIN || err == EINTR) return false;
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

}  // namespace

class DlmClient::Impl {
 public:
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
  absl::StatusOr<std::optional<LockInfo>> Test(const LockSpec& spec);
  size_t CancelUnused(const ResourceId& resource);
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
  // Hands an unused, asked-back lock to the worker.
  void MaybeCancelLocked(CachedLock& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (c.users == 0 && c.blocked && c.info.granted && !c.cancelling) {
      c.cancelling = true;
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

void DlmClient::Impl::ReaderLoop() {
  absl::Duration backoff = options_.backoff_min;
  bool was_connected = false;
  // Since when Connect has been failing (InfiniteFuture: it is not).
  absl::Time failing_since = absl::InfiniteFuture();
  // The reset is asked for until a connect succeeded, never after.
  bool reset = options_.reset_on_first_connect;
  while (!Stopping() && !connect_allowed_.HasBeenNotified()) {
    Nap(kInterruptPoll, {});
  }
  while (!Stopping()) {
    rpc::ConnectRequest creq = rpc::MakeConnectRequest(
        client_id_, options_.kind, options_.name);
    creq.set_reset(reset);
    rpc::ConnectReply crep;
    absl::Status s = Rpc(
        "Connect",
        [&](grpc::ClientContext* ctx) {
          return Stub()->Connect(ctx, creq, &crep);
        },
        /*retry=*/false);
    if (!s.ok()) {
      if (was_connected) {
        spdlog::warn("dlm {}: connect failed, retrying: {}", options_.address,
                     s.ToString());
        was_connected = false;
      }
      const absl::Time now = absl::Now();
      if (failing_since == absl::InfiniteFuture()) {
        failing_since = now;
      } else if (now - failing_since >= kNewChannelAfter) {
        NewChannel();
        failing_since = now;
      }
      Nap(Jitter(backoff), {});
      backoff = std::min(backoff * 2, options_.backoff_max);
      continue;
    }
    failing_since = absl::InfiniteFuture();
    if (reset) {
      spdlog::info("dlm {}: connected with reset (client {})",
                   options_.address, client_id_);
      reset = false;
    }
    grpc::ClientContext ctx;
    {
      absl::MutexLock l(&mu_);
      if (closed_) break;
      session_ctx_ = &ctx;
    }
    rpc::SessionRequest sreq;
    sreq.set_client_id(client_id_);
    CountRpc("Session");
    std::shared_ptr<rpc::Dlm::Stub> stub = Stub();  // outlives the stream
    std::unique_ptr<grpc::ClientReader<rpc::Callback>> reader =
        stub->Session(&ctx, sreq);
    Replay();
    {
      absl::MutexLock l(&mu_);
      connected_ = true;
      cv_.SignalAll();
    }
    if (!was_connected) {
      spdlog::info("dlm {}: session open (client {})", options_.address,
                   client_id_);
    }
    was_connected = true;
    backoff = options_.backoff_min;
    rpc::Callback cb;
    while (reader->Read(&cb)) HandleCallback(cb);
    grpc::Status fs = reader->Finish();
    {
      absl::MutexLock l(&mu_);
      connected_ = false;
      session_ctx_ = nullptr;
    }
    if (!fs.ok() && !Stopping()) {
      spdlog::info("dlm {}: session stream ended: {}", options_.address,
                   fs.error_message());
    }
    Nap(Jitter(backoff), {});
  }
}

void DlmClient::Impl::Replay() {
  std::vector<LockInfo> held;
  {
    absl::MutexLock l(&mu_);
    held = cache_.Granted();
  }
  for (const LockInfo& lock : held) {
    rpc::ReplayRequest req;
    *req.mutable_hdr() = Header();
    *req.mutable_lock() = ToProto(lock);
    rpc::DlmEmpty rep;
    absl::Status s = Rpc(
        "Replay",
        [&](grpc::ClientContext* ctx) {
          return Stub()->Replay(ctx, req, &rep);
        },
        /*retry=*/false);
    if (s.ok()) continue;
    if (ToErrno(s) != ESTALE) {
      // The stream will break too; the next session replays again.
      if (Stopping()) return;
      spdlog::warn("dlm: replay of lock {} failed: {}", lock.handle,
                   s.ToString());
      return;
    }
    spdlog::warn("dlm: lock {} ({}) was lost: {}", lock.handle,
                 Describe(lock.spec), s.ToString());
    absl::MutexLock l(&mu_);
    cache_.Erase(lock.handle);
    PushWork({lock, /*lost=*/true, true});
    cv_.SignalAll();
  }
  rpc::ReplayRequest done;
  *done.mutable_hdr() = Header();
  done.set_done(true);
  rpc::DlmEmpty rep;
  absl::Status s = Rpc(
      "Replay",
      [&](grpc::ClientContext* ctx) { return Stub()->Replay(ctx, done, &rep); },
      /*retry=*/false);
  if (!s.ok() && !Stopping()) {
    spdlog::warn("dlm: replay done: {}", s.ToString());
  }
}

void DlmClient::Impl::HandleCallback(const rpc::Callback& cb) {
  auto info = FromProto(cb.lock());
  if (!info.ok()) {
    spdlog::warn("dlm: bad callback: {}", info.status().ToString());
    return;
  }
  const uint64_t h = info->handle;
  switch (cb.kind()) {
    case rpc::Callback::COMPLETION: {
      absl::MutexLock l(&mu_);
      CachedLock* c = cache_.Find(h);
      if (c == nullptr) {
        if (pending_enqueues_ > 0) early_grants_[h] = *info;
        return;
      }
      c->info = *info;
      MaybeCancelLocked(*c);
      cv_.SignalAll();
      return;
    }
    case rpc::Callback::BLOCKING: {
      absl::MutexLock l(&mu_);
      CachedLock* c = cache_.Find(h);
      if (c == nullptr) {
        if (pending_enqueues_ > 0) {
          early_blocks_.insert(h);
        } else {
          // A lock we gave up on (interrupted wait): just cancel it.
          PushWork({*info, false, /*call_handler=*/false});
        }
        return;
      }
      if (!c->blocked && c->users > 0) {
        PushWork({c->info, false, true, /*in_use_notice=*/true});
      }
      c->blocked = true;
      MaybeCancelLocked(*c);
      return;
    }
    case rpc::Callback::GLIMPSE: {
      LockHandler* handler = FindHandler(info->spec.resource.name);
      uint64_t value = handler != nullptr ? handler->OnGlimpse(*info) : 0;
      rpc::GlimpseAnswer req;
      *req.mutable_hdr() = Header();
      req.set_glimpse_id(cb.glimpse_id());
      req.set_handle(h);
      req.set_value(value);
      rpc::DlmEmpty rep;
      absl::Status s = Rpc(
          "GlimpseReply",
          [&](grpc::ClientContext* ctx) {
            return Stub()->GlimpseReply(ctx, req, &rep);
          },
          /*retry=*/false);
      if (!s.ok()) spdlog::warn("dlm: glimpse reply: {}", s.ToString());
      return;
    }
    case rpc::Callback::EVICTED: {
      spdlog::error("dlm: evicted by the DLM (lock {} {}); dropping all locks",
                    h, Describe(info->spec));
      evictions_.fetch_add(1);
      absl::MutexLock l(&mu_);
      for (uint64_t handle : cache_.Handles()) {
        CachedLock* c = cache_.Find(handle);
        // A lock being cancelled already has its handler running.
        if (c->info.granted && !c->cancelling) {
          PushWork({c->info, /*lost=*/true, true});
        }
        cache_.Erase(handle);
      }
      cv_.SignalAll();
      return;
    }
    default:
      return;
  }
}

void DlmClient::Impl::WorkerLoop() {
  for (;;) {
    Work w;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !work_.empty() || closed_;
      };
      mu_.Await(absl::Condition(&ready));
      if (work_.empty()) return;
      w = std::move(work_.front());
      work_.pop_front();
    }
    if (w.in_use_notice) {
      if (LockHandler* handler = FindHandler(w.lock.spec.resource.name)) {
        handler->OnBlockedInUse(w.lock);
      }
      continue;
    }
    if (w.call_handler) {
      if (LockHandler* handler = FindHandler(w.lock.spec.resource.name)) {
        handler->OnBlocking(w.lock, w.lost);
      }
    }
    if (!w.lost) {
      absl::Status s = CancelRpc(w.lock.handle, /*retry=*/true);
      if (!s.ok() && !Stopping()) {
        spdlog::warn("dlm: cancel of lock {} ({}): {}", w.lock.handle,
                     Describe(w.lock.spec), s.ToString());
      }
      absl::MutexLock l(&mu_);
      CachedLock* c = cache_.Find(w.lock.handle);
      if (c != nullptr && c->cancelling) cache_.Erase(w.lock.handle);
      cv_.SignalAll();
    }
  }
}

void DlmClient::Impl::MaintenanceLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.maintenance_period)) {
    std::vector<uint64_t> in_use;
    {
      absl::MutexLock l(&mu_);
      in_use = cache_.InUseBlocked();
      for (const LockInfo& lock : cache_.CollectExpired()) {
        PushWork({lock, false, true});
      }
    }
    if (in_use.empty()) continue;
    rpc::TouchRequest req;
    *req.mutable_hdr() = Header();
    for (uint64_t h : in_use) req.add_handles(h);
    rpc::DlmEmpty rep;
    absl::Status s = Rpc(
        "Touch",
        [&](grpc::ClientContext* ctx) { return Stub()->Touch(ctx, req, &rep); },
        /*retry=*/false);
    if (!s.ok()) spdlog::warn("dlm: touch: {}", s.ToString());
  }
}

absl::StatusOr<LockInfo> DlmClient::Impl::Lock(const LockSpec& spec,
                                               const LockOptions& opts) {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (closed_) return Errno(ESHUTDOWN, "DLM client closed");
      if (!opts.no_cache_match) {
        if (CachedLock* c = cache_.Match(spec)) {
          cache_.Use(*c);
          return c->info;
        }
      }
      if (!connected_) {
        // Hold new requests while the DLM is away; cached locks (above)
        // keep working meanwhile.
        cv_.WaitWithTimeout(&mu_, opts.interrupted ? kInterruptPoll
                                                   : absl::Milliseconds(200));
      }
    }
    if (!Connected()) {
      if (opts.interrupted && opts.interrupted()) {
        return Errno(EINTR, absl::StrCat("waiting for the DLM to lock ",
                                         Describe(spec), " interrupted"));
      }
      continue;
    }
    {
      absl::MutexLock l(&mu_);
      ++pending_enqueues_;
    }
    rpc::EnqueueRequest req;
    *req.mutable_hdr() = Header();
    *req.mutable_resource() = ToProto(spec.resource);
    req.set_mode(static_cast<rpc::LockMode>(spec.mode));
    req.set_bits(spec.bits);
    req.set_start(spec.start);
    req.set_end(spec.end);
    req.set_no_wait(opts.no_wait);
    req.set_exact(opts.exact);
    req.set_carve_from(opts.carve_from);
    rpc::EnqueueReply rep;
    absl::Status s = Rpc(
        "Enqueue",
        [&](grpc::ClientContext* ctx) {
          return Stub()->Enqueue(ctx, req, &rep);
        },
        /*retry=*/true, opts.interrupted);
    absl::StatusOr<LockInfo> info =
        s.ok() ? FromProto(rep.lock()) : absl::StatusOr<LockInfo>(s);
    uint64_t h = 0;
    {
      absl::MutexLock l(&mu_);
      --pending_enqueues_;
      if (!info.ok()) {
        if (pending_enqueues_ == 0) {
          early_grants_.clear();
          early_blocks_.clear();
        }
        return info.status();
      }
      h = info->handle;
      CachedLock& c = cache_.Insert(*info);
      if (auto it = early_grants_.find(h); it != early_grants_.end()) {
        c.info = it->second;
        early_grants_.erase(it);
      }
      if (early_blocks_.erase(h) > 0) {
        c.blocked = true;
        PushWork({c.info, false, true, /*in_use_notice=*/true});
      }
      if (pending_enqueues_ == 0) {
        early_grants_.clear();
        early_blocks_.clear();
      }
    }
    // Wait for the grant.
    bool lost = false;
    for (;;) {
      if (opts.interrupted && opts.interrupted()) {
        absl::MutexLock l(&mu_);
        CachedLock* c = cache_.Find(h);
        if (c != nullptr && c->Ready()) {
          return c->info;  // granted meanwhile: keep it
        }
        if (c != nullptr) {
          LockInfo gone = c->info;
          cache_.Erase(h);
          PushWork({gone, false, /*call_handler=*/false});
        }
        return Errno(EINTR, absl::StrCat("waiting for ", Describe(spec),
                                         " interrupted"));
      }
      absl::MutexLock l(&mu_);
      CachedLock* c = cache_.Find(h);
      if (c == nullptr) {
        lost = true;  // evicted or lost while waiting: enqueue again
        break;
      }
      if (c->Ready()) return c->info;
      if (closed_) return Errno(ESHUTDOWN, "DLM client closed");
      cv_.WaitWithTimeout(&mu_, opts.interrupted ? kInterruptPoll
                                                 : absl::Seconds(1));
    }
    if (lost) continue;
  }
}

void DlmClient::Impl::Release(uint64_t handle) {
  absl::MutexLock l(&mu_);
  CachedLock* c = cache_.Find(handle);
  if (c == nullptr) return;
  cache_.Release(*c);
  MaybeCancelLocked(*c);
  if (cache_.size() > options_.lru_max_count) {
    for (const LockInfo& lock : cache_.CollectExpired()) {
      PushWork({lock, false, true});
    }
  }
}

absl::StatusOr<LockInfo> DlmClient::Impl::Convert(
    uint64_t handle, LockMode mode, const std::function<bool()>& interrupted) {
  {
    absl::MutexLock l(&mu_);
    CachedLock* c = cache_.Find(handle);
    if (c == nullptr || !c->info.granted) {
      return Errno(ENOENT, absl::StrCat("no granted lock ", handle));
    }
  }
  rpc::ConvertRequest req;
  *req.mutable_hdr() = Header();
  req.set_handle(handle);
  req.set_mode(static_cast<rpc::LockMode>(mode));
  rpc::ConvertReply rep;
  absl::Status s = Rpc(
      "Convert",
      [&](grpc::ClientContext* ctx) { return Stub()->Convert(ctx, req, &rep); },
      /*retry=*/true, interrupted);
  if (!s.ok()) return s;
  auto info = FromProto(rep.lock());
  if (!info.ok()) return info.status();
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      CachedLock* c = cache_.Find(handle);
      if (c == nullptr) return Errno(ESTALE, "lock lost while converting");
      if (info->granted && info->spec.mode == mode) c->info = *info;
      if (c->info.granted && c->info.spec.mode == mode) return c->info;
      if (closed_) return Errno(ESHUTDOWN, "DLM client closed");
      cv_.WaitWithTimeout(&mu_, kInterruptPoll);
      info->granted = false;
    }
    if (interrupted && interrupted()) {
      return Errno(EINTR, "convert interrupted");
    }
  }
}

absl::Status DlmClient::Impl::Cancel(uint64_t handle) {
  {
    absl::MutexLock l(&mu_);
    cache_.Erase(handle);
    cv_.SignalAll();
  }
  return CancelRpc(handle, /*retry=*/true);
}

size_t DlmClient::Impl::CancelUnused(const ResourceId& resource) {
  std::vector<LockInfo> victims;
  {
    absl::MutexLock l(&mu_);
    if (closed_ || !connected_) return 0;
    victims = cache_.TakeUnused(resource);
  }
  for (const LockInfo& lock : victims) {
    if (LockHandler* handler = FindHandler(lock.spec.resource.name)) {
      handler->OnBlocking(lock, /*lost=*/false);
    }
    absl::Status s = CancelRpc(lock.handle, /*retry=*/true);
    if (!s.ok() && !Stopping()) {
      spdlog::warn("dlm: early cancel of lock {} ({}): {}", lock.handle,
                   Describe(lock.spec), s.ToString());
    }
    absl::MutexLock l(&mu_);
    CachedLock* c = cache_.Find(lock.handle);
    if (c != nullptr && c->cancelling) cache_.Erase(lock.handle);
    cv_.SignalAll();
  }
  return victims.size();
}

absl::StatusOr<std::optional<LockInfo>> DlmClient::Impl::Test(
    const LockSpec& spec) {
  rpc::EnqueueRequest req;
  *req.mutable_hdr() = Header();
  *req.mutable_resource() = ToProto(spec.resource);
  req.set_mode(static_cast<rpc::LockMode>(spec.mode));
  req.set_bits(spec.bits);
  req.set_start(spec.start);
  req.set_end(spec.end);
  req.set_test_only(true);
  rpc::EnqueueReply rep;
  absl::Status s = Rpc(
      "Enqueue",
      [&](grpc::ClientContext* ctx) { return Stub()->Enqueue(ctx, req, &rep); },
      /*retry=*/true);
  if (!s.ok()) return s;
  if (!rep.has_conflict()) return std::nullopt;
  absl::StatusOr<LockInfo> c = FromProto(rep.conflict());
  if (!c.ok()) return c.status();
  return std::optional<LockInfo>(*c);
}

absl::StatusOr<std::vector<GlimpseValue>> DlmClient::Impl::Glimpse(
    const ResourceId& res, uint64_t start, uint64_t end) {
  rpc::GlimpseRequest req;
  *req.mutable_hdr() = Header();
  *req.mutable_resource() = ToProto(res);
  req.set_start(start);
  req.set_end(end);
  rpc::GlimpseResult rep;
  absl::Status s = Rpc(
      "Glimpse",
      [&](grpc::ClientContext* ctx) { return Stub()->Glimpse(ctx, req, &rep); },
      /*retry=*/true);
  if (!s.ok()) return s;
  std::vector<GlimpseValue> out;
  for (const auto& v : rep.values()) {
    out.push_back({v.handle(), v.client_id(), v.value()});
  }
  return out;
}

uint64_t ServerDlmClientId(const std::string& target) {
  // FNV-1a 64: stable across builds and releases (std::hash is not).
  uint64_t h = 1469598103934665603ull;
  for (char ch : "server:" + target) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ull;
  }
  return h != 0 ? h : 1;
}

// ---- DlmClient: forwards to Impl.

DlmClient::DlmClient(std::unique_ptr<Impl> impl, uint64_t client_id)
    : impl_(std::move(impl)), client_id_(client_id) {}

DlmClient::~DlmClient() { Close(true, 0); }

absl::StatusOr<std::unique_ptr<DlmClient>> DlmClient::Start(
    DlmClientOptions options) {
  if (options.address.empty()) return Errno(EINVAL, "DLM address missing");
  if (options.client_id == 0) {
    std::random_device rd;
    options.client_id = (uint64_t{rd()} << 32) | rd();
    if (options.client_id == 0) options.client_id = 1;
  }
  const uint64_t id = options.client_id;
  auto impl = std::make_unique<Impl>(std::move(options), id);
  impl->Start();
  return std::unique_ptr<DlmClient>(new DlmClient(std::move(impl), id));
}

void DlmClient::Close(bool cancel_locks, uint64_t keep) {
  impl_->Close(cancel_locks, keep);
}
void DlmClient::StartConnecting() { impl_->StartConnecting(); }
void DlmClient::RegisterHandler(const std::string& prefix,
                                LockHandler* handler) {
  impl_->RegisterHandler(prefix, handler);
}
void DlmClient::UnregisterHandler(const std::string& prefix) {
  impl_->UnregisterHandler(prefix);
}
absl::StatusOr<LockInfo> DlmClient::Lock(const LockSpec& spec,
                                         const LockOptions& opts) {
  return impl_->Lock(spec, opts);
}
void DlmClient::Release(uint64_t handle) { impl_->Release(handle); }
absl::StatusOr<LockInfo> DlmClient::Convert(
    uint64_t handle, LockMode mode, const std::function<bool()>& interrupted) {
  return impl_->Convert(handle, mode, interrupted);
}
absl::Status DlmClient::Cancel(uint64_t handle) {
  return impl_->Cancel(handle);
}
absl::StatusOr<std::optional<LockInfo>> DlmClient::Test(
    const LockSpec& spec) {
  return impl_->Test(spec);
}
size_t DlmClient::CancelUnused(const ResourceId& resource) {
  return impl_->CancelUnused(resource);
}
absl::StatusOr<std::vector<GlimpseValue>> DlmClient::Glimpse(
    const ResourceId& resource, uint64_t start, uint64_t end) {
  return impl_->Glimpse(resource, start, end);
}
bool DlmClient::Connected() const { return impl_->Connected(); }
uint64_t DlmClient::Evictions() const { return impl_->Evictions(); }
size_t DlmClient::CachedCount() const { return impl_->CachedCount(); }
std::map<std::string, uint64_t> DlmClient::RpcCounts() const {
  return impl_->RpcCounts();
}

}  // namespace stripefs::dlm
