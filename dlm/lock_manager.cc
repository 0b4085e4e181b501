// LockManager: opening and persisting the table, sessions and their event
// queues, timeouts, glimpses and replay. Grant logic: lock_manager_grant.cc.
#include "dlm/lock_manager.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "common/fault_points.h"
#include "spdlog/spdlog.h"

namespace stripefs::dlm {
namespace {

// Handles an unclean start skips (more than any run of unsynced commits).
constexpr uint64_t kHandleGapAfterCrash = uint64_t{1} << 32;

}  // namespace

LockManager::LockManager(storage::KvStore* kv, Clock* clock,
                         LockManagerOptions options)
    : kv_(kv), clock_(clock), options_(options) {}

LockManager::~LockManager() = default;

absl::StatusOr<std::unique_ptr<LockManager>> LockManager::Open(
    storage::KvStore* kv, Clock* clock, LockManagerOptions options) {
  std::unique_ptr<LockManager> m(new LockManager(kv, clock, options));
  absl::Status s = m->Load();
  if (!s.ok()) return s;
  return m;
}

absl::Status LockManager::Load() {
  absl::MutexLock l(&mu_);
  auto meta = kv_->Get(kMetaKey);
  if (!meta.ok()) return meta.status();
  if (meta->has_value()) {
    auto m = DecodeMeta(**meta);
    if (!m.ok()) return m.status();
    meta_ = *m;
  }
  const bool was_clean = meta_.clean;

  std::unique_ptr<storage::KvIterator> it = kv_->NewIterator();
  for (it->Seek(std::string(1, kClientPrefix));
       it->Valid() && it->key()[0] == kClientPrefix; it->Next()) {
    if (it->key().size() != 9) return Errno(EIO, "corrupt client record");
    uint64_t id = storage::DecodeBE64(it->key().substr(1));
    clients_[id].name = std::string(it->value());
  }
  if (!it->status().ok()) return it->status();
  std::vector<LockRecord> recs;
  for (it->Seek(std::string(1, kLockPrefix));
       it->Valid() && it->key()[0] == kLockPrefix; it->Next()) {
    auto r = DecodeLock(it->key(), it->value());
    if (!r.ok()) return r.status();
    recs.push_back(*r);
  }
  if (!it->status().ok()) return it->status();
  std::sort(recs.begin(), recs.end(),
            [](const LockRecord& a, const LockRecord& b) {
              return a.seq < b.seq;
            });
  for (const LockRecord& r : recs) {
    Lock& lock = locks_[r.handle];
    lock.rec = r;
    Resource& res = resources_[r.spec.resource.Key()];
    res.id = r.spec.resource;
    (r.granted ? res.granted : res.waiting).push_back(r.handle);
    clients_[r.client_id].locks.insert(r.handle);
    by_xid_[{r.client_id, r.xid}] = r.handle;
    meta_.next_handle = std::max(meta_.next_handle, r.handle + 1);
    meta_.next_seq = std::max(meta_.next_seq, r.seq + 1);
  }

  const absl::Time now = clock_->Now();
  // Holders get a fresh timeout after a restart: they need time to
  // reconnect before callbacks can reach them.
  no_evict_before_ = now + options_.callback_timeout;
  if (!was_clean) {
    // Table commits are unsynced: a power cut may have lost grants whose
    // handles the holders still use (they replay them). New handles start
    // far past any handle the lost commits could have handed out.
    meta_.next_handle += kHandleGapAfterCrash;
  }
  if (!was_clean && !clients_.empty()) {
    in_recovery_ = true;
    recovery_end_ = now + options_.recovery_window;
    for (const auto& [id, c] : clients_) recovering_.insert(id);
    spdlog::warn(
        "previous DLM instance did not shut down cleanly: recovery window "
        "of {} for {} clients",
        absl::FormatDuration(options_.recovery_window), clients_.size());
  }
  spdlog::info("lock table loaded: {} locks, {} clients", locks_.size(),
               clients_.size());

  meta_.clean = false;
  Txn txn;
  txn.meta = true;
  ReprocessAll(txn);
  storage::WriteBatch b;
  b.Put(kMetaKey, EncodeMeta(meta_));
  absl::Status s = kv_->Write(b, {.sync = true});
  if (!s.ok()) return s;
  Commit(txn);
  return absl::OkStatus();
}

absl::Status LockManager::Close() {
  absl::MutexLock l(&mu_);
  if (closed_) return absl::OkStatus();
  closed_ = true;
  for (auto& [id, c] : clients_) c.session_gen = 0;
  for (auto& [id, g] : glimpses_) g.pending.clear();
  meta_.clean = true;
  storage::WriteBatch b;
  b.Put(kMetaKey, EncodeMeta(meta_));
  return kv_->Write(b, {.sync = true});
}

void LockManager::Commit(Txn& txn) {
  storage::WriteBatch b;
  for (uint64_t h : txn.locks) {
    auto it = locks_.find(h);
    if (it == locks_.end()) {
      b.Delete(LockKey(h));
    } else {
      b.Put(LockKey(h), EncodeLock(it->second.rec));
    }
  }
  for (uint64_t id : txn.clients) {
    auto it = clients_.find(id);
    if (it == clients_.end() || it->second.evicted) {
      b.Delete(ClientKey(id));
    } else {
      b.Put(ClientKey(id), it->second.name);
    }
  }
  if (txn.meta) b.Put(kMetaKey, EncodeMeta(meta_));
  if (!b.empty()) {
    // Fault points around the table's commit (crash-recovery tests): an
    // error before it is a failed write (nothing persisted), a crash after
    // it loses the grants and callbacks not yet sent.
    absl::Status s = fault::Hit("dlm.before_persist");
    if (s.ok()) s = kv_->Write(b, {.sync = txn.sync});
    if (!s.ok()) {
      // The in-memory table stays authoritative; only a restart would
      // lose these changes.
      spdlog::error("persisting lock table ({} changes): {}", b.ops().size(),
                    s.ToString());
    } else if (absl::Status f = fault::Hit("dlm.after_persist"); !f.ok()) {
      // Nothing to undo: the table is stored and the events still go out.
      spdlog::warn("after persisting the lock table: {}", f.ToString());
    }
  }
  for (auto& [client, ev] : txn.events) Queue(client, std::move(ev));
  txn.events.clear();
}

void LockManager::Queue(uint64_t client_id, CallbackEvent ev) {
  auto it = clients_.find(client_id);
  if (it == clients_.end() || it->second.session_gen == 0) {
    // No stream: OpenSession regenerates what matters.
    return;
  }
  it->second.events.push_back(std::move(ev));
}

absl::StatusOr<LockManager::Client*> LockManager::FindClient(
    uint64_t client_id) {
  if (closed_) return Errno(ESHUTDOWN, "DLM is shutting down");
  auto it = clients_.find(client_id);
  if (it == clients_.end() || it->second.evicted) {
    return Errno(ENOTCONN, absl::StrCat("client ", client_id,
                                        " is not connected (evicted?)"));
  }
  return &it->second;
}

LockInfo LockManager::Info(const Lock& lock) {
  LockInfo i;
  i.handle = lock.rec.handle;
  i.client_id = lock.rec.client_id;
  i.spec = lock.rec.spec;
  if (!lock.rec.granted) i.spec.mode = lock.rec.req_mode;
  i.granted = lock.rec.granted;
  i.exempt_client = lock.exempt_client;
  return i;
}

absl::Status LockManager::Connect(uint64_t client_id,
                                  const std::string& name, bool reset,
                                  size_t* dropped) {
  absl::MutexLock l(&mu_);
  if (dropped != nullptr) *dropped = 0;
  if (closed_) return Errno(ESHUTDOWN, "DLM is shutting down");
  auto [it, inserted] = clients_.try_emplace(client_id);
  Client& c = it->second;
  if (c.evicted) {
    // A new life for an evicted client: nothing of the old one remains.
    c = Client{};
    inserted = true;
  }
  Txn txn;
  if (reset && !c.locks.empty()) {
    // A new instance of a server on its stable id: what the old one held
    // (e.g. its EX on active:<target>) goes, and its waiters are granted.
    std::set<std::string> keys;
    std::vector<uint64_t> handles(c.locks.begin(), c.locks.end());
    for (uint64_t h : handles) {
      keys.insert(locks_.at(h).rec.spec.resource.Key());
      RemoveLock(h, txn);
    }
    c.events.clear();
    recovering_.erase(client_id);
    spdlog::info("client {} ({}) connected with reset: dropped {} locks",
                 client_id, name, handles.size());
    if (dropped != nullptr) *dropped = handles.size();
    for (const std::string& key : keys) Reprocess(key, txn);
  }
  if (inserted || c.name != name) {
    c.name = name;
    txn.clients.insert(client_id);
    txn.sync = inserted;
  }
  if (!txn.locks.empty() || !txn.clients.empty() || !txn.events.empty()) {
    Commit(txn);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LockManager::OpenSession(uint64_t client_id) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  Client& client = **c;
  client.session_gen = next_gen_++;
  client.events.clear();
  for (uint64_t h : client.locks) {
    const Lock& lock = locks_.at(h);
    if (lock.rec.granted) {
      client.events.push_back({CallbackEvent::kCompletion, Info(lock), {}, 0});
    }
    if (lock.bast_sent) {
      client.events.push_back(
          {CallbackEvent::kBlocking, Info(lock), lock.blocker, 0});
    }
  }
  return client.session_gen;
}

bool LockManager::NextEvents(uint64_t client_id, uint64_t gen,
                             absl::Duration timeout,
                             std::vector<CallbackEvent>* out) {
  absl::MutexLock l(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = clients_.find(client_id);
    return closed_ || it == clients_.end() || it->second.session_gen != gen ||
           !it->second.events.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return false;
  Client& c = it->second;
  // An evicted client's last session gets its final EVICTED event.
  if (c.session_gen == gen || c.evicted) {
    while (!c.events.empty()) {
      out->push_back(std::move(c.events.front()));
      c.events.pop_front();
    }
  }
  return !closed_ && c.session_gen == gen && !c.evicted;
}

void LockManager::CloseSession(uint64_t client_id, uint64_t gen) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return;
  if (it->second.evicted && it->second.session_gen == gen) {
    clients_.erase(it);
    return;
  }
  if (it->second.session_gen == gen) {
    it->second.session_gen = 0;
    it->second.events.clear();
  }
}

absl::Status LockManager::Touch(uint64_t client_id,
                                const std::vector<uint64_t>& handles) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  const absl::Time deadline = clock_->Now() + options_.callback_timeout;
  for (uint64_t h : handles) {
    auto it = locks_.find(h);
    if (it == locks_.end() || it->second.rec.client_id != client_id) continue;
    if (it->second.bast_sent) {
      it->second.deadline = std::max(it->second.deadline, deadline);
    }
  }
  return absl::OkStatus();
}

void LockManager::Tick() {
  absl::MutexLock l(&mu_);
  if (closed_) return;
  const absl::Time now = clock_->Now();
  Txn txn;
  if (in_recovery_ && now >= recovery_end_) {
    spdlog::warn("recovery window closed; {} clients did not finish replay",
                 recovering_.size());
    // Those that never opened a session with this instance are gone (a
    // mount killed with the servers, a client machine that lost power):
    // their locks would hold everyone back for a callback timeout more.
    std::vector<uint64_t> absent;
    for (uint64_t id : recovering_) {
      auto it = clients_.find(id);
      if (it != clients_.end() && it->second.session_gen == 0 &&
          !it->second.locks.empty()) {
        absent.push_back(id);
      }
    }
    for (uint64_t id : absent) {
      const Lock culprit = locks_.at(*clients_.at(id).locks.begin());
      Evict(id, culprit, "held by a client that did not come back within "
            "the recovery window", txn);
    }
    EndRecovery(txn);
  }
  if (now >= no_evict_before_) {
    // Collect first: eviction changes the table.
    std::vector<std::pair<uint64_t, uint64_t>> late;  // client, handle
    for (const auto& [h, lock] : locks_) {
      if (lock.bast_sent && lock.deadline < now) {
        late.push_back({lock.rec.client_id, h});
      }
    }
    for (const auto& [client, h] : late) {
      auto it = locks_.find(h);
      if (it == locks_.end()) continue;  // evicted with an earlier one
      Lock culprit = it->second;
      Evict(client, culprit,
            absl::StrCat("not cancelled within ",
                         absl::FormatDuration(options_.callback_timeout),
                         " of the blocking callback"),
            txn);
    }
  }
  Commit(txn);
}

void LockManager::EndRecovery(Txn& txn) {
  in_recovery_ = false;
  recovering_.clear();
  ReprocessAll(txn);
}

absl::Status LockManager::ReplayDone(uint64_t client_id) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  if (in_recovery_) {
    recovering_.erase(client_id);
    if (recovering_.empty()) {
      spdlog::info("every client replayed: recovery done");
      Txn txn;
      EndRecovery(txn);
      Commit(txn);
    }
  }
  return absl::OkStatus();
}

