#include "fuse-client/write_behind.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include "common/errors.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

WriteBehind::WriteBehind(ObjectIo* inner, WriteBehindOptions options)
    : inner_(inner), opts_(options), pool_(std::max(1, options.threads)) {
  age_thread_ = std::thread([this] { AgeLoop(); });
}

WriteBehind::~WriteBehind() {
  std::vector<Key> keys;
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    for (const auto& [k, o] : objs_) keys.push_back(k);
  }
  if (absl::Status s = FlushKeys(keys, true); !s.ok()) {
    spdlog::error("write-back at shutdown: {}", s.ToString());
  }
  age_thread_.join();
}

uint64_t WriteBehind::dirty_bytes() const {
  absl::MutexLock l(&mu_);
  return total_;
}

void WriteBehind::Insert(Obj& o, uint64_t offset, const char* data,
                         size_t len) {
  const uint64_t end = offset + len;
  auto target = o.dirty.end();
  auto it = o.dirty.upper_bound(offset);
  if (it != o.dirty.begin()) {
    auto p = std::prev(it);
    const uint64_t ps = p->first;
    const uint64_t pe = ps + p->second.size();
    if (pe >= end) {  // inside an extent: overwrite in place
      std::memcpy(p->second.data() + (offset - ps), data, len);
      return;
    }
    if (pe >= offset && end - ps <= opts_.max_rpc &&
        p->second.size() < opts_.flush_chunk) {
      // Overlaps or continues the extent before: extend it.
      o.dirty_bytes -= p->second.size();
      p->second.resize(offset - ps);
      p->second.append(data, len);
      o.dirty_bytes += p->second.size();
      target = p;
    } else if (pe > offset && ps == offset) {
      o.dirty_bytes -= p->second.size();  // wholly overwritten
      o.dirty.erase(p);
    } else if (pe > offset) {
      o.dirty_bytes -= pe - offset;  // cut its overlapped tail
      p->second.resize(offset - ps);
    }
  }
  if (target == o.dirty.end()) {
    target = o.dirty.emplace(offset, std::string(data, len)).first;
    o.dirty_bytes += len;
  }
  if (target->second.size() >= opts_.flush_chunk) o.big = true;
  // Later extents the new bytes overlap: drop or cut their heads.
  for (auto n = std::next(target); n != o.dirty.end() && n->first < end;) {
    const uint64_t ne = n->first + n->second.size();
    if (ne <= end) {
      o.dirty_bytes -= n->second.size();
      n = o.dirty.erase(n);
      continue;
    }
    std::string tail = n->second.substr(end - n->first);
    o.dirty_bytes -= n->second.size() - tail.size();
    o.dirty.erase(n);
    o.dirty.emplace(end, std::move(tail));
    break;
  }
}

void WriteBehind::MaybeStart(const Key& k, Obj& o, bool force) {
  if (o.busy || o.dirty.empty()) return;
  const bool go = force || stop_ || o.waiters > 0 || o.big ||
                  (o.dirty_bytes + o.inflight) * 2 >= opts_.max_object_dirty ||
                  total_ * 2 >= opts_.max_dirty ||
                  absl::Now() - o.since >= opts_.max_age;
  if (!go) return;
  o.busy = true;
  o.big = false;
  Batch batch;
  batch.swap(o.dirty);
  o.inflight = o.dirty_bytes;
  o.dirty_bytes = 0;
  o.since = absl::InfiniteFuture();
  pool_.Schedule([this, k, b = std::move(batch)]() mutable {
    RunBatch(k, std::move(b));
  });
}

