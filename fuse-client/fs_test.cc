// Fs over the in-process MDS (InprocMds over an MdsCore on an in-memory
// store and fake OSTs) and in-memory objects: the filesystem's logic with no
// server, no lock service and no mount.
#include "fuse-client/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/errors.h"
#include "fuse-client/inproc_mds.h"
#include "gtest/gtest.h"
#include "mds/mds_core.h"
#include "mds/ost_pool.h"
#include "storage/kv.h"

namespace stripefs::client {
namespace {

// In-memory objects: sparse strings by (ost, oid).
class MemObjects : public ObjectIo {
 public:
  absl::StatusOr<std::string> Read(uint32_t ost, uint64_t oid, uint64_t offset,
                                   uint32_t len, const InterruptFn&) override {
    absl::MutexLock lock(&mu_);
    const std::string& o = objects_[{ost, oid}];
    if (offset >= o.size()) return std::string();
    return o.substr(offset, std::min<uint64_t>(len, o.size() - offset));
  }
  absl::Status Write(uint32_t ost, uint64_t oid, uint64_t offset,
                     const char* data, size_t len,
                     const InterruptFn&) override {
    absl::MutexLock lock(&mu_);
    std::string& o = objects_[{ost, oid}];
    if (o.size() < offset + len) o.resize(offset + len, '\0');
    o.replace(offset, len, data, len);
    return absl::OkStatus();
  }
  absl::Status Truncate(uint32_t ost, uint64_t oid, uint64_t size,
                        const InterruptFn&) override {
    absl::MutexLock lock(&mu_);
    objects_[{ost, oid}].resize(size, '\0');
    return absl::OkStatus();
  }
  absl::Status Sync(uint32_t, const std::vector<uint64_t>&,
                    const InterruptFn&) override {
    return absl::OkStatus();
  }
  uint64_t Bytes() {
    absl::MutexLock lock(&mu_);
    uint64_t n = 0;
    for (const auto& [k, v] : objects_) n += v.size();
    return n;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<uint32_t, uint64_t>, std::string> objects_
      ABSL_GUARDED_BY(mu_);
};

int Err(const absl::Status& s) { return ToErrno(s); }
template <typename T>
int Err(const absl::StatusOr<T>& r) {
  return ToErrno(r.status());
}

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = storage::NewMemKv();
    osts_ = std::make_unique<mds::FakeOstPool>(2);
    mds::MdsOptions opts;
    opts.background_threads = false;
    opts.precreate_batch = 64;
    opts.precreate_low_water = 8;
    core_ = std::make_unique<mds::MdsCore>(store_.get(), osts_.get(),
                                           RealClock(), opts);
    ASSERT_TRUE(core_->Start().ok());
    mds_ = std::make_unique<InprocMds>(core_.get());
    FsOptions fo;
    fo.io_threads = 2;
    fs_ = std::make_unique<Fs>(mds_.get(), &objects_, nullptr, fo);
  }
  void TearDown() override {
    fs_.reset();
    mds_.reset();
    if (core_ != nullptr) core_->Stop();
  }

