// Fs: directory listing. FUSE offsets: 1 after ".", 2 after "..", and
// cookie + 2 after an MDS entry, so an offset stays valid while the
// directory changes (MDS cookies of live entries never change and grow in
// listing order).
#include <cerrno>

#include "common/errors.h"
#include "fuse-client/fs.h"

namespace stripefs::client {

using rpc::Mds;

absl::StatusOr<DirHandle*> Fs::OpenDir(const OpCtx& ctx, uint64_t ino) {
  return new DirHandle;
}

void Fs::ReleaseDir(DirHandle* d) { delete d; }

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
