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

absl::StatusOr<DirHandle*> Fs::OpenDir(const OpCtx& ctx, uint64_t ino) {
  return new DirHandle;
}

void Fs::ReleaseDir(DirHandle* d) { delete d; }

namespace {
// d holds `entries` read from cookie `from` on.
void Fill(DirHandle* d, uint64_t from, std::vector<DirEntry> entries,
          bool eof) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu) {
  d->valid = true;
  d->from_cookie = from;
  d->entries = std::move(entries);
  d->eof = eof || d->entries.empty();
}
}  // namespace

absl::Status Fs::ListWhole(const OpCtx& ctx, uint64_t ino, DirHandle* d,
                           bool plus) {
  // The listing is cached only when one batch holds all of the directory.
  auto r = ReadThrough(
      md_.get(), ino, ctx.interrupted,
      [&]() -> std::optional<std::shared_ptr<const std::vector<DirEntry>>> {
        auto listing = md_->GetListing(ino);
        if (listing == nullptr) return std::nullopt;
        return listing;
      },
      [&] { return mds_->Readdir(ctx, ino, 0, options_.readdir_batch, plus); },
      [&](const absl::StatusOr<Listing>& l, uint64_t gen) {
        if (l.ok() && (l->eof || l->entries.empty())) {
          md_->PutListing(ino, l->entries, gen);
        }
      });
  if (r.hit.has_value()) {
    Fill(d, 0, **r.hit, true);
    return absl::OkStatus();
  }
  if (!r.reply.ok()) return r.reply.status();
  Fill(d, 0, std::move(r.reply->entries), r.reply->eof);
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
                              cookie < d->entries.back().cookie));
    if (!cached && md_ != nullptr && cookie == 0) {
      // The whole directory from the metadata cache, or from the MDS under
      // the directory's lock (cached when one batch holds all of it).
      absl::Status s = ListWhole(ctx, ino, d, plus);
      if (!s.ok()) return s;
      cached = true;
    }
    if (!cached) {
      // Fetch the next batch. The handle's lock is held across the RPC: a
      // directory handle serves one reader at a time anyway.
      absl::StatusOr<Listing> l = mds_->Readdir(
          ctx, ino, cookie, options_.readdir_batch, plus);
      if (!l.ok()) return l.status();
      Fill(d, cookie, std::move(l->entries), l->eof);
    }
    for (DirEntry& de : d->entries) {
      if (de.cookie <= cookie) continue;
      if (plus && !de.entry.has_value() && md_ != nullptr) {
        de.entry = md_->GetAttr(de.ino);
      }
      if (plus && de.entry.has_value()) Overlay(&*de.entry);
      DirItem item{de.name, de.ino, de.type, de.cookie + 2,
                   plus && de.entry.has_value() ? &*de.entry : nullptr};
      if (!emit(item)) return absl::OkStatus();
      cookie = de.cookie;
    }
    if (d->eof) return absl::OkStatus();
  }
}

}  // namespace stripefs::client