  uint64_t Mkdir(uint64_t parent, const std::string& name,
                 const OpCtx& ctx = {}) {
    auto e = fs_->Mkdir(ctx, parent, name, S_IFDIR | 0755);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? e->attr.ino : 0;
  }
  // Creates and closes a regular file with `data`; returns its inode.
  uint64_t MakeFile(uint64_t parent, const std::string& name,
                    const std::string& data = "", const OpCtx& ctx = {}) {
    auto r = fs_->Create(ctx, parent, name, S_IFREG | 0644, O_RDWR);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return 0;
    if (!data.empty()) {
      auto w = fs_->Write(ctx, r->second, 0, data.data(), data.size());
      EXPECT_TRUE(w.ok()) << w.status();
    }
    EXPECT_TRUE(fs_->Release(ctx, r->second).ok());
    return r->first.attr.ino;
  }
  std::vector<std::string> List(uint64_t dir, bool plus = false) {
    std::vector<std::string> names;
    DirHandle* d = *fs_->OpenDir({}, dir);
    absl::Status s = fs_->ReadDir({}, dir, d, 0, plus, [&](const DirItem& i) {
      names.push_back(i.name);
      if (plus && i.name != "." && i.name != "..") {
        EXPECT_NE(i.entry, nullptr) << i.name;
      }
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    fs_->ReleaseDir(d);
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string ReadAll(uint64_t ino) {
    auto f = fs_->Open({}, ino, O_RDONLY);
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) return "";
    auto r = fs_->Read({}, *f, 0, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(fs_->Release({}, *f).ok());
    return r.ok() ? r->Flatten() : "";
  }

  static OpCtx User(uint32_t uid) {
    OpCtx c;
    c.uid = uid;
    c.gid = uid;
    return c;
  }

  MemObjects objects_;
  std::unique_ptr<storage::KvStore> store_;
  std::unique_ptr<mds::FakeOstPool> osts_;
  std::unique_ptr<mds::MdsCore> core_;
  std::unique_ptr<InprocMds> mds_;
  std::unique_ptr<Fs> fs_;
};

TEST_F(FsTest, CreateLookupGetattr) {
  auto r = fs_->Create({}, kRootIno, "a", S_IFREG | 0640, O_RDWR);
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t ino = r->first.attr.ino;
  EXPECT_TRUE(S_ISREG(r->first.attr.mode));
  EXPECT_EQ(r->first.attr.mode & 07777, 0640u);
  EXPECT_FALSE(r->first.layout.objects.empty());
  ASSERT_TRUE(fs_->Release({}, r->second).ok());

  auto e = fs_->Lookup({}, kRootIno, "a");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->attr.ino, ino);
  auto g = fs_->GetAttr({}, ino);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->attr.nlink, 1u);
  EXPECT_EQ(g->attr.size, 0u);

  EXPECT_EQ(Err(fs_->Lookup({}, kRootIno, "missing")), ENOENT);
  EXPECT_EQ(Err(fs_->GetAttr({}, 999999)), ENOENT);
  // O_EXCL on an existing name; mkdir over it.
  EXPECT_EQ(Err(fs_->Create({}, kRootIno, "a", S_IFREG | 0644,
                            O_RDWR | O_EXCL)),
            EEXIST);
  EXPECT_EQ(Err(fs_->Mkdir({}, kRootIno, "a", S_IFDIR | 0755)), EEXIST);
  // Names longer than 255 bytes never reach the MDS.
  const std::string long_name(256, 'x');
  const uint64_t lookups = mds_->RpcCounts()["Lookup"];
  EXPECT_EQ(Err(fs_->Lookup({}, kRootIno, long_name)), ENAMETOOLONG);
  EXPECT_EQ(Err(fs_->Mkdir({}, kRootIno, long_name, S_IFDIR | 0755)),
            ENAMETOOLONG);
  EXPECT_EQ(Err(fs_->Create({}, kRootIno, long_name, S_IFREG | 0644, 0)),
            ENAMETOOLONG);
  EXPECT_EQ(mds_->RpcCounts()["Lookup"], lookups);
  // 255 bytes is a name the MDS is asked about.
  EXPECT_EQ(Err(fs_->Lookup({}, kRootIno, std::string(255, 'y'))), ENOENT);
  EXPECT_EQ(mds_->RpcCounts()["Lookup"], lookups + 1);
}

TEST_F(FsTest, NoLockServiceCachesNothing) {
  uint64_t ino = MakeFile(kRootIno, "f");
  const uint64_t before = mds_->RpcCounts()["GetAttr"];
  ASSERT_TRUE(fs_->GetAttr({}, ino).ok());
  ASSERT_TRUE(fs_->GetAttr({}, ino).ok());
  EXPECT_EQ(mds_->RpcCounts()["GetAttr"], before + 2);
  EXPECT_EQ(fs_->AttrTimeout(ino), fs_->options().attr_timeout);
  EXPECT_EQ(fs_->dlm(), nullptr);
}

TEST_F(FsTest, MkdirReaddir) {
  uint64_t d = Mkdir(kRootIno, "d");
  ASSERT_NE(d, 0u);
  auto e = fs_->GetAttr({}, d);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(S_ISDIR(e->attr.mode));
  for (int i = 0; i < 5; ++i) MakeFile(d, "f" + std::to_string(i));
  Mkdir(d, "sub");
  std::vector<std::string> want = {".",  "..", "f0", "f1",
                                   "f2", "f3", "f4", "sub"};
  EXPECT_EQ(List(d), want);
  EXPECT_EQ(List(d, /*plus=*/true), want);
}

TEST_F(FsTest, ReaddirInSmallBatches) {
  FsOptions fo;
  fo.readdir_batch = 2;
  fs_ = std::make_unique<Fs>(mds_.get(), &objects_, nullptr, fo);
  uint64_t d = Mkdir(kRootIno, "d");
  for (int i = 0; i < 7; ++i) MakeFile(d, "f" + std::to_string(i));
  EXPECT_EQ(List(d).size(), 9u);
  EXPECT_GE(mds_->RpcCounts()["Readdir"], 4u);
}

TEST_F(FsTest, RenameOverExistingAndAcrossDirs) {
  uint64_t a = MakeFile(kRootIno, "a", "AAA");
  uint64_t b = MakeFile(kRootIno, "b", "BB");
  ASSERT_TRUE(fs_->Rename({}, kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(Err(fs_->Lookup({}, kRootIno, "a")), ENOENT);
  auto e = fs_->Lookup({}, kRootIno, "b");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->attr.ino, a);
  EXPECT_EQ(Err(fs_->GetAttr({}, b)), ENOENT);  // the replaced inode is gone
  EXPECT_EQ(ReadAll(a), "AAA");

  uint64_t d1 = Mkdir(kRootIno, "d1");
  uint64_t d2 = Mkdir(kRootIno, "d2");
  ASSERT_TRUE(fs_->Rename({}, kRootIno, "b", d1, "x", 0).ok());
  ASSERT_TRUE(fs_->Rename({}, d1, "x", d2, "y", 0).ok());
  EXPECT_EQ(List(d1), (std::vector<std::string>{".", ".."}));
  e = fs_->Lookup({}, d2, "y");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->attr.ino, a);
  EXPECT_EQ(Err(fs_->Rename({}, d1, "nothing", d2, "z", 0)), ENOENT);
}

TEST_F(FsTest, UnlinkRmdir) {
  uint64_t d = Mkdir(kRootIno, "d");
  MakeFile(d, "f");
  EXPECT_EQ(Err(fs_->Remove({}, kRootIno, "d", /*dir=*/true)), ENOTEMPTY);
  EXPECT_EQ(Err(fs_->Remove({}, kRootIno, "d", /*dir=*/false)), EISDIR);
  EXPECT_EQ(Err(fs_->Remove({}, d, "f", /*dir=*/true)), ENOTDIR);
  ASSERT_TRUE(fs_->Remove({}, d, "f", false).ok());
  EXPECT_EQ(Err(fs_->Lookup({}, d, "f")), ENOENT);
  ASSERT_TRUE(fs_->Remove({}, kRootIno, "d", true).ok());
  EXPECT_EQ(Err(fs_->GetAttr({}, d)), ENOENT);
  EXPECT_EQ(Err(fs_->Remove({}, kRootIno, "d", true)), ENOENT);
}

TEST_F(FsTest, LinkSymlinkReadlink) {
  uint64_t f = MakeFile(kRootIno, "f", "data");
  auto l = fs_->Link({}, f, kRootIno, "g");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->attr.ino, f);
  EXPECT_EQ(l->attr.nlink, 2u);
  ASSERT_TRUE(fs_->Remove({}, kRootIno, "f", false).ok());
  EXPECT_EQ(ReadAll(f), "data");
  EXPECT_EQ(Err(fs_->Link({}, f, kRootIno, "g")), EEXIST);