absl::Status LockManager::Replay(uint64_t client_id, const LockInfo& info) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  auto it = locks_.find(info.handle);
  if (it != locks_.end()) {
    if (it->second.rec.client_id != client_id || !it->second.rec.granted) {
      return Errno(ESTALE, absl::StrCat("lock ", info.handle,
                                        " is not a granted lock of client ",
                                        client_id));
    }
    return absl::OkStatus();
  }
  if (!in_recovery_ || info.handle >= meta_.next_handle) {
    return Errno(ESTALE, absl::StrCat("lock ", info.handle, " is gone"));
  }
  const std::string key = info.spec.resource.Key();
  Resource& res = resources_[key];
  res.id = info.spec.resource;
  for (uint64_t g : res.granted) {
    const Lock& other = locks_.at(g);
    // Two locks that were granted together under an own-change exemption
    // (either may be replayed first).
    if (other.exempt_client == client_id ||
        (info.exempt_client != 0 && info.exempt_client == other.rec.client_id)) {
      continue;
    }
    if (Conflicts(other.rec.spec, info.spec)) {
      return Errno(ESTALE, absl::StrCat("replayed lock ", info.handle,
                                        " conflicts with lock ", g));
    }
  }
  Lock& lock = locks_[info.handle];
  lock.rec.handle = info.handle;
  lock.rec.client_id = client_id;
  lock.rec.xid = 0;
  lock.rec.seq = meta_.next_seq++;
  lock.rec.spec = info.spec;
  lock.rec.req_mode = info.spec.mode;
  lock.rec.granted = true;
  if (info.exempt_client != client_id) lock.exempt_client = info.exempt_client;
  res.granted.push_back(info.handle);
  (*c)->locks.insert(info.handle);
  Txn txn;
  txn.locks.insert(info.handle);
  txn.meta = true;
  Commit(txn);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LockManager::StartGlimpse(uint64_t client_id,
                                                   const ResourceId& resource,
                                                   uint64_t start,
                                                   uint64_t end) {
  absl::MutexLock l(&mu_);
  auto c = FindClient(client_id);
  if (!c.ok()) return c.status();
  if (resource.type != LockType::kExtent || start > end) {
    return Errno(EINVAL, "glimpse needs an extent resource and a range");
  }
  uint64_t id = next_glimpse_++;
  Glimpse& g = glimpses_[id];
  auto rit = resources_.find(resource.Key());
  if (rit == resources_.end()) return id;
  for (uint64_t h : rit->second.granted) {
    const Lock& lock = locks_.at(h);
    const LockSpec& s = lock.rec.spec;
    if ((s.mode == LockMode::kPW || s.mode == LockMode::kEX) &&
        s.start <= end && start <= s.end) {
      auto cit = clients_.find(lock.rec.client_id);
      if (cit == clients_.end() || cit->second.session_gen == 0) continue;
      g.pending.insert(h);
      Queue(lock.rec.client_id, {CallbackEvent::kGlimpse, Info(lock), {}, id});
    }
  }
  return id;
}

