// Fs: directory listing. FUSE offsets: 1 after ".", 2 after "..", and
// cookie + 2 after an MDS entry, so an offset stays valid while the
// directory changes (MDS cookies of live entries never change and grow in
// listing order).
#include <cerrno>

#include <optional>

#include "common/errors.h"
#include "dlm/dlm_client.h"
#include "fuse-client/fs.h"
#include "fuse-client/md_cache.h"

namespace stripefs::client {

using rpc::Mds;

absl::StatusOr<DirHandle*> Fs::OpenDir(const OpCtx& ctx, uint64_t ino) {
  return new DirHandle;
}

void Fs::ReleaseDir(DirHandle* d) { delete d; }

absl::Status Fs::ListWhole(const OpCtx& ctx, uint64_t ino, DirHandle* d,
                           bool plus) {
  auto use = [d](const std::vector<rpc::DirEntry>& entries) {
    d->mu.AssertHeld();  // ListWhole's caller holds it
    d->valid = true;
    d->from_cookie = 0;
    d->entries = entries;
    d->eof = true;
  };
  if (auto listing = md_->GetListing(ino)) {
    use(*listing);
    return absl::OkStatus();
  }
  // A contended directory: leave d invalid, the caller reads it uncached.
  if (md_->Bypassed(ino)) return absl::OkStatus();
  absl::StatusOr<dlm::LockInfo> l = md_->LockInode(ino, ctx.interrupted);
  if (!l.ok()) return l.status();
  dlm::ScopedLock held(dlm_, *l);
  if (auto listing = md_->GetListing(ino)) {
    use(*listing);
    return absl::OkStatus();
  }
  rpc::ReaddirReply reply;
  absl::Status s = mds_->Call(
      &Mds::Stub::Readdir, "Readdir", ctx.interrupted,
      [&](rpc::ReaddirRequest& r) {
        FillCred(ctx, r.mutable_cred());
        r.set_ino(ino);
        r.set_cookie(0);
        r.set_max_entries(options_.readdir_batch);
        r.set_plus(plus);
      },
      &reply);
  if (!s.ok()) return s;
  d->valid = true;
  d->from_cookie = 0;
  d->entries.assign(std::make_move_iterator(reply.mutable_entries()->begin()),
                    std::make_move_iterator(reply.mutable_entries()->end()));
  d->eof = reply.eof() || d->entries.empty();
  if (d->eof) md_->PutListing(ino, d->entries);
  return absl::OkStatus();
}

absl::Status Fs::ReadDir(const OpCtx& ctx, uint64_t ino, DirHandle* d,
                         uint64_t off, bool plus,
                         absl::FunctionRef<bool(const DirItem&)> emit) {
  if (off == 0) {
    DirItem dot{".", ino, S_IFDIR, 1, nullptr};
    if (!emit(dot)) return absl::OkStatus();
  }
  if (off <= 1) {
    DirItem dotdot{"..", 1, S_IFDIR, 2, nullptr};
    if (!emit(dotdot)) return absl::OkStatus();
  }
  uint64_t cookie = off >= 2 ? off - 2 : 0;
  absl::MutexLock lock(&d->mu);
  if (off == 0) d->valid = false;  // rewinddir: list afresh
  for (;;) {
    bool cached = d->valid && d->from_cookie <= cookie &&
                  (d->eof || (!d->entries.empty() &&
                              cookie < d->entries.back().cookie()));
    if (!cached && md_ != nullptr && cookie == 0) {
      // The whole directory from the metadata cache, or from the MDS under
      // the directory's lock (cached when one batch holds all of it).
      absl::Status s = ListWhole(ctx, ino, d, plus);
      if (!s.ok()) return s;
      cached = d->valid;
    }
    if (!cached) {
      // Fetch the next batch. The handle's lock is held across the RPC: a
      // directory handle serves one reader at a time anyway.
      rpc::ReaddirReply reply;
      absl::Status s = mds_->Call(
          &Mds::Stub::Readdir, "Readdir", ctx.interrupted,
          [&](rpc::ReaddirRequest& r) {
            FillCred(ctx, r.mutable_cred());
            r.set_ino(ino);
            r.set_cookie(cookie);
            r.set_max_entries(options_.readdir_batch);
            r.set_plus(plus);
          },
          &reply);
      if (!s.ok()) return s;
      d->valid = true;
      d->from_cookie = cookie;
      d->entries.assign(
          std::make_move_iterator(reply.mutable_entries()->begin()),
          std::make_move_iterator(reply.mutable_entries()->end()));
      d->eof = reply.eof() || d->entries.empty();
    }
    for (rpc::DirEntry& de : d->entries) {
      if (de.cookie() <= cookie) continue;
      if (plus && !de.has_entry() && md_ != nullptr) {
        if (std::optional<rpc::Entry> e = md_->GetAttr(de.ino())) {
          *de.mutable_entry() = std::move(*e);
        }
      }
      if (plus && de.has_entry()) Overlay(de.mutable_entry());
      DirItem item{de.name(), de.ino(), de.type(), de.cookie() + 2,
                   plus && de.has_entry() ? &de.entry() : nullptr};
      if (!emit(item)) return absl::OkStatus();
      cookie = de.cookie();
    }
    if (d->eof) return absl::OkStatus();
  }
}

}  // namespace stripefs::client