  auto s = fs_->Symlink({}, kRootIno, "s", "g");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(S_ISLNK(s->attr.mode));
  auto t = fs_->Readlink({}, s->attr.ino);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "g");
  EXPECT_EQ(Err(fs_->Readlink({}, f)), EINVAL);
  EXPECT_EQ(Err(fs_->Symlink({}, kRootIno, "long", std::string(4096, 'x'))),
            ENAMETOOLONG);
}

TEST_F(FsTest, WriteReadAndSizeReports) {
  auto r = fs_->Create({}, kRootIno, "f", S_IFREG | 0644, O_RDWR);
  ASSERT_TRUE(r.ok());
  OpenFile* f = r->second;
  const uint64_t ino = r->first.attr.ino;
  const std::string data(3 * 1024 * 1024 + 17, 'z');
  ASSERT_TRUE(fs_->Write({}, f, 0, data.data(), data.size()).ok());
  // Before the flush only this mount knows the size (overlaid).
  EXPECT_EQ(fs_->GetAttr({}, ino)->attr.size, data.size());
  EXPECT_EQ(core_->GetAttr(ino)->size, 0u);
  ASSERT_TRUE(fs_->Flush({}, f).ok());
  EXPECT_EQ(core_->GetAttr(ino)->size, data.size());
  auto rd = fs_->Read({}, f, 1024, 10);
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(rd->Flatten(), "zzzzzzzzzz");
  ASSERT_TRUE(fs_->Fsync({}, f).ok());
  ASSERT_TRUE(fs_->Release({}, f).ok());
  EXPECT_EQ(objects_.Bytes(), data.size());

  // O_TRUNC drops the size at the MDS and the data on the objects.
  auto o = fs_->Open({}, ino, O_RDWR | O_TRUNC);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(objects_.Bytes(), 0u);
  ASSERT_TRUE(fs_->Release({}, *o).ok());
  EXPECT_EQ(fs_->GetAttr({}, ino)->attr.size, 0u);
}