std::vector<GlimpseValue> LockManager::WaitGlimpse(uint64_t glimpse_id,
                                                   absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = glimpses_.find(glimpse_id);
    return it == glimpses_.end() || it->second.pending.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  auto it = glimpses_.find(glimpse_id);
  if (it == glimpses_.end()) return {};
  std::vector<GlimpseValue> values = std::move(it->second.values);
  if (!it->second.pending.empty()) {
    spdlog::warn("glimpse {}: {} holders did not answer", glimpse_id,
                 it->second.pending.size());
  }
  glimpses_.erase(it);
  return values;
}

absl::Status LockManager::AnswerGlimpse(uint64_t client_id,
                                        uint64_t glimpse_id, uint64_t handle,
                                        uint64_t value) {
  absl::MutexLock l(&mu_);
  auto it = glimpses_.find(glimpse_id);
  if (it == glimpses_.end() || it->second.pending.erase(handle) == 0) {
    return absl::OkStatus();  // late or duplicate answer
  }
  it->second.values.push_back({handle, client_id, value});
  return absl::OkStatus();
}

size_t LockManager::SessionCount() const {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  for (const auto& [id, c] : clients_) n += c.evicted ? 0 : 1;
  return n;
}

size_t LockManager::LockCount() const {
  absl::MutexLock l(&mu_);
  return locks_.size();
}

bool LockManager::InRecovery() const {
  absl::MutexLock l(&mu_);
  return in_recovery_;
}

std::vector<LockInfo> LockManager::Locks() const {
  absl::MutexLock l(&mu_);
  std::vector<LockInfo> out;
  for (const auto& [h, lock] : locks_) out.push_back(Info(lock));
  std::sort(out.begin(), out.end(), [](const LockInfo& a, const LockInfo& b) {
    return a.handle < b.handle;
  });
  return out;
}

}  // namespace stripefs::dlm
