// FileIo: reads, writes, truncates and syncs one file's data given its
// layout. The pieces of one request go to their objects in parallel on a
// small shared thread pool (a one-piece request runs inline on the caller's
// thread). Reads are clamped to the file size and short object reads are
// zero-filled (holes). Object access goes through the ObjectIo interface so
// tests can use a fake OST. Thread-safe (stateless apart from the pool).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fuse-client/request_gate.h"
#include "fuse-client/thread_pool.h"

namespace stripefs::client {

struct ObjectRef {
  uint32_t ost = 0;
  uint64_t oid = 0;
};

// Object operations on the OSTs, by OST index.
class ObjectIo {
 public:
  virtual ~ObjectIo() = default;
  // Up to len bytes at offset: shorter only at the object's end (empty past
  // it); holes read as zeros.
  virtual absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid,
                                           uint64_t offset, uint32_t len,
                                           const InterruptFn& intr) = 0;
  virtual absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                             const char* data, size_t len,
                             const InterruptFn& intr) = 0;
  // Write of a buffer the caller gives up (an implementation may move it
  // into its request instead of copying).
  virtual absl::Status WriteOwned(uint32_t ost, uint64_t oid, uint64_t offset,
                                  std::string&& data,
                                  const InterruptFn& intr) {
    return Write(ost, oid, offset, data.data(), data.size(), intr);
  }
  virtual absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                                const InterruptFn& intr) = 0;
  virtual absl::Status Sync(uint32_t ost, const std::vector<uint64_t>& oids,
                            const InterruptFn& intr) = 0;
  // Sends what the implementation buffered of these objects (write-behind,
  // write_behind.h) and reports a pending error of an earlier write-back;
  // nothing to do for an unbuffered one.
  virtual absl::Status Flush(const std::vector<ObjectRef>& objects,
                             const InterruptFn& intr) {
    return absl::OkStatus();
  }
};

// What FileIo needs of a file's layout: one object per stripe.
struct FileLayout {
  uint64_t stripe_size = 0;
  std::vector<ObjectRef> objects;
};

// Result of a read, in file order, ready for fuse_reply_iov: iov points into
// chunks (owned) or into a static zero page.
struct ReadData {
  std::vector<std::string> chunks;
  std::vector<iovec> iov;
  size_t size = 0;
  // Some object ended before the range read from it (zeros were filled in).
  bool short_object = false;
  std::string Flatten() const;
};

class FileIo {
 public:
  // Largest single request (pieces of one call); FUSE sends at most 1 MiB.
  static constexpr uint64_t kMaxRequest = 64ull << 20;

  FileIo(ObjectIo* objects, ThreadPool* pool)
      : objects_(objects), pool_(pool) {}

  // Reads [offset, offset+len) clamped to file_size.
  absl::StatusOr<ReadData> Read(const FileLayout& layout, uint64_t file_size,
                                uint64_t offset, uint64_t len,
                                const InterruptFn& intr);
  absl::Status Write(const FileLayout& layout, uint64_t offset,
                     const char* data, size_t len, const InterruptFn& intr);
  // Sets every object to its size for a file of new_size bytes.
  absl::Status Truncate(const FileLayout& layout, uint64_t new_size,
                        const InterruptFn& intr);
  // Makes every object of the file durable (one Sync per OST).
  absl::Status Sync(const FileLayout& layout, const InterruptFn& intr);
  // Writes back what is buffered of the file (ObjectIo::Flush, inline: no
  // pool hop for the usual clean file).
  absl::Status Flush(const FileLayout& layout, const InterruptFn& intr);

 private:
  // Runs fn(i) for i in [0, n): i > 0 on the pool, 0 inline; waits for all
  // and returns the first error.
  absl::Status RunAll(size_t n, absl::FunctionRef<absl::Status(size_t)> fn);

  ObjectIo* const objects_;
  ThreadPool* const pool_;
};

}  // namespace stripefs::client
