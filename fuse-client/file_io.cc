#include "fuse-client/file_io.h"

#include "common/limits.h"

#include <algorithm>
#include <cerrno>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/errors.h"
#include "common/limits.h"
#include "fuse-client/stripe_map.h"

namespace stripefs::client {
namespace {

constexpr size_t kZeroPage = 1 << 20;
const char kZeros[kZeroPage] = {};

absl::Status CheckLayout(const FileLayout& layout) {
  if (layout.stripe_size == 0 || layout.objects.empty()) {
    return Errno(EIO, "file has no usable layout");
  }
  return absl::OkStatus();
}

void AppendZeros(ReadData& out, size_t n) {
  while (n > 0) {
    size_t k = std::min(n, kZeroPage);
    out.iov.push_back({const_cast<char*>(kZeros), k});
    n -= k;
  }
}

}  // namespace

std::string ReadData::Flatten() const {
  std::string s;
  s.reserve(size);
  for (const iovec& v : iov) {
    s.append(static_cast<const char*>(v.iov_base), v.iov_len);
  }
  return s;
}

absl::Status FileIo::RunAll(size_t n,
                            absl::FunctionRef<absl::Status(size_t)> fn) {
  if (n == 0) return absl::OkStatus();
  if (n == 1) return fn(0);
  std::vector<absl::Status> results(n);
  absl::BlockingCounter pending(static_cast<int>(n - 1));
  for (size_t i = 1; i < n; ++i) {
    pool_->Schedule([&, i] {
      results[i] = fn(i);
      pending.DecrementCount();
    });
  }
  results[0] = fn(0);
  pending.Wait();
  for (absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<ReadData> FileIo::Read(const FileLayout& layout,
                                      uint64_t file_size, uint64_t offset,
                                      uint64_t len, const InterruptFn& intr) {
  ReadData out;
  if (offset >= file_size || len == 0) return out;
  if (absl::Status s = CheckLayout(layout); !s.ok()) return s;
  len = std::min(len, file_size - offset);
  if (len > kMaxRequest) return Errno(EINVAL, "read too large");
  std::vector<StripePiece> pieces =
      MapRange(layout.stripe_size, layout.objects.size(), offset, len);
  out.chunks.resize(pieces.size());
  absl::Status s = RunAll(pieces.size(), [&](size_t i) -> absl::Status {
    const StripePiece& p = pieces[i];
    const ObjectRef& obj = layout.objects[p.stripe];
    absl::StatusOr<std::string> data = objects_->Read(
        obj.ost, obj.oid, p.obj_offset, static_cast<uint32_t>(p.length), intr);
    if (!data.ok()) return data.status();
    if (data->size() > p.length) data->resize(p.length);
    out.chunks[i] = std::move(*data);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string& c = out.chunks[i];
    if (!c.empty()) out.iov.push_back({c.data(), c.size()});
    if (c.size() < pieces[i].length) out.short_object = true;
    AppendZeros(out, pieces[i].length - c.size());
  }
  out.size = len;
  return out;
}

absl::Status FileIo::Write(const FileLayout& layout, uint64_t offset,
                           const char* data, size_t len,
                           const InterruptFn& intr) {
  if (len == 0) return absl::OkStatus();
  if (absl::Status s = CheckLayout(layout); !s.ok()) return s;
  if (len > kMaxRequest) return Errno(EINVAL, "write too large");
  if (offset > UINT64_MAX - len) return Errno(EFBIG, "write past 2^64");
  std::vector<StripePiece> pieces =
      MapRange(layout.stripe_size, layout.objects.size(), offset, len);
  // Checked here, not left to the OSS: a buffered write is answered before
  // any OSS sees it.
  for (const StripePiece& p : pieces) {
    if (p.obj_offset > kMaxObjectSize - p.length) {
      return Errno(EFBIG, absl::StrCat("write at file offset ", offset,
                                       " past the largest object"));
    }
  }
  return RunAll(pieces.size(), [&](size_t i) {
    const StripePiece& p = pieces[i];
    const ObjectRef& obj = layout.objects[p.stripe];
    return objects_->Write(obj.ost, obj.oid, p.obj_offset, data + p.buf_offset,
                           p.length, intr);
  });
}

absl::Status FileIo::Truncate(const FileLayout& layout, uint64_t new_size,
                              const InterruptFn& intr) {
  if (absl::Status s = CheckLayout(layout); !s.ok()) return s;
  return RunAll(layout.objects.size(), [&](size_t i) {
    const ObjectRef& obj = layout.objects[i];
    return objects_->Truncate(
        obj.ost, obj.oid,
        ObjectSizeForFileSize(layout.stripe_size, layout.objects.size(),
                              new_size, static_cast<uint32_t>(i)),
        intr);
  });
}

namespace {
std::vector<std::pair<uint32_t, std::vector<uint64_t>>> ByOst(
    const FileLayout& layout) {
  std::map<uint32_t, std::vector<uint64_t>> by_ost;
  for (const ObjectRef& o : layout.objects) by_ost[o.ost].push_back(o.oid);
  return {by_ost.begin(), by_ost.end()};
}
}  // namespace

absl::Status FileIo::Sync(const FileLayout& layout, const InterruptFn& intr) {
  auto groups = ByOst(layout);
  return RunAll(groups.size(), [&](size_t i) {
    return objects_->Sync(groups[i].first, groups[i].second, intr);
  });
}

absl::Status FileIo::Flush(const FileLayout& layout, const InterruptFn& intr) {
  return objects_->Flush(layout.objects, intr);
}

}  // namespace stripefs::client
