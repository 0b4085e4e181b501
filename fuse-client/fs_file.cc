// Fs: open files, data I/O and size reporting.
#include <algorithm>
#include <fcntl.h>

#include <cerrno>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "fuse-client/data_locks.h"
#include "fuse-client/fs.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

std::shared_ptr<InodeState> Fs::FindOpen(uint64_t ino) {
  absl::MutexLock lock(&open_mu_);
  auto it = open_.find(ino);
  return it == open_.end() ? nullptr : it->second;
}

void InodeState::SawMds(const Attr& a, bool own_change) {
  mds_size = a.size;
  if (own_change) {
    // Our own write or truncate: the kernel cache went through it too.
    cache_size = a.size;
    cache_mtime = a.mtime;
  } else if (!dirty && (a.size != cache_size || a.mtime != cache_mtime)) {
    cache_valid = false;  // someone else changed the file
  }
}

std::shared_ptr<InodeState> Fs::AddOpen(const Entry& entry,
                                        bool* keep_cache) {
  const Attr& a = entry.attr;
  std::shared_ptr<InodeState> st;
  bool fresh = false;
  *keep_cache = false;
  {
    absl::MutexLock lock(&open_mu_);
    std::shared_ptr<InodeState>& slot = open_[a.ino];
    if (slot == nullptr) {
      slot = std::make_shared<InodeState>(a.ino);
      fresh = true;
      auto it = stamps_.find(a.ino);
      if (it != stamps_.end()) {
        *keep_cache = it->second.size == a.size &&
                      it->second.sec == a.mtime.sec &&
                      it->second.nsec == a.mtime.nsec;
        stamps_.erase(it);
      }
    }
    ++slot->opens;
    st = slot;
  }
  absl::MutexLock lock(&st->mu);
  st->layout = ToFileLayout(entry.layout);
  st->mode = a.mode;
  st->gid = a.gid;
  if (fresh) {
    st->mds_size = a.size;
    st->cache_size = a.size;
    st->cache_mtime = a.mtime;
    st->cache_valid = true;
  } else {
    st->SawMds(a, false);
    *keep_cache = st->cache_valid;
    if (!st->cache_valid) {
      // This open drops the kernel cache: it matches the MDS again.
      st->cache_size = a.size;
      st->cache_mtime = a.mtime;
      st->cache_valid = true;
    }
  }
  return st;
}

void Fs::DropOpen(const std::shared_ptr<InodeState>& st) {
  absl::MutexLock lock(&open_mu_);
  if (--st->opens > 0) return;
  open_.erase(st->ino);
  absl::MutexLock st_lock(&st->mu);
  if (st->cache_valid && !st->dirty) {
    if (stamps_.size() >= 100000) stamps_.clear();
    stamps_[st->ino] = {st->cache_size, st->cache_mtime.sec,
                        st->cache_mtime.nsec};
  } else {
    stamps_.erase(st->ino);
  }
}

absl::Status Fs::ReleaseHandle(const OpCtx& ctx, uint64_t handle) {
  return mds_->Release(ctx, handle);
}

absl::StatusOr<OpenFile*> Fs::FinishOpen(const OpCtx& ctx,
                                         const OpenResult& opened,
                                         uint32_t flags, uint64_t lists) {
  bool keep_cache = false;
  std::shared_ptr<InodeState> st = AddOpen(opened.entry, &keep_cache);
  auto* f = new OpenFile;
  f->handle = opened.handle;
  f->inode = st;
  f->flags = flags;
  // With a DLM, O_APPEND writes go at the cluster-wide end of file, which
  // the kernel's page cache does not know: no page cache for them.
  f->direct_io = data_locks_ != nullptr && (flags & O_APPEND) != 0;
  f->opener = ctx;
  f->opener.interrupted = nullptr;
  // Registered before the (possibly long) O_TRUNC below, so a recovery
  // meanwhile re-establishes this handle too.
  {
    absl::MutexLock lock(&open_mu_);
    files_.insert(f);
  }
  // A recovery that took its list between the open's send and the insert
  // above did not see this file: re-establish it here (harmless when the
  // instance already has it).
  if (reopen_lists_.load() != lists) ReopenLate(ctx, f);
  if (opened.truncated) {
    keep_cache = false;
    // O_TRUNC dropped the size on the MDS; drop the data on the OSTs.
    std::shared_ptr<const FileLayout> layout;
    {
      absl::MutexLock lock(&st->mu);
      layout = st->layout;
      st->mds_size = 0;
      st->cache_size = 0;
      st->cache_mtime = opened.entry.attr.mtime;
      st->write_end = 0;
      st->dirty = false;
      ++st->write_gen;
      st->synced_gen = st->write_gen;  // the MDS truncated it: nothing owed
    }
    absl::Status s = layout->objects.empty()
                         ? absl::OkStatus()
                         : io_.Truncate(*layout, 0, ctx.interrupted);
    if (!s.ok()) {
      std::unique_ptr<OpenFile> owned(f);
      uint64_t current;
      {
        absl::MutexLock lock(&open_mu_);
        files_.erase(f);
        current = f->handle;  // a reopen meanwhile may have renumbered it
      }
      DropOpen(st);
      if (!f->broken) {
        if (absl::Status r = ReleaseHandle(ctx, current); !r.ok()) {
          spdlog::warn("release of handle {} after failed O_TRUNC: {}",
                       current, r.ToString());
        }
      }
      return s;
    }
  }
  f->keep_cache = keep_cache;
  return f;
}

