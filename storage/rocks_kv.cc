// RocksDB implementation of KvStore; the RocksDB -> absl status edge.
#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage/disk.h"
#include "storage/kv.h"

namespace stripefs::storage {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  int err = EIO;
  if (s.IsNoSpace()) err = ENOSPC;
  if (s.IsNotFound()) err = ENOENT;
  return Errno(err, absl::StrCat("rocksdb ", what, ": ", s.ToString()));
}

class RocksIter : public KvIterator {
 public:
  explicit RocksIter(rocksdb::Iterator* it) : it_(it) {}
  void Seek(std::string_view key) override {
    it_->Seek(rocksdb::Slice(key.data(), key.size()));
  }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  std::string_view key() const override {
    auto k = it_->key();
    return {k.data(), k.size()};
  }
  std::string_view value() const override {
    auto v = it_->value();
    return {v.data(), v.size()};
  }
  absl::Status status() const override {
    return FromRocks(it_->status(), "iterate");
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
};

class RocksKv : public KvStore {
 public:
  RocksKv(rocksdb::DB* db, std::unique_ptr<rocksdb::Env> env, bool syncs_log)
      : env_(std::move(env)), db_(db), syncs_log_(syncs_log) {}
  ~RocksKv() override {
    if (db_) {
      rocksdb::Status s = db_->Close();
      (void)s;  // Nothing useful to do on close failure in a destructor.
      db_.reset();  // before env_
    }
  }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(),
                                 rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "get");
    return std::optional<std::string>(std::move(value));
  }

  absl::Status Write(const WriteBatch& batch, WriteOptions options) override {
    if (read_only_.load()) return Errno(EROFS, "store is read-only");
    rocksdb::WriteBatch wb;
    for (const auto& op : batch.ops()) {
      rocksdb::Status s =
          op.is_delete ? wb.Delete(op.key) : wb.Put(op.key, op.value);
      if (!s.ok()) return FromRocks(s, "batch");
    }
    rocksdb::WriteOptions wo;
    wo.sync = options.sync && syncs_log_;
    return FromRocks(db_->Write(wo, &wb), "write");
  }

  std::unique_ptr<KvIterator> NewIterator() override {
    return std::make_unique<RocksIter>(db_->NewIterator(rocksdb::ReadOptions()));
  }

  // Group commit: a caller whose writes an already running sync may not
  // cover waits for it, then one sync covers every caller that arrived
  // meanwhile.
  absl::Status Sync() override {
    if (!syncs_log_) return absl::OkStatus();  // NoSyncDisk (test switch)
    absl::MutexLock l(&sync_mu_);
    const uint64_t ticket = ++sync_requested_;
    while (true) {
      if (sync_done_ >= ticket) return sync_result_;
      if (!sync_running_) break;
      sync_cv_.Wait(&sync_mu_);
    }
    sync_running_ = true;
    const uint64_t covers = sync_requested_;
    sync_mu_.Unlock();
    absl::Status s = FromRocks(db_->SyncWAL(), "sync");
    sync_mu_.Lock();
    sync_running_ = false;
    sync_done_ = covers;
    sync_result_ = s;
    sync_cv_.SignalAll();
    return s;
  }

  void SetReadOnly(bool ro) override { read_only_.store(ro); }

 private:
  const std::unique_ptr<rocksdb::Env> env_;  // outlives db_
  std::unique_ptr<rocksdb::DB> db_;
  const bool syncs_log_;
  std::atomic<bool> read_only_{false};
  absl::Mutex sync_mu_;
  absl::CondVar sync_cv_;
  uint64_t sync_requested_ ABSL_GUARDED_BY(sync_mu_) = 0;
  uint64_t sync_done_ ABSL_GUARDED_BY(sync_mu_) = 0;
  bool sync_running_ ABSL_GUARDED_BY(sync_mu_) = false;
  absl::Status sync_result_ ABSL_GUARDED_BY(sync_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksKv(const std::string& path,
                                                     const RocksOptions& o) {
  Disk* disk = o.disk != nullptr ? o.disk : ServerDisk();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(disk->rocks_fs());
  rocksdb::Options options;
  options.env = env.get();
  options.create_if_missing = o.create_if_missing;
  options.IncreaseParallelism(2);
  options.max_background_jobs = 2;
  options.manual_wal_flush = false;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open ", path));
  return std::unique_ptr<KvStore>(new RocksKv(db, std::move(env), disk->syncs_log()));
}

}  // namespace stripefs::storage
