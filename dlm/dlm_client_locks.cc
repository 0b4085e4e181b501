// DlmClient::Impl, the lock calls: Lock (cache match, enqueue, wait for
// the grant), Release, Convert, Cancel, CancelUnused, Test and Glimpse.
#include "dlm/dlm_client_impl.h"

namespace stripefs::dlm {

absl::StatusOr<LockInfo> DlmClient::Impl::Lock(const LockSpec& spec,
                                               const LockOptions& opts) {
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      if (closed_) return Errno(ESHUTDOWN, "DLM client closed");
      if (!opts.no_cache_match) {
        if (CachedLock* c = cache_.Match(spec, opts.exempt_client)) {
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
    req.set_exempt_client(opts.exempt_client);
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
          ForgetEarlyLocked();
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
        ForgetEarlyLocked();
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

absl::StatusOr<LockInfo> DlmClient::Impl::EnqueueFor(uint64_t owner,
                                                     uint64_t xid,
                                                     const LockSpec& spec) {
  rpc::EnqueueRequest req;
  req.mutable_hdr()->set_client_id(owner);
  req.mutable_hdr()->set_xid(xid);
  *req.mutable_resource() = ToProto(spec.resource);
  req.set_mode(static_cast<rpc::LockMode>(spec.mode));
  req.set_bits(spec.bits);
  req.set_start(spec.start);
  req.set_end(spec.end);
  req.set_no_wait(true);
  rpc::EnqueueReply rep;
  // One try, not through Rpc(): an ENOTCONN here is about `owner` (gone
  // from the DLM), not about this client's session.
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx, options_.rpc_deadline);
  CountRpc("EnqueueFor");
  absl::Status s = rpc::FromGrpc(Stub()->Enqueue(&ctx, req, &rep));
  if (!s.ok()) return s;
  absl::StatusOr<LockInfo> info = FromProto(rep.lock());
  if (!info.ok()) return info.status();
  if (!info->granted || info->client_id != owner) {
    return Errno(EAGAIN, absl::StrCat("intent lock ", Describe(spec),
                                      " not granted at once"));
  }
  return info;
}

uint64_t DlmClient::Impl::PrepareAdopt() {
  absl::MutexLock l(&mu_);
  ++pending_enqueues_;  // keeps callbacks that overtake the reply
  return evictions_.load();
}

absl::StatusOr<LockInfo> DlmClient::Impl::Adopt(
    uint64_t evictions, const std::optional<LockInfo>& lock) {
  absl::MutexLock l(&mu_);
  --pending_enqueues_;
  absl::StatusOr<LockInfo> out = Errno(ENOENT, "no intent lock");
  if (lock.has_value()) {
    const uint64_t h = lock->handle;
    if (closed_) {
      out = Errno(ESHUTDOWN, "DLM client closed");
    } else if (lock->client_id != client_id_ || !lock->granted) {
      out = Errno(EINVAL, absl::StrCat("intent lock ", h, " is not ours"));
    } else if (evictions_.load() != evictions) {
      // Evicted since the request left: the lock may belong to a session
      // this client no longer has. Given back (harmless if gone).
      out = Errno(ESTALE, absl::StrCat("intent lock ", h,
                                       " from before an eviction"));
      early_grants_.erase(h);
      early_blocks_.erase(h);
      PushWork({*lock, false, /*call_handler=*/false});
    } else {
      CachedLock& c = cache_.Insert(*lock);  // in use: one user
      early_grants_.erase(h);
      if (early_blocks_.erase(h) > 0) {
        c.blocked = true;
        PushWork({c.info, false, true, /*in_use_notice=*/true});
      }
      out = c.info;
    }
  }
  if (pending_enqueues_ == 0) {
    ForgetEarlyLocked();
  }
  return out;
}

size_t DlmClient::Impl::CancelUnused(const ResourceId& resource) {
  std::vector<LockInfo> victims;
  {
    absl::MutexLock l(&mu_);
    if (closed_ || !connected_) return 0;
    victims = cache_.TakeUnused(resource);
  }
  return CancelTaken(victims);
}

size_t DlmClient::Impl::CancelUnusedPrefix(const std::string& prefix) {
  std::vector<LockInfo> victims;
  {
    absl::MutexLock l(&mu_);
    if (closed_ || !connected_) return 0;
    victims = cache_.TakeUnusedPrefix(prefix);
  }
  return CancelTaken(victims);
}

size_t DlmClient::Impl::CancelTaken(const std::vector<LockInfo>& victims) {
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

}  // namespace stripefs::dlm