void Fs::ReopenLate(const OpCtx& ctx, OpenFile* f) {
  uint64_t handle;
  {
    absl::MutexLock lock(&open_mu_);
    handle = f->handle;
  }
  absl::StatusOr<OpenResult> r = mds_->Open(
      ctx, f->inode->ino,
      f->flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC), handle);
  absl::MutexLock lock(&open_mu_);
  if (r.ok()) {
    if (f->handle == handle) f->handle = r->handle;
    return;
  }
  const absl::Status& s = r.status();
  if (!f->broken.exchange(true)) {
    spdlog::error(
        "open file of inode {} (MDS handle {}), opened while the MDS "
        "failed over, could not be re-established on the new instance: {}; "
        "its operations now fail with EIO",
        f->inode->ino, handle, s.ToString());
  }
}

absl::Status Fs::CheckLease(const OpCtx& ctx, const OpenFile& f) {
  // With the gate closed a controlled failover is in progress; its reopen
  // decides about the handle.
  if (!mds_->LeaseInDoubt() || mds_->FailoverInProgress()) {
    return absl::OkStatus();
  }
  // An eviction reported marks the file broken (Fs::Evicted); a new
  // instance re-establishes the handles first (a refused one is broken).
  if (absl::Status s = mds_->ConfirmLease(ctx.interrupted); !s.ok()) return s;
  return CheckNotBroken(f);
}

absl::StatusOr<OpenFile*> Fs::Open(const OpCtx& ctx, uint64_t ino,
                                   uint32_t flags) {
  const uint64_t lists = reopen_lists_.load();
  absl::StatusOr<OpenResult> r = mds_->Open(ctx, ino, flags, 0);
  if (!r.ok()) return r.status();
  return FinishOpen(ctx, *r, flags, lists);
}

absl::StatusOr<std::pair<Entry, OpenFile*>> Fs::Create(
    const OpCtx& ctx, uint64_t parent, const std::string& name, uint32_t mode,
    uint32_t flags) {
  if (absl::Status s = CheckName(name); !s.ok()) return s;
  const uint64_t lists = reopen_lists_.load();
  absl::StatusOr<OpenResult> r = CreateInMds(ctx, parent, name, mode, flags);
  if (!r.ok()) return r.status();
  if (r->handle == 0) return Errno(EIO, "MDS created but did not open");
  absl::StatusOr<OpenFile*> f = FinishOpen(ctx, *r, flags, lists);
  if (!f.ok()) return f.status();
  return std::make_pair(std::move(r->entry), *f);
}

namespace {
// Releases data locks (if any) at scope exit.
class DataHold {
 public:
  explicit DataHold(DataLocks* dl) : dl_(dl) {}
  ~DataHold() {
    if (dl_ != nullptr) dl_->Release(locks_);
  }
  // The objects [off, off+len) touches; whole: every object, all of it.
  absl::Status Take(uint64_t ino, const FileLayout& layout, uint64_t off,
                    uint64_t len, bool write, bool whole,
                    const InterruptFn& intr) {
    if (dl_ == nullptr) return absl::OkStatus();
    absl::StatusOr<std::vector<dlm::LockInfo>> l =
        whole ? dl_->LockWhole(ino, layout, write, intr)
              : dl_->Lock(ino, layout, off, len, write, intr);
    if (!l.ok()) return l.status();
    locks_ = std::move(*l);
    held_ = true;
    gen_ = dl_->Gen();
    return absl::OkStatus();
  }
  bool held() const { return held_; }
  uint64_t gen() const { return gen_; }