TEST_F(FsTest, SetattrChmodAndTruncate) {
  uint64_t ino = MakeFile(kRootIno, "f", std::string(10000, 'q'));
  SetAttrArgs chmod;
  chmod.valid = kSetMode;
  chmod.mode = 0600;
  auto e = fs_->SetAttr({}, ino, chmod);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->attr.mode & 07777, 0600u);
  EXPECT_TRUE(S_ISREG(e->attr.mode));

  SetAttrArgs cut;
  cut.valid = kSetSize;
  cut.size = 100;
  e = fs_->SetAttr({}, ino, cut);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->attr.size, 100u);
  EXPECT_EQ(core_->GetAttr(ino)->size, 100u);
  EXPECT_EQ(objects_.Bytes(), 100u);
  EXPECT_EQ(ReadAll(ino), std::string(100, 'q'));

  // Growing through an fd: the size at the MDS, zeros to read.
  auto f = fs_->Open({}, ino, O_RDWR);
  ASSERT_TRUE(f.ok());
  SetAttrArgs grow;
  grow.valid = kSetSize;
  grow.size = 200;
  grow.file = *f;
  e = fs_->SetAttr({}, ino, grow);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->attr.size, 200u);
  ASSERT_TRUE(fs_->Release({}, *f).ok());
  EXPECT_EQ(ReadAll(ino), std::string(100, 'q') + std::string(100, '\0'));

  uint64_t d = Mkdir(kRootIno, "d");
  EXPECT_EQ(Err(fs_->SetAttr({}, d, cut)), EISDIR);
}

TEST_F(FsTest, Xattrs) {
  uint64_t ino = MakeFile(kRootIno, "f");
  ASSERT_TRUE(fs_->SetXattr({}, ino, "user.k", "v1", 0).ok());
  EXPECT_EQ(*fs_->GetXattr({}, ino, "user.k"), "v1");
  EXPECT_EQ(Err(fs_->SetXattr({}, ino, "user.k", "v2", mds::kXattrCreate)),
            EEXIST);
  EXPECT_EQ(Err(fs_->SetXattr({}, ino, "user.n", "v", mds::kXattrReplace)),
            ENODATA);
  ASSERT_TRUE(fs_->SetXattr({}, ino, "user.j", "", 0).ok());
  auto names = fs_->ListXattr({}, ino);
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"user.j", "user.k"}));
  ASSERT_TRUE(fs_->RemoveXattr({}, ino, "user.k").ok());
  EXPECT_EQ(Err(fs_->GetXattr({}, ino, "user.k")), ENODATA);
  EXPECT_EQ(Err(fs_->RemoveXattr({}, ino, "user.k")), ENODATA);

  // The virtual attributes are the client's.
  auto layout = fs_->GetXattr({}, ino, "user.stripefs.layout");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_NE(layout->find("stripe_count"), std::string::npos) << *layout;
  EXPECT_EQ(Err(fs_->SetXattr({}, ino, "user.stripefs.other", "x", 0)), EPERM);
  // A count past int32 is refused, not wrapped into a valid-looking one
  // (2^32 + 1 would wrap to 1); a valid one is taken.
  EXPECT_EQ(Err(fs_->SetXattr({}, kRootIno, "user.stripefs.layout",
                              "stripe_count=4294967297", 0)),
            EINVAL);
  ASSERT_TRUE(fs_->SetXattr({}, kRootIno, "user.stripefs.layout",
                            "stripe_count=2", 0)
                  .ok());
  auto stats = fs_->GetXattr({}, ino, "user.stripefs.stats");
  ASSERT_TRUE(stats.ok());
  EXPECT_NE(stats->find("mds GetXattr "), std::string::npos) << *stats;
}

