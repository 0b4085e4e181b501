#include "fuse-client/data_locks.h"

#include <fuse_lowlevel.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/errors.h"
#include "fuse-client/stripe_map.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

std::string ObjResource(uint32_t ost, uint64_t oid) {
  return absl::StrCat(kObjPrefix, ost, ":", oid);
}

void DataLocks::CancelOst(uint32_t ost) {
  const size_t n = dlm_->CancelUnusedPrefix(absl::StrCat(kObjPrefix, ost, ":"));
  spdlog::info("ost{}: {} data locks cancelled", ost, n);
}

bool ParseObjResource(absl::string_view name, uint32_t* ost, uint64_t* oid) {
  if (!absl::ConsumePrefix(&name, kObjPrefix)) return false;
  const size_t colon = name.find(':');
  if (colon == absl::string_view::npos) return false;
  return absl::SimpleAtoi(name.substr(0, colon), ost) &&
         absl::SimpleAtoi(name.substr(colon + 1), oid);
}

std::vector<ObjectExtent> ObjectExtents(const FileLayout& layout,
                                        uint64_t offset, uint64_t length) {
  std::map<uint32_t, ObjectExtent> by_stripe;
  if (layout.stripe_size == 0 || layout.objects.empty() || length == 0) {
    return {};
  }
  for (const StripePiece& p :
       MapRange(layout.stripe_size,
                static_cast<uint32_t>(layout.objects.size()), offset,
                length)) {
    auto [it, fresh] = by_stripe.try_emplace(p.stripe);
    ObjectExtent& e = it->second;
    const uint64_t last = p.obj_offset + p.length - 1;
    if (fresh) {
      e = {p.stripe, p.obj_offset, last};
    } else {
      e.start = std::min(e.start, p.obj_offset);
      e.end = std::max(e.end, last);
    }
  }
  std::vector<ObjectExtent> out;
  out.reserve(by_stripe.size());
  for (auto& [stripe, e] : by_stripe) out.push_back(e);
  return out;
}

uint64_t ContendedChunk(const FileLayout& layout) {
  const uint64_t ss = std::max<uint64_t>(layout.stripe_size, 1);
  const uint64_t row = ss * std::max<size_t>(layout.objects.size(), 1);
  return ss * std::max<uint64_t>(1, DataLocks::kContendedChunk / row);
}

DataLocks::DataLocks(dlm::DlmClient* dlm, Clock* clock)
    : dlm_(dlm), clock_(clock != nullptr ? clock : RealClock()) {
  inval_thread_ = std::thread([this] { InvalLoop(); });
  dlm_->RegisterHandler(kObjPrefix, this);
}

DataLocks::~DataLocks() {
  dlm_->UnregisterHandler(kObjPrefix);
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  inval_thread_.join();
}

void DataLocks::set_session(fuse_session* se) {
  absl::MutexLock l(&mu_);
  se_ = se;
  if (se == nullptr) {
    queue_.clear();
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !busy_; };
    mu_.Await(absl::Condition(&idle));
  }
}

absl::StatusOr<std::vector<dlm::LockInfo>> DataLocks::Lock(
    uint64_t ino, const FileLayout& layout, uint64_t offset, uint64_t length,
    bool write, const InterruptFn& interrupted) {
  std::vector<Want> wants;
  // An empty range (e.g. a read at 0 of an empty file) still locks the
  // first byte it would touch, so the size it then reads is protected.
  for (const ObjectExtent& e :
       ObjectExtents(layout, offset, std::max<uint64_t>(length, 1))) {
    const ObjectRef& o = layout.objects[e.stripe];
    if (ost_check_) STRIPEFS_RETURN_IF_ERROR(ost_check_(o.ost));
    wants.push_back({ObjResource(o.ost, o.oid), e.start, e.end,
                     ContendedChunk(layout),
                     {ino, layout.stripe_size, layout.objects.size(),
                      e.stripe}});
  }
  const uint64_t end = offset > dlm::kExtentEof - length ? dlm::kExtentEof
                                                       : offset + length;
  return LockAll(ino, std::move(wants), write, offset, end, interrupted);
}