 private:
  DataLocks* const dl_;
  std::vector<dlm::LockInfo> locks_;
  bool held_ = false;
  uint64_t gen_ = 0;
};
}  // namespace

absl::StatusOr<ReadData> Fs::Read(const OpCtx& ctx, OpenFile* f, uint64_t off,
                                  uint64_t size) {
  if (absl::Status s = CheckNotBroken(*f); !s.ok()) return s;
  InodeState& st = *f->inode;
  std::shared_ptr<const FileLayout> layout;
  {
    absl::MutexLock lock(&st.mu);
    layout = st.layout;
  }
  // With a DLM: PR on the object ranges read, so no other mount writes
  // there meanwhile and the pages the kernel caches from this read stay
  // valid until asked back.
  DataHold hold(data_locks_);
  if (absl::Status s = hold.Take(st.ino, *layout, off, size, false, false,
                                 ctx.interrupted);
      !s.ok()) {
    return s;
  }
  uint64_t known;
  bool stale = false;
  {
    absl::MutexLock lock(&st.mu);
    known = st.KnownSize();
    stale = hold.held() && st.size_gen != hold.gen();
  }
  bool fetched = false;
  if (off + size > known || stale) {
    fetched = true;
    // Near the end of what we know: another mount may have grown the file.
    absl::StatusOr<Entry> e = mds_->GetAttr(ctx, st.ino);
    if (!e.ok()) return e.status();
    absl::MutexLock lock(&st.mu);
    st.SawMds(e->attr, false);
    if (hold.held()) st.size_gen = hold.gen();
    known = st.KnownSize();
  }
  absl::StatusOr<ReadData> r =
      io_.Read(*layout, known, off, size, ctx.interrupted);
  if (!r.ok() || !hold.held() || fetched || !r->short_object) return r;
  // An object ends before the size we know: a truncate on another mount
  // that none of our data locks covered may have cut the file (our locks
  // only cover the ranges we used). Ask again (cached under the metadata
  // lock, which that truncate took back) and read with the new size.
  absl::StatusOr<Entry> e = CachedGetAttr(ctx, st.ino);
  if (!e.ok()) return e.status();
  uint64_t now_known;
  {
    absl::MutexLock lock(&st.mu);
    st.SawMds(e->attr, false);
    now_known = st.KnownSize();
  }
  if (now_known >= known) return r;
  return io_.Read(*layout, now_known, off, size, ctx.interrupted);
}

absl::StatusOr<size_t> Fs::Write(const OpCtx& ctx, OpenFile* f, uint64_t off,
                                 const char* data, size_t size) {
  if (absl::Status s = CheckNotBroken(*f); !s.ok()) return s;
  // An evicted mount's data must not reach an OSS.
  if (absl::Status s = CheckLease(ctx, *f); !s.ok()) return s;
  InodeState& st = *f->inode;
  std::shared_ptr<const FileLayout> layout;
  {
    absl::MutexLock lock(&st.mu);
    layout = st.layout;
  }
  // With a DLM: PW on the object ranges written, while writing and while
  // reporting a new size, so the MDS knows the size before any other mount
  // may look at the file. An append needs the true end of file: PW on all
  // of every object, so every other writer has reported its size.
  const bool append = (f->flags & O_APPEND) != 0;
  DataHold hold(data_locks_);
  if (absl::Status s = hold.Take(st.ino, *layout, off, size, true, append,
                                 ctx.interrupted);
      !s.ok()) {
    return s;
  }
  bool stale = false;
  {
    absl::MutexLock lock(&st.mu);
    stale = hold.held() && st.size_gen != hold.gen();
  }
  if (hold.held() && append) {
    // The kernel's offset is its idea of the end of file; another mount
    // may have appended since.
    if (stale) {
      absl::StatusOr<Entry> e = mds_->GetAttr(ctx, st.ino);
      if (!e.ok()) return e.status();
      absl::MutexLock lock(&st.mu);
      st.SawMds(e->attr, false);
      st.size_gen = hold.gen();
    }
    absl::MutexLock lock(&st.mu);
    off = st.KnownSize();
  }
  if (absl::Status s = io_.Write(*layout, off, data, size, ctx.interrupted);
      !s.ok()) {
    return s;
  }
  bool kill_now = false;
  {
    absl::MutexLock lock(&st.mu);
    st.write_end = std::max(st.write_end, off + size);
    st.dirty = true;
    ++st.write_gen;
    st.mtime = NowTimespec();
    // What Linux clears on an unprivileged write: S_ISUID always; S_ISGID
    // when group-executable or when the writer is not in the file's group.
    const bool in_group =
        ctx.gid == st.gid ||
        std::find(ctx.groups.begin(), ctx.groups.end(), st.gid) !=
            ctx.groups.end();
    bool privileged =
        (st.mode & S_ISUID) ||
        ((st.mode & S_ISGID) && ((st.mode & S_IXGRP) || !in_group));
    if (ctx.uid != 0 && privileged) {
      st.kill_priv = true;
      kill_now = true;
    }
  }
  bool grew = false;
  if (hold.held()) {
    absl::MutexLock lock(&st.mu);
    grew = st.write_end > st.mds_size;
  }
  if (kill_now || grew) {
    if (absl::Status s = ReportSize(ctx, st); !s.ok()) return s;
  }
  // O_SYNC / O_DSYNC: durable when write(2) returns.
  if ((f->flags & O_DSYNC) != 0) {
    if (absl::Status s = Fsync(ctx, f); !s.ok()) return s;
  }
  return size;
}

