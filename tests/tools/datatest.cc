// stripefs-datatest: a random-operation data tester for one file.
//
// Keeps an in-memory model of the file and applies a seeded random sequence
// of operations to both the real file and the model: pwrite at random
// (unaligned, stripe-crossing, past-EOF) offsets, ftruncate (shrink and grow),
// pread checked against the model, writes through a shared writable mmap (with
// msync(MS_SYNC) sometimes), fsync, and close+reopen followed by a full-file
// verification. The run is fully determined by --seed, so a failure replays.
//
// Exit status: 0 when every check matched, 1 on the first data or size
// mismatch (printed with its offset, op number and seed), 2 when a system
// call fails, 3 on bad flags. Single-threaded test code; not a library.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

constexpr int kExitMismatch = 1;
constexpr int kExitSyscall = 2;
constexpr int kExitFlags = 3;
constexpr size_t kHistory = 24;  // ops remembered for the failure report

struct Options {
  std::string file;
  uint64_t ops = 10000;
  uint64_t seed = 0;
  bool seed_given = false;
  uint64_t max_size = 8ull << 20;
  uint64_t boundary = 64 << 10;  // stripe boundaries to aim at
  bool use_mmap = true;
  bool keep = false;
  bool verbose = false;
  uint64_t corrupt_at_op = 0;  // self-test: flip a byte behind the model
};

struct Counters {
  uint64_t writes = 0, write_bytes = 0;
  uint64_t reads = 0, read_bytes = 0;
  uint64_t truncs = 0, mmap_writes = 0, mmap_bytes = 0, msyncs = 0;
  uint64_t mmap_reads = 0;
  uint64_t fsyncs = 0, reopens = 0, full_verifies = 0, stats = 0;
};

class DataTester {
 public:
  explicit DataTester(Options opts)
      : opts_(opts), rng_(opts.seed) {}

  ~DataTester() {
    if (fd_ >= 0) close(fd_);
  }