absl::StatusOr<std::vector<dlm::LockInfo>> DataLocks::LockWhole(
    uint64_t ino, const FileLayout& layout, bool write,
    const InterruptFn& interrupted) {
  std::vector<Want> wants;
  for (uint32_t i = 0; i < layout.objects.size(); ++i) {
    const ObjectRef& o = layout.objects[i];
    if (ost_check_) STRIPEFS_RETURN_IF_ERROR(ost_check_(o.ost));
    wants.push_back({ObjResource(o.ost, o.oid), 0, dlm::kExtentEof, 1,
                     {ino, layout.stripe_size, layout.objects.size(), i}});
  }
  // Only O_APPEND takes these, with direct I/O: no pages are locked.
  return LockAll(ino, std::move(wants), write, 0, 0, interrupted);
}

absl::StatusOr<std::vector<dlm::LockInfo>> DataLocks::LockAll(
    uint64_t ino, std::vector<Want> wants, bool write, uint64_t file_start,
    uint64_t file_end, const InterruptFn& interrupted) {
  // The kernel pages this write keeps locked while it waits.
  constexpr uint64_t kPage = 4096;
  const std::pair<uint64_t, uint64_t> pages = {
      file_start / kPage * kPage,
      file_end > dlm::kExtentEof - kPage ? dlm::kExtentEof
                                         : (file_end + kPage - 1) / kPage * kPage};
  // A fixed order over all mounts: no two I/Os wait for each other.
  std::sort(wants.begin(), wants.end(),
            [](const Want& a, const Want& b) { return a.name < b.name; });
  std::vector<bool> exact(wants.size(), false);
  {
    absl::MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    for (size_t i = 0; i < wants.size(); ++i) {
      Want& w = wants[i];
      owner_[w.name] = w.owner;
      auto it = contended_.find(w.name);
      if (it == contended_.end()) continue;
      if (it->second <= now) {
        contended_.erase(it);
        continue;
      }
      // Contention mode: exactly the chunks the I/O touches.
      exact[i] = true;
      w.start = w.start / w.chunk * w.chunk;
      uint64_t last = w.end / w.chunk * w.chunk;
      w.end = last > dlm::kExtentEof - w.chunk ? dlm::kExtentEof
                                               : last + w.chunk - 1;
    }
    if (write) pending_writes_[ino].push_back(pages);
  }
  std::vector<dlm::LockInfo> held;
  absl::Status status;
  for (size_t i = 0; i < wants.size(); ++i) {
    const Want& w = wants[i];
    dlm::LockSpec spec;
    spec.resource = {w.name, dlm::LockType::kExtent};
    spec.mode = write ? dlm::LockMode::kPW : dlm::LockMode::kPR;
    spec.start = w.start;
    spec.end = w.end;
    dlm::LockOptions opts;
    opts.interrupted = interrupted;
    opts.exact = exact[i];
    absl::StatusOr<dlm::LockInfo> r = dlm_->Lock(spec, opts);
    if (!r.ok()) {
      status = r.status();
      break;
    }
    held.push_back(*r);
  }
  if (write) {
    absl::MutexLock l(&mu_);
    std::vector<std::pair<uint64_t, uint64_t>>& v = pending_writes_[ino];
    auto it = std::find(v.begin(), v.end(), pages);
    if (it != v.end()) v.erase(it);
    if (v.empty()) pending_writes_.erase(ino);
  }
  if (!status.ok()) {
    Release(held);
    return status;
  }
  return held;
}

void DataLocks::Release(const std::vector<dlm::LockInfo>& locks) {
  for (const dlm::LockInfo& l : locks) dlm_->Release(l.handle);
}

absl::Status DataLocks::RevokeBeyond(uint32_t ost, uint64_t oid,
                                     uint64_t size,
                                     const InterruptFn& interrupted) {
  dlm::LockSpec spec;
  spec.resource = {ObjResource(ost, oid), dlm::LockType::kExtent};
  spec.mode = dlm::LockMode::kPW;
  spec.start = size;
  spec.end = dlm::kExtentEof;
  dlm::LockOptions opts;
  opts.interrupted = interrupted;
  absl::StatusOr<dlm::LockInfo> r = dlm_->Lock(spec, opts);
  if (!r.ok()) return r.status();
  dlm_->Release(r->handle);
  return absl::OkStatus();
}

uint64_t DataLocks::Gen() const {
  absl::MutexLock l(&mu_);
  return gen_;
}