absl::Status Fs::ReportSize(const OpCtx& ctx, InodeState& st) {
  absl::MutexLock report(&st.report_mu);
  uint64_t size, gen;
  Timespec mtime;
  bool kill;
  {
    absl::MutexLock lock(&st.mu);
    if (!st.dirty) return absl::OkStatus();
    size = st.KnownSize();
    mtime = st.mtime;
    kill = st.kill_priv;
    gen = st.write_gen;
    st.dirty = false;
    st.kill_priv = false;
  }
  absl::StatusOr<Entry> e = mds_->UpdateSize(ctx, st.ino, size, mtime, kill);
  absl::MutexLock lock(&st.mu);
  if (!e.ok()) {
    st.dirty = true;
    st.kill_priv = st.kill_priv || kill;
    return e.status();
  }
  st.mode = e->attr.mode;
  st.gid = e->attr.gid;
  st.SawMds(e->attr, true);
  if (st.write_gen == gen) st.write_end = 0;
  return absl::OkStatus();
}

absl::Status Fs::WriteBack(const OpCtx& ctx, InodeState& st) {
  std::shared_ptr<const FileLayout> layout;
  {
    absl::MutexLock lock(&st.mu);
    layout = st.layout;
  }
  if (layout == nullptr || layout->objects.empty()) return absl::OkStatus();
  return io_.Flush(*layout, ctx.interrupted);
}

absl::Status Fs::Flush(const OpCtx& ctx, OpenFile* f) {
  if (absl::Status s = CheckNotBroken(*f); !s.ok()) return s;
  // Buffered writes reach the OSTs at close (close-to-open); a failed
  // write-back of them is reported here.
  absl::Status w = WriteBack(ctx, *f->inode);
  absl::Status s = ReportSize(ctx, *f->inode);
  return w.ok() ? s : w;
}

absl::Status Fs::Fsync(const OpCtx& ctx, OpenFile* f) {
  if (absl::Status s = CheckNotBroken(*f); !s.ok()) return s;
  if (absl::Status s = CheckLease(ctx, *f); !s.ok()) return s;
  std::shared_ptr<const FileLayout> layout;
  uint64_t gen = 0;
  {
    absl::MutexLock lock(&f->inode->mu);
    layout = f->inode->layout;
    gen = f->inode->write_gen;
  }
  if (absl::Status s = io_.Sync(*layout, ctx.interrupted); !s.ok()) return s;
  absl::Status s = ReportSize(ctx, *f->inode);
  // Also when nothing was dirty: the create of the file may not be durable.
  if (s.ok()) s = mds_->Sync(ctx);
  if (s.ok()) {
    absl::MutexLock lock(&f->inode->mu);
    f->inode->synced_gen = std::max(f->inode->synced_gen, gen);
  }
  return s;
}

absl::Status Fs::FsyncDir(const OpCtx& ctx) {
  return mds_->Sync(ctx);
}

absl::Status Fs::Release(const OpCtx& ctx, OpenFile* f) {
  std::unique_ptr<OpenFile> owned(f);
  {
    absl::MutexLock lock(&open_mu_);
    files_.erase(f);
  }
  if (f->broken) {
    // The MDS no longer has the handle: nothing to report or close.
    DropOpen(f->inode);
    return absl::OkStatus();
  }
  absl::Status w = WriteBack(f->opener, *f->inode);
  absl::Status s = ReportSize(f->opener, *f->inode);
  if (s.ok()) s = w;
  absl::Status r = HandleGone(*f, ReleaseHandle(f->opener, f->handle));
  DropOpen(f->inode);
  return s.ok() ? r : s;
}

