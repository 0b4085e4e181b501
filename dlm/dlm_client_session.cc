// DlmClient::Impl, the session: the reader thread connects (handshake,
// with the reset on the first connect), opens the Session stream, replays
// the granted locks and dispatches the DLM's callbacks.
#include "dlm/dlm_client_impl.h"

namespace stripefs::dlm {

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

}  // namespace stripefs::dlm