void DataLocks::OnBlocking(const dlm::LockInfo& lock, bool lost) {
  uint32_t ost = 0;
  uint64_t oid = 0;
  if (wb_ != nullptr && lock.spec.mode != dlm::LockMode::kPR &&
      ParseObjResource(lock.spec.resource.name, &ost, &oid)) {
    // The data first: no other mount may see the object without it.
    if (lost) {
      wb_->Discard(ost, oid);
    } else {
      // An OSS cut off for a while must not get this mount evicted.
      if (dlm_ != nullptr) dlm_->HandlerWorking(true);
      wb_->WriteBack(ost, oid);
      if (dlm_ != nullptr) dlm_->HandlerWorking(false);
    }
  }
  auto inval = std::make_shared<Inval>();
  absl::MutexLock l(&mu_);
  ++gen_;
  auto it = owner_.find(lock.spec.resource.name);
  if (it == owner_.end()) return;  // never used for I/O here: no pages
  const Owner& owner = it->second;
  const uint64_t ino = owner.ino;
  // Someone else wants this object: lock it in chunks for a while. (A PR
  // asked back while a write of ours on the file waits is most likely our
  // own upgrade; a real contender will conflict again.)
  if (!lost && !(lock.spec.mode == dlm::LockMode::kPR &&
                 pending_writes_.contains(ino))) {
    if (contended_.size() > 100000) contended_.clear();
    contended_[lock.spec.resource.name] = clock_->Now() + kContendedFor;
  }
  inval->ino = ino;
  // The file range of the object range [start, end] (file offsets grow
  // with object offsets; pages of other objects in between go too).
  const uint64_t ss = std::max<uint64_t>(owner.stripe_size, 1);
  const uint64_t row = ss * std::max<uint64_t>(owner.stripe_count, 1);
  auto file_off = [&](uint64_t o) -> uint64_t {
    const uint64_t unit = o / ss;
    if (unit > (dlm::kExtentEof - (owner.stripe + uint64_t{1}) * ss) / row) {
      return dlm::kExtentEof;  // past any file offset
    }
    return unit * row + owner.stripe * ss + o % ss;
  };
  const uint64_t first = file_off(lock.spec.start);
  const uint64_t last = file_off(lock.spec.end);
  if (first >= static_cast<uint64_t>(INT64_MAX)) return;  // no pages there
  if (se_ == nullptr || stop_) return;
  // [first, last] minus the pages our own pending writes of this inode
  // keep locked (they wait for this very callback; their data is current).
  std::vector<std::pair<uint64_t, uint64_t>> pieces = {
      {first, last >= static_cast<uint64_t>(INT64_MAX) ? dlm::kExtentEof
                                                       : last + 1}};
  if (auto pw = pending_writes_.find(ino); pw != pending_writes_.end()) {
    for (const auto& [lo, hi] : pw->second) {
      std::vector<std::pair<uint64_t, uint64_t>> next;
      for (const auto& [a, b] : pieces) {
        if (hi <= a || lo >= b) {
          next.push_back({a, b});
          continue;
        }
        if (a < lo) next.push_back({a, lo});
        if (hi < b) next.push_back({hi, b});
      }
      pieces = std::move(next);
    }
  }
  if (pieces.empty()) return;
  inval->pieces = std::move(pieces);
  queue_.push_back(inval);
  auto done = [&inval]() { return inval->done; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), kInvalWait)) {
    spdlog::warn("page invalidation of ino {} still busy after {}; giving "
                 "the data lock back anyway",
                 ino, absl::FormatDuration(kInvalWait));
  }
}

void DataLocks::InvalLoop() {
  for (;;) {
    std::shared_ptr<Inval> next;
    fuse_session* se;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      next = queue_.front();
      queue_.pop_front();
      se = se_;
      if (se == nullptr) continue;
      busy_ = true;
    }
    for (const auto& [a, b] : next->pieces) {
      // len 0: to the end of the file.
      const off_t len = b >= static_cast<uint64_t>(INT64_MAX)
                            ? 0
                            : static_cast<off_t>(b - a);
      int rc = fuse_lowlevel_notify_inval_inode(se, next->ino,
                                                static_cast<off_t>(a), len);
      if (rc != 0 && rc != -ENOENT) {
        spdlog::warn("page invalidation of ino {}: {}", next->ino,
                     strerror(-rc));
        break;
      }
    }
    absl::MutexLock l(&mu_);
    busy_ = false;
    next->done = true;
  }
}

}  // namespace stripefs::client