  // Runs the whole test; returns the process exit code.
  int Run() {
    fd_ = open(opts_.file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd_ < 0) return SysFail("open(O_CREAT|O_TRUNC)");
    auto start = std::chrono::steady_clock::now();
    for (op_ = 1; op_ <= opts_.ops; ++op_) {
      int rc = op_ == opts_.corrupt_at_op ? Corrupt() : Step();
      if (rc != 0) return rc;
      if (opts_.verbose && op_ % 10000 == 0) {
        std::printf("datatest: %" PRIu64 " ops done, size %zu\n", op_,
                    model_.size());
        std::fflush(stdout);
      }
    }
    op_ = opts_.ops + 1;
    Note("final full verify");
    int rc = Reopen();
    if (rc != 0) return rc;
    if (close(fd_) != 0) return SysFail("close");
    fd_ = -1;
    if (!opts_.keep && unlink(opts_.file.c_str()) != 0) return SysFail("unlink");
    double secs = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - start).count();
    const Counters& c = counters_;
    std::printf(
        "datatest: PASS seed=%" PRIu64 " ops=%" PRIu64 " final_size=%zu "
        "time=%.1fs\n"
        "  writes=%" PRIu64 " (%" PRIu64 " bytes) reads=%" PRIu64 " (%" PRIu64
        " bytes) truncates=%" PRIu64 "\n"
        "  mmap_writes=%" PRIu64 " (%" PRIu64 " bytes) mmap_reads=%" PRIu64
        " msyncs=%" PRIu64 " fsyncs=%" PRIu64 " reopens=%" PRIu64
        " full_verifies=%" PRIu64 " stats=%" PRIu64 "\n",
        opts_.seed, opts_.ops, model_.size(), secs, c.writes, c.write_bytes,
        c.reads, c.read_bytes, c.truncs, c.mmap_writes, c.mmap_bytes,
        c.mmap_reads, c.msyncs, c.fsyncs, c.reopens, c.full_verifies,
        c.stats);
    static const char* kNames[kKinds] = {"pwrite", "pread", "ftruncate",
                                         "mmap-write", "mmap-read", "fsync",
                                         "fstat", "reopen+verify"};
    std::printf("  mean ms/op:");
    for (int k = 0; k < kKinds; ++k) {
      if (count_[k]) std::printf(" %s=%.3f", kNames[k], 1e3 * time_[k] / count_[k]);
    }
    std::printf("\n");
    return 0;
  }

 private:
  uint64_t Uniform(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  bool Chance(int per_mille) { return Uniform(0, 999) < uint64_t(per_mille); }

  void Note(std::string what) {
    history_.push_back("op " + std::to_string(op_) + ": " + what);
    if (history_.size() > kHistory) history_.pop_front();
  }

  void PrintHistory() {
    std::fprintf(stderr, "datatest: last operations:\n");
    for (const auto& h : history_) std::fprintf(stderr, "  %s\n", h.c_str());
  }

  int SysFail(const char* what) {
    int err = errno;
    std::fprintf(stderr,
                 "datatest: FAIL syscall %s on %s failed: %s (errno %d) at op "
                 "%" PRIu64 " seed=%" PRIu64 "\n",
                 what, opts_.file.c_str(), std::strerror(err), err, op_,
                 opts_.seed);
    PrintHistory();
    return kExitSyscall;
  }

  int Mismatch(const char* where, uint64_t offset, int expected, int got) {
    std::fprintf(stderr,
                 "datatest: MISMATCH in %s at offset %" PRIu64 " (0x%" PRIx64
                 "): expected 0x%02x got 0x%02x; op %" PRIu64 " seed=%" PRIu64
                 " model_size=%zu\n",
                 where, offset, offset, expected, got, op_, opts_.seed,
                 model_.size());
    PrintHistory();
    return kExitMismatch;
  }

  int SizeMismatch(const char* where, uint64_t expected, uint64_t got) {
    std::fprintf(stderr,
                 "datatest: MISMATCH in %s: file size expected %" PRIu64
                 " got %" PRIu64 " (first differing offset %" PRIu64
                 "); op %" PRIu64 " seed=%" PRIu64 "\n",
                 where, expected, got, std::min(expected, got), op_,
                 opts_.seed);
    PrintHistory();
    return kExitMismatch;
  }

  // Compares `n` bytes read from `offset` against the model.
  int Compare(const char* where, uint64_t offset, const uint8_t* got,
              size_t n) {
    const uint8_t* want = model_.data() + offset;
    if (std::memcmp(want, got, n) == 0) return 0;
    for (size_t i = 0; i < n; ++i) {
      if (want[i] != got[i]) return Mismatch(where, offset + i, want[i], got[i]);
    }
    return 0;
  }

  // An offset in [0, limit], biased towards stripe boundaries and EOF.
  uint64_t PickOffset(uint64_t limit) {
    uint64_t size = model_.size();
    uint64_t off;
    switch (Uniform(0, 9)) {
      case 0:
      case 1:
      case 2:
      case 3: {  // near a stripe boundary
        uint64_t nb = limit / opts_.boundary;
        uint64_t b = Uniform(0, nb) * opts_.boundary;
        int64_t d = int64_t(Uniform(0, 600)) - 300;
        off = (d < 0 && uint64_t(-d) > b) ? 0 : b + d;
        break;
      }
      case 4:
      case 5: {  // near EOF
        int64_t d = int64_t(Uniform(0, 8192)) - 4096;
        off = (d < 0 && uint64_t(-d) > size) ? 0 : size + d;
        break;
      }
      case 6:  // inside the current data
        off = size ? Uniform(0, size - 1) : 0;
        break;
      default:
        off = Uniform(0, limit);
    }
    return std::min(off, limit);
  }

  uint64_t PickLength(uint64_t cap) {
    uint64_t len;
    uint64_t r = Uniform(0, 99);
    if (r < 55) {
      len = Uniform(1, 4096);
    } else if (r < 90) {
      len = Uniform(1, 64 << 10);
    } else if (r < 99) {
      len = Uniform(1, 256 << 10);
    } else {
      len = Uniform(1, 2560 << 10);  // crosses several 1 MiB stripes
    }
    return std::max<uint64_t>(1, std::min(len, cap));
  }

  void Fill(uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t v = rng_();
      std::memcpy(p + i, &v, 8);
    }
    if (i < n) {
      uint64_t v = rng_();
      std::memcpy(p + i, &v, n - i);
    }
  }

  enum Kind { kWrite, kRead, kTrunc, kMmapW, kMmapR, kFsync, kStat, kReopen,
              kKinds };

  // Runs one random op and adds its wall time to its kind's total.
  int Step() {
    uint64_t r = Uniform(0, 999);
    Kind kind = r < 380 ? kWrite : r < 720 ? kRead : r < 760 ? kTrunc
              : r < 830 ? kMmapW : r < 855 ? kMmapR : r < 870 ? kFsync
              : r < 998 ? kStat : kReopen;
    auto t0 = std::chrono::steady_clock::now();
    int rc = StepKind(r);
    time_[kind] += std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0).count();
    count_[kind]++;
    return rc;
  }

  int StepKind(uint64_t r) {
    // Op mix (per mille): pwrite 38%, pread 34%, ftruncate 4%, mmap write
    // 7%, mmap read 2.5%, fsync 1.5%, fstat 12.8%, reopen+verify 0.2%.
    if (r < 380) return DoWrite();
    if (r < 720) return DoRead();
    if (r < 760) return DoTruncate();
    if (r < 830) return opts_.use_mmap ? DoMmapWrite() : DoWrite();
    if (r < 855) return opts_.use_mmap ? DoMmapRead() : DoRead();
    if (r < 870) return DoFsync();
    if (r < 998) return DoStat();
    return Reopen();  // 0.2%: close, reopen, full verify
  }

  // Self-test of the checker: changes one byte of the file without telling
  // the model, so a later check must report a mismatch.
  int Corrupt() {
    if (model_.empty()) {
      opts_.corrupt_at_op++;  // try again once the file has data
      return Step();
    }
    uint64_t off = Uniform(0, model_.size() - 1);
    uint8_t b = model_[off] ^ 0x5a;
    Note("self-test: corrupt byte at off=" + std::to_string(off));
    if (pwrite(fd_, &b, 1, off) != 1) return SysFail("pwrite (corrupt)");
    return 0;
  }

  int DoWrite() {
    if (opts_.max_size == 0) return 0;
    uint64_t off = PickOffset(opts_.max_size - 1);
    uint64_t len = PickLength(opts_.max_size - off);
    buf_.resize(len);
    Fill(buf_.data(), len);
    Note("pwrite off=" + std::to_string(off) + " len=" + std::to_string(len));
    uint64_t done = 0;
    while (done < len) {
      ssize_t n = pwrite(fd_, buf_.data() + done, len - done, off + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return SysFail("pwrite");
      }
      if (n == 0) {
        errno = EIO;
        return SysFail("pwrite (wrote 0 bytes)");
      }
      done += n;
    }
    if (off + len > model_.size()) model_.resize(off + len, 0);
    std::memcpy(model_.data() + off, buf_.data(), len);
    counters_.writes++;
    counters_.write_bytes += len;
    return 0;
  }

  int DoRead() {
    uint64_t size = model_.size();
    uint64_t off = PickOffset(size + 8192);
    uint64_t len = PickLength(opts_.max_size + 8192);
    Note("pread off=" + std::to_string(off) + " len=" + std::to_string(len));
    uint64_t want = off < size ? std::min(len, size - off) : 0;
    buf_.assign(len, 0xA5);
    uint64_t done = 0;
    while (done < len) {
      ssize_t n = pread(fd_, buf_.data() + done, len - done, off + done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return SysFail("pread");
      }
      if (n == 0) break;
      done += n;
    }
    if (done != want) {
      std::fprintf(stderr,
                   "datatest: MISMATCH pread(off=%" PRIu64 ", len=%" PRIu64
                   ") returned %" PRIu64 " bytes, expected %" PRIu64
                   " (file size %" PRIu64 "); first bad offset %" PRIu64
                   "; op %" PRIu64 " seed=%" PRIu64 "\n",
                   off, len, done, want, size, off + std::min(done, want),
                   op_, opts_.seed);
      PrintHistory();
      return kExitMismatch;
    }
    counters_.reads++;
    counters_.read_bytes += done;
    return done ? Compare("pread", off, buf_.data(), done) : 0;
  }

  int DoTruncate() {
    uint64_t size = model_.size();
    uint64_t nsize;
    uint64_t r = Uniform(0, 9);
    if (r < 4 && size > 0) {
      nsize = Uniform(0, size - 1);  // shrink
    } else if (r < 5) {
      nsize = PickOffset(opts_.max_size);  // near a boundary or EOF
    } else {
      nsize = Uniform(size, std::max(size, opts_.max_size));  // grow
    }
    Note("ftruncate " + std::to_string(size) + " -> " + std::to_string(nsize));
    while (ftruncate(fd_, nsize) != 0) {
      if (errno != EINTR) return SysFail("ftruncate");
    }
    model_.resize(nsize, 0);
    counters_.truncs++;
    return 0;
  }

  int DoMmapWrite() {
    uint64_t size = model_.size();
    if (size == 0) return DoWrite();
    void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) return SysFail("mmap(PROT_WRITE, MAP_SHARED)");
    auto* p = static_cast<uint8_t*>(map);
    int writes = int(Uniform(1, 3));
    std::string what = "mmap write size=" + std::to_string(size);
    for (int i = 0; i < writes; ++i) {
      uint64_t off = PickOffset(size - 1);
      uint64_t len = Uniform(0, 3) == 0 ? Uniform(1, 128 << 10)
                                        : Uniform(1, 8192);
      len = std::min(len, size - off);
      buf_.resize(len);
      Fill(buf_.data(), len);
      std::memcpy(p + off, buf_.data(), len);
      std::memcpy(model_.data() + off, buf_.data(), len);
      what += " [off=" + std::to_string(off) + " len=" + std::to_string(len) +
              "]";
      counters_.mmap_bytes += len;
    }
    bool sync = Chance(400);
    if (sync) what += " msync";
    Note(what);
    if (sync) {
      counters_.msyncs++;
      if (msync(map, size, MS_SYNC) != 0) {
        int err = errno;
        munmap(map, size);
        errno = err;
        return SysFail("msync(MS_SYNC)");
      }
    }
    if (munmap(map, size) != 0) return SysFail("munmap");
    counters_.mmap_writes++;
    return 0;
  }

  // Reads a range through a shared read-only mapping and checks it.
  int DoMmapRead() {
    uint64_t size = model_.size();
    if (size == 0) return DoRead();
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd_, 0);
    if (map == MAP_FAILED) return SysFail("mmap(PROT_READ, MAP_SHARED)");
    uint64_t off = PickOffset(size - 1);
    uint64_t len = std::min<uint64_t>(PickLength(256 << 10), size - off);
    Note("mmap read off=" + std::to_string(off) + " len=" +
         std::to_string(len));
    int rc = Compare("mmap read", off, static_cast<uint8_t*>(map) + off, len);
    if (munmap(map, size) != 0 && rc == 0) return SysFail("munmap");
    counters_.mmap_reads++;
    return rc;
  }

  int DoFsync() {
    Note("fsync");
    if (fsync(fd_) != 0) return SysFail("fsync");
    counters_.fsyncs++;
    return 0;
  }

  int DoStat() {
    Note("fstat");
    struct stat st;
    if (fstat(fd_, &st) != 0) return SysFail("fstat");
    counters_.stats++;
    if (uint64_t(st.st_size) != model_.size()) {
      return SizeMismatch("fstat", model_.size(), st.st_size);
    }
    return 0;
  }

  // Closes and reopens the file, then verifies its size and every byte.
  int Reopen() {
    Note("close+reopen+full verify size=" + std::to_string(model_.size()));
    if (close(fd_) != 0) {
      fd_ = -1;
      return SysFail("close");
    }
    fd_ = open(opts_.file.c_str(), O_RDWR);
    if (fd_ < 0) return SysFail("reopen");
    counters_.reopens++;
    struct stat st;
    if (fstat(fd_, &st) != 0) return SysFail("fstat after reopen");
    if (uint64_t(st.st_size) != model_.size()) {
      return SizeMismatch("stat after reopen", model_.size(), st.st_size);
    }
    constexpr uint64_t kChunk = 1 << 20;
    buf_.resize(kChunk);
    uint64_t off = 0;
    while (true) {
      ssize_t n = pread(fd_, buf_.data(), kChunk, off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return SysFail("pread (full verify)");
      }
      if (n == 0) break;
      if (off + n > model_.size()) {
        return SizeMismatch("full verify read past model EOF", model_.size(),
                            off + n);
      }
      int rc = Compare("full verify", off, buf_.data(), n);
      if (rc != 0) return rc;
      off += n;
    }
    if (off != model_.size()) {
      return SizeMismatch("full verify (short file)", model_.size(), off);
    }
    counters_.full_verifies++;
    return 0;
  }

  Options opts_;
  std::mt19937_64 rng_;
  std::vector<uint8_t> model_;
  std::vector<uint8_t> buf_;
  std::deque<std::string> history_;
  Counters counters_;
  double time_[kKinds] = {};
  uint64_t count_[kKinds] = {};
  int fd_ = -1;
  uint64_t op_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  CLI::App app{"stripefs-datatest: random-operation data tester for one file"};
  app.add_option("--file", opts.file, "file to create and test (truncated)")
      ->required();
  app.add_option("--ops", opts.ops, "number of operations");
  auto* seed_opt =
      app.add_option("--seed", opts.seed, "random seed (default: random)");
  app.add_option("--max-size", opts.max_size, "largest file size in bytes");
  app.add_option("--boundary", opts.boundary,
                 "stripe boundary to aim offsets at (bytes)");
  app.add_flag("!--no-mmap", opts.use_mmap, "do not use mmap");
  app.add_flag("--keep", opts.keep, "keep the file after a successful run");
  app.add_flag("-v,--verbose", opts.verbose, "progress every 10000 ops");
  app.add_option("--corrupt-at-op", opts.corrupt_at_op,
                 "self-test: corrupt one byte at this op (must then fail)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // CLI11 reports through exceptions
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitFlags;
  }
  opts.seed_given = seed_opt->count() > 0;
  if (!opts.seed_given) opts.seed = std::random_device{}() * 1000003ull +
                                    std::random_device{}();
  if (opts.boundary == 0) {
    std::fprintf(stderr, "datatest: --boundary must be > 0\n");
    return kExitFlags;
  }
  std::printf("datatest: file=%s seed=%" PRIu64 " ops=%" PRIu64
              " max_size=%" PRIu64 " mmap=%s\n",
              opts.file.c_str(), opts.seed, opts.ops, opts.max_size,
              opts.use_mmap ? "on" : "off");
  std::fflush(stdout);
  DataTester tester(opts);
  int rc = tester.Run();
  if (rc != 0) {
    std::printf("datatest: FAIL seed=%" PRIu64 " (replay with --seed %" PRIu64
                ")\n",
                opts.seed, opts.seed);
  }
  return rc;
}
