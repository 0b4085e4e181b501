#include <map>

#include "absl/synchronization/mutex.h"
#include "common/errors.h"
#include "storage/kv.h"

namespace stripefs::storage {

void AppendBE64(std::string* dst, uint64_t v) {
  for (int i = 7; i >= 0; --i) dst->push_back(static_cast<char>(v >> (i * 8)));
}
void AppendBE32(std::string* dst, uint32_t v) {
  for (int i = 3; i >= 0; --i) dst->push_back(static_cast<char>(v >> (i * 8)));
}
uint64_t DecodeBE64(std::string_view src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(src[i]);
  return v;
}
uint32_t DecodeBE32(std::string_view src) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(src[i]);
  return v;
}

namespace {

// In-memory fake: a std::map under a mutex. Iterators work on a snapshot.
class MemKv : public KvStore {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    absl::ReaderMutexLock l(&mu_);
    auto it = map_.find(std::string(key));
    if (it == map_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::Status Write(const WriteBatch& batch, WriteOptions) override {
    absl::MutexLock l(&mu_);
    if (read_only_) return Errno(EROFS, "store is read-only");
    for (const auto& op : batch.ops()) {
      if (op.is_delete) {
        map_.erase(op.key);
      } else {
        map_[op.key] = op.value;
      }
    }
    return absl::OkStatus();
  }
  std::unique_ptr<KvIterator> NewIterator() override {
    absl::ReaderMutexLock l(&mu_);
    return std::make_unique<Iter>(map_);
  }
  absl::Status Sync() override { return absl::OkStatus(); }
  void SetReadOnly(bool ro) override {
    absl::MutexLock l(&mu_);
    read_only_ = ro;
  }

 private:
  class Iter : public KvIterator {
   public:
    explicit Iter(std::map<std::string, std::string> snap)
        : snap_(std::move(snap)), it_(snap_.end()) {}
    void Seek(std::string_view key) override {
      it_ = snap_.lower_bound(std::string(key));
    }
    bool Valid() const override { return it_ != snap_.end(); }
    void Next() override { ++it_; }
    std::string_view key() const override { return it_->first; }
    std::string_view value() const override { return it_->second; }
    absl::Status status() const override { return absl::OkStatus(); }

   private:
    std::map<std::string, std::string> snap_;
    std::map<std::string, std::string>::const_iterator it_;
  };

  absl::Mutex mu_;
  std::map<std::string, std::string> map_ ABSL_GUARDED_BY(mu_);
  bool read_only_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<KvStore> NewMemKv() { return std::make_unique<MemKv>(); }

}  // namespace stripefs::storage