absl::Status Fs::ReopenAll(bool evicted) {
  struct Item {
    uint64_t handle = 0;
    uint64_t ino = 0;
    uint32_t flags = 0;
    OpCtx opener;
    bool dirty = false;
  };
  std::vector<Item> items;
  {
    absl::MutexLock lock(&open_mu_);
    reopen_lists_.fetch_add(1);  // opens under way re-establish themselves
    for (OpenFile* f : files_) {
      if (f->broken) continue;
      Item it{f->handle, f->inode->ino, f->flags, f->opener, false};
      absl::MutexLock il(&f->inode->mu);
      it.dirty = f->inode->dirty ||
                 f->inode->write_gen != f->inode->synced_gen;
      items.push_back(std::move(it));
    }
  }
  // Marks the open file that has `handle` broken.
  auto mark_broken = [&](uint64_t handle, const std::string& why) {
    absl::MutexLock lock(&open_mu_);
    for (OpenFile* f : files_) {
      if (f->handle == handle && !f->broken.exchange(true)) {
        spdlog::error(
            "open file of inode {} (MDS handle {}) is lost after the MDS "
            "failover: {}; its operations now fail with EIO",
            f->inode->ino, handle, why);
      }
    }
  };
  size_t reopened = 0;
  for (const Item& it : items) {
    if (evicted && it.dirty) {
      mark_broken(it.handle,
                  "this mount was evicted (unreachable during the server's "
                  "shutdown) with writes to the file not yet fsynced");
      continue;
    }
    // Re-establish, never re-create or truncate (the opener's
    // credentials; no interrupt: the recovery runs for every request).
    OpCtx opener = it.opener;
    opener.interrupted = nullptr;
    absl::StatusOr<OpenResult> r = mds_->Open(
        opener, it.ino,
        it.flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC),
        it.handle);
    if (r.ok()) {
      ++reopened;
      if (r->handle != it.handle) {
        absl::MutexLock lock(&open_mu_);
        for (OpenFile* f : files_) {
          if (f->handle == it.handle) f->handle = r->handle;
        }
      }
      continue;
    }
    const absl::Status& s = r.status();
    const int e = ToErrno(s);
    if (e == ESTALE || e == ENOENT || e == EBADF || e == EINVAL) {
      mark_broken(it.handle, s.ToString());
      continue;
    }
    return absl::Status(s.code(),
                        absl::StrCat("reopen of inode ", it.ino, " (handle ",
                                     it.handle, "): ", s.message()));
  }
  if (!items.empty()) {
    spdlog::info("re-established {} of {} open files on the MDS", reopened,
                 items.size());
  }
  return absl::OkStatus();
}

size_t Fs::BrokenFiles() {
  absl::MutexLock lock(&open_mu_);
  size_t n = 0;
  for (OpenFile* f : files_) n += f->broken ? 1 : 0;
  return n;
}

size_t Fs::Evicted(uint64_t below_handle) {
  size_t marked = 0;
  {
    absl::MutexLock lock(&open_mu_);
    for (OpenFile* f : files_) {
      // Handles at or above below_handle were given after the eviction.
      if (below_handle != 0 && f->handle >= below_handle) continue;
      marked += f->broken.exchange(true) ? 0 : 1;
    }
  }
  // Nothing lost (no file was open): worth a warning only.
  spdlog::log(
      marked > 0 ? spdlog::level::err : spdlog::level::warn,
      "evicted by the MDS (its client lease ran out: it did not hear from "
      "this mount for that long, e.g. the mount was stopped or cut off): {} "
      "open files lost, their operations now fail with EIO; open them again",
      marked);
  return marked;
}

absl::Status Fs::CheckNotBroken(const OpenFile& f) {
  if (!f.broken) return absl::OkStatus();
  return Errno(EIO, absl::StrCat("open file of inode ", f.inode->ino,
                                 " was lost in an MDS failover"));
}

absl::Status Fs::HandleGone(OpenFile& f, const absl::Status& s) {
  if (s.ok() || ToErrno(s) != EBADF) return s;
  if (!f.broken.exchange(true)) {
    spdlog::error(
        "open file of inode {} (MDS handle {}) is gone on the MDS: this "
        "mount was evicted (the MDS did not hear from it for its client "
        "lease) and its open handles dropped ({}); the file's operations "
        "now fail with EIO, open it again",
        f.inode->ino, f.handle, s.ToString());
  }
  return Errno(EIO, absl::StrCat("open file of inode ", f.inode->ino,
                                 " is gone on the MDS: this mount was "
                                 "evicted"));
}

}  // namespace stripefs::client
