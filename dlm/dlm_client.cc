// DlmClient::Impl: the worker that runs handlers and cancels, and the
// maintenance thread that Touches asked-back locks not yet cancelled and sweeps the LRU; the
// public DlmClient, which forwards to Impl. The session reader is in
// dlm_client_session.cc, the lock calls in dlm_client_locks.cc; the lock
// order is in dlm_client_impl.h.
#include "dlm/dlm_client_impl.h"

namespace stripefs::dlm {

// ENOTCONN (the DLM does not know us, e.g. evicted) is retried only because
// Rpc() kicks the session on it: the reader connects anew, so the retry is
// bounded by a reconnect. EAGAIN (busy lock) is an answer.
bool DlmClient::Impl::Retryable(const absl::Status& s) {
  int err = ToErrno(s);
  if (err == ESHUTDOWN || err == ENOTCONN) return true;
  if (err == EAGAIN || err == EINTR) return false;
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
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
      in_use = cache_.BlockedHeld(handlers_working_ > 0);
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
absl::StatusOr<LockInfo> DlmClient::EnqueueFor(uint64_t owner, uint64_t xid,
                                               const LockSpec& spec) {
  return impl_->EnqueueFor(owner, xid, spec);
}
DlmClient::AdoptToken DlmClient::PrepareAdopt() {
  return {impl_->PrepareAdopt()};
}
absl::StatusOr<LockInfo> DlmClient::Adopt(const AdoptToken& token,
                                          const std::optional<LockInfo>& lock) {
  return impl_->Adopt(token.evictions, lock);
}
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
void DlmClient::HandlerWorking(bool on) { impl_->HandlerWorking(on); }
void DlmClient::Impl::HandlerWorking(bool on) {
  absl::MutexLock l(&mu_);
  handlers_working_ += on ? 1 : -1;
}
size_t DlmClient::CancelUnused(const ResourceId& resource) {
  return impl_->CancelUnused(resource);
}

size_t DlmClient::CancelUnusedPrefix(const std::string& prefix) {
  return impl_->CancelUnusedPrefix(prefix);
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