absl::Status WriteBehind::SendBatch(const Key& k, Batch& batch) {
  absl::Status first;
  auto note = [&](const absl::Status& s) {
    if (!s.ok() && first.ok()) first = s;
  };
  auto send = [&](uint64_t off, const char* data, size_t len) {
    note(inner_->Write(k.first, k.second, off, data, len, nullptr));
  };
  std::string run;
  uint64_t run_off = 0;
  auto flush_run = [&] {
    if (!run.empty()) {
      note(inner_->WriteOwned(k.first, k.second, run_off, std::move(run),
                              nullptr));
    }
    run.clear();
  };
  for (auto it = batch.begin(); it != batch.end(); ++it) {
    const std::string& d = it->second;
    // Small adjacent extents are joined into one RPC; a big one goes as
    // it is (joining would cost a copy of it and gain little).
    const bool joins = !run.empty() && run_off + run.size() == it->first &&
                       run.size() + d.size() <= opts_.max_rpc &&
                       d.size() < opts_.flush_chunk;
    if (joins) {
      run.append(d);
      continue;
    }
    flush_run();
    auto next = std::next(it);
    const bool alone = next == batch.end() ||
                       next->first != it->first + d.size() ||
                       d.size() >= opts_.flush_chunk ||
                       next->second.size() >= opts_.flush_chunk;
    if (alone && d.size() <= opts_.max_rpc) {
      // No copy: the buffer itself goes into the request.
      note(inner_->WriteOwned(k.first, k.second, it->first,
                              std::move(it->second), nullptr));
      continue;
    }
    if (alone) {
      // No copy: sent in pieces of max_rpc.
      for (size_t done = 0; done < d.size(); done += opts_.max_rpc) {
        send(it->first + done, d.data() + done,
             std::min<size_t>(opts_.max_rpc, d.size() - done));
      }
      continue;
    }
    run_off = it->first;
    run = d;
  }
  flush_run();
  return first;
}

void WriteBehind::RunBatch(Key k, Batch batch) {
  absl::Status s = SendBatch(k, batch);
  batch.clear();
  absl::MutexLock l(&mu_);
  auto it = objs_.find(k);
  if (it == objs_.end()) return;  // cannot happen: busy objects stay
  Obj& o = it->second;
  total_ -= o.inflight;
  o.inflight = 0;
  o.busy = false;
  if (!s.ok()) {
    spdlog::warn("write-back of object {} on ost{}: {}", k.second, k.first,
                 s.ToString());
    if (o.error.ok()) o.error = s;
  }
  MaybeStart(k, o, false);
  Forget(k);
}

void WriteBehind::Forget(const Key& k) {
  auto it = objs_.find(k);
  if (it == objs_.end()) return;
  const Obj& o = it->second;
  if (!o.busy && o.dirty.empty() && o.error.ok() && o.waiters == 0) {
    objs_.erase(it);
  }
}

absl::Status WriteBehind::FlushKeys(const std::vector<Key>& keys, bool take) {
  absl::MutexLock l(&mu_);
  std::vector<Key> mine;
  for (const Key& k : keys) {
    auto it = objs_.find(k);
    if (it == objs_.end()) continue;
    ++it->second.waiters;
    MaybeStart(k, it->second, true);
    mine.push_back(k);
  }
  if (mine.empty()) return absl::OkStatus();
  auto clean = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const Key& k : mine) {
      const Obj& o = objs_.at(k);
      if (o.busy || !o.dirty.empty()) return false;
    }
    return true;
  };
  mu_.Await(absl::Condition(&clean));
  absl::Status first;
  for (const Key& k : mine) {
    Obj& o = objs_.at(k);
    --o.waiters;
    if (!o.error.ok()) {
      if (first.ok()) first = o.error;
      if (take) o.error = absl::OkStatus();
    }
    Forget(k);
  }
  return first;
}

absl::StatusOr<std::string> WriteBehind::Read(uint32_t ost, uint64_t oid,
                                              uint64_t offset, uint32_t len,
                                              const InterruptFn& intr) {
  bool pending;
  {
    absl::MutexLock l(&mu_);
    pending = objs_.contains({ost, oid});
  }
  if (pending) {
    if (absl::Status s = FlushKeys({{ost, oid}}, false); !s.ok()) return s;
  }
  return inner_->Read(ost, oid, offset, len, intr);
}