TEST_F(FsTest, AnotherUserIsDenied) {
  const OpCtx alice = User(1000);
  const OpCtx bob = User(1001);
  uint64_t home = Mkdir(kRootIno, "home");
  SetAttrArgs open_up;
  open_up.valid = kSetMode;
  open_up.mode = 0777;
  ASSERT_TRUE(fs_->SetAttr({}, home, open_up).ok());
  uint64_t priv = Mkdir(home, "alice", alice);
  SetAttrArgs close_down;
  close_down.valid = kSetMode;
  close_down.mode = 0700;
  ASSERT_TRUE(fs_->SetAttr(alice, priv, close_down).ok());
  uint64_t f = MakeFile(home, "note", "hi", alice);

  EXPECT_EQ(Err(fs_->Lookup(bob, priv, "x")), EACCES);
  EXPECT_EQ(Err(fs_->Create(bob, priv, "x", S_IFREG | 0644, O_RDWR)), EACCES);
  EXPECT_EQ(Err(fs_->Open(bob, f, O_RDWR)), EACCES);
  EXPECT_EQ(Err(fs_->Access(bob, f, W_OK)), EACCES);
  EXPECT_TRUE(fs_->Access(bob, f, R_OK).ok());
  // Only the owner changes the mode; a truncate without an fd asks W_OK.
  EXPECT_EQ(Err(fs_->SetAttr(bob, f, open_up)), EPERM);
  SetAttrArgs cut;
  cut.valid = kSetSize;
  cut.size = 0;
  EXPECT_EQ(Err(fs_->SetAttr(bob, f, cut)), EACCES);
  EXPECT_EQ(ReadAll(f), "hi");
  EXPECT_EQ(Err(fs_->SetXattr(bob, f, "user.k", "v", 0)), EACCES);
  EXPECT_TRUE(fs_->SetXattr(alice, f, "user.k", "v", 0).ok());
}

TEST_F(FsTest, MknodAndStatfs) {
  auto e = fs_->Mknod({}, kRootIno, "fifo", S_IFIFO | 0644, 0);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(S_ISFIFO(e->attr.mode));
  auto st = fs_->Statfs({});
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->files, 0u);
  EXPECT_TRUE(fs_->FsyncDir({}).ok());
}

TEST_F(FsTest, EvictedFilesFailWithEio) {
  auto r = fs_->Create({}, kRootIno, "f", S_IFREG | 0644, O_RDWR);
  ASSERT_TRUE(r.ok());
  OpenFile* f = r->second;
  ASSERT_TRUE(fs_->Write({}, f, 0, "abc", 3).ok());
  EXPECT_EQ(fs_->Evicted(0), 1u);
  EXPECT_EQ(fs_->BrokenFiles(), 1u);
  EXPECT_EQ(Err(fs_->Write({}, f, 3, "d", 1)), EIO);
  EXPECT_EQ(Err(fs_->Read({}, f, 0, 3)), EIO);
  EXPECT_EQ(Err(fs_->Fsync({}, f)), EIO);
  // Release only forgets it; a new open works.
  EXPECT_TRUE(fs_->Release({}, f).ok());
  EXPECT_EQ(fs_->BrokenFiles(), 0u);
  auto o = fs_->Open({}, r->first.attr.ino, O_RDWR);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(fs_->Release({}, *o).ok());
}

TEST_F(FsTest, HandleDroppedByTheMdsBreaksTheFile) {
  auto r = fs_->Create({}, kRootIno, "f", S_IFREG | 0644, O_RDWR);
  ASSERT_TRUE(r.ok());
  // The MDS evicts this session (its lease ran out): the handle is gone.
  ASSERT_TRUE(core_->EvictClient(1).ok());
  EXPECT_EQ(Err(fs_->Release({}, r->second)), EIO);
}

TEST_F(FsTest, ReopenAllKeepsHandlesTheMdsStillHas) {
  auto r = fs_->Create({}, kRootIno, "f", S_IFREG | 0644, O_RDWR);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(fs_->ReopenAll(/*evicted=*/false).ok());
  EXPECT_EQ(fs_->BrokenFiles(), 0u);
  ASSERT_TRUE(fs_->Write({}, r->second, 0, "x", 1).ok());
  // An evicted mount with unsynced writes cannot vouch for them.
  ASSERT_TRUE(fs_->ReopenAll(/*evicted=*/true).ok());
  EXPECT_EQ(fs_->BrokenFiles(), 1u);
  EXPECT_TRUE(fs_->Release({}, r->second).ok());
}

}  // namespace
}  // namespace stripefs::client
