// RocksDB implementation of KvStore; the RocksDB -> absl status edge.
#include <atomic>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
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
  explicit RocksKv(rocksdb::DB* db) : db_(db) {}
  ~RocksKv() override {
    if (db_) {
      rocksdb::Status s = db_->Close();
      (void)s;  // Nothing useful to do on close failure in a destructor.
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
    wo.sync = options.sync;
    return FromRocks(db_->Write(wo, &wb), "write");
  }

  std::unique_ptr<KvIterator> NewIterator() override {
    return std::make_unique<RocksIter>(db_->NewIterator(rocksdb::ReadOptions()));
  }

  absl::Status Sync() override { return FromRocks(db_->SyncWAL(), "sync"); }

  void SetReadOnly(bool ro) override { read_only_.store(ro); }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<bool> read_only_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<KvStore>> OpenRocksKv(const std::string& path,
                                                     const RocksOptions& o) {
  rocksdb::Options options;
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
  return std::unique_ptr<KvStore>(new RocksKv(db));
}

}  // namespace stripefs::storage