absl::Status WriteBehind::Write(uint32_t ost, uint64_t oid, uint64_t offset,
                                const char* data, size_t len,
                                const InterruptFn& intr) {
  if (len == 0) return absl::OkStatus();
  const Key k{ost, oid};
  absl::MutexLock l(&mu_);
  auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (paused_.contains(ost) && !stop_) return false;
    if (total_ > 0 && total_ + len > opts_.max_dirty) return false;
    auto it = objs_.find(k);
    if (it == objs_.end()) return true;
    const uint64_t od = it->second.dirty_bytes + it->second.inflight;
    return od == 0 || od + len <= opts_.max_object_dirty;
  };
  while (!room()) {
    // Back-pressure: get the write-back going and wait for room.
    for (auto& [key, o] : objs_) MaybeStart(key, o, true);
    if (mu_.AwaitWithTimeout(absl::Condition(&room), absl::Milliseconds(100))) {
      break;
    }
    if (intr && intr()) return Errno(EINTR, "interrupted waiting for write-back");
  }
  Obj& o = objs_[k];
  if (!o.error.ok()) return o.error;
  const uint64_t before = o.dirty_bytes;
  if (o.dirty.empty()) o.since = absl::Now();
  Insert(o, offset, data, len);
  total_ += o.dirty_bytes;
  total_ -= before;
  MaybeStart(k, o, false);
  return absl::OkStatus();
}

absl::Status WriteBehind::Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                                   const InterruptFn& intr) {
  if (absl::Status s = FlushKeys({{ost, oid}}, false); !s.ok()) return s;
  return inner_->Truncate(ost, oid, size, intr);
}

absl::Status WriteBehind::Flush(const std::vector<ObjectRef>& objects,
                                const InterruptFn& intr) {
  std::vector<Key> keys;
  for (const ObjectRef& o : objects) keys.push_back({o.ost, o.oid});
  return FlushKeys(keys, true);
}

absl::Status WriteBehind::Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                               const InterruptFn& intr) {
  std::vector<Key> keys;
  for (uint64_t oid : oids) keys.push_back({ost, oid});
  absl::Status flushed = FlushKeys(keys, true);
  absl::Status synced = inner_->Sync(ost, oids, intr);
  return flushed.ok() ? synced : flushed;
}

void WriteBehind::WriteBack(uint32_t ost, uint64_t oid) {
  // An error stays pending for the file's next fsync or close.
  (void)FlushKeys({{ost, oid}}, false);
}

void WriteBehind::Discard(uint32_t ost, uint64_t oid) {
  const Key k{ost, oid};
  absl::MutexLock l(&mu_);
  auto it = objs_.find(k);
  if (it == objs_.end()) return;
  Obj& o = it->second;
  ++o.waiters;
  auto idle = [&o]() { return !o.busy; };
  mu_.Await(absl::Condition(&idle));
  --o.waiters;
  if (o.dirty_bytes > 0) {
    spdlog::error("data lock on object {} of ost{} lost: {} buffered bytes "
                  "dropped",
                  oid, ost, o.dirty_bytes);
    total_ -= o.dirty_bytes;
    o.dirty.clear();
    o.dirty_bytes = 0;
    o.since = absl::InfiniteFuture();
    if (o.error.ok()) {
      o.error = Errno(EIO, "data lock lost before buffered writes reached "
                           "the OST");
    }
  }
  Forget(k);
}

void WriteBehind::FlushOst(uint32_t ost) {
  std::vector<Key> keys;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [k, o] : objs_) {
      if (k.first == ost) keys.push_back(k);
    }
  }
  (void)FlushKeys(keys, false);  // errors stay pending
}

void WriteBehind::PauseOst(uint32_t ost) {
  {
    absl::MutexLock l(&mu_);
    paused_.insert(ost);
  }
  FlushOst(ost);
}

void WriteBehind::ResumeOst(uint32_t ost) {
  absl::MutexLock l(&mu_);
  paused_.erase(ost);
}

void WriteBehind::AgeLoop() {
  absl::MutexLock l(&mu_);
  for (;;) {
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(200));
    if (stop_) return;
    for (auto& [k, o] : objs_) MaybeStart(k, o, false);
  }
}

}  // namespace stripefs::client
