// stripefs fsck's run: the calls to the servers and their order (the
// comparison is cli/fsck_check.cc). Besides cli/server_status.cc the only
// CLI file that sees gRPC types.
//
// Order (objects move one way through the MDS: pool -> file -> destroy
// queue -> destroyed, see mds/mds_core_fsck.cc):
//  1. the MDS's FsckState: per OST the horizon (highest id it has had)
//     and the reserved ranges (pools). Objects above the horizon are left
//     alone: a create running meanwhile takes ids from the pools read here
//     or precreates ids above the horizon.
//  2. every OSS's objects (ListObjects), then
//  3. the MDS's references (ListObjectRefs: inodes, then the destroy
//     queue). An object at or below the horizon that a file references was
//     on its OST before step 2 and stays until the file lets it go, so
//     step 2 saw it; an object that left a file meanwhile is found in the
//     destroy queue, or is gone from its OST.
//  4. every finding is checked once more at its OSS (and a wrong size at
//     the MDS): an orphan destroyed through the queue meanwhile, or a size
//     that changed, is dropped.
//
// Repair destroys orphans directly at their OSS (Destroy is idempotent):
// an orphan is in no MDS record and at or below the horizon outside the
// pools, so the MDS can never hand it out (new files get pooled ids or
// ids above the horizon) and has nothing to update; a crash of fsck in
// the middle leaves orphans the next run finds again.
#include "cli/fsck.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/config.h"
#include "cli/fsck_check.h"
#include "common/errors.h"
#include "common/version.h"

#if STRIPEFS_PROTO_MAX >= 2
#include "rpc/channel.h"
#include "rpc/proto/mds.grpc.pb.h"
#include "rpc/proto/mds_v2.grpc.pb.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "rpc/proto/oss_v2.grpc.pb.h"
#include "rpc/status.h"
#endif

namespace stripefs::cli {

#if STRIPEFS_PROTO_MAX < 2
int RunFsck(const FsckOptions&) {
  std::fprintf(stderr, "stripefs: fsck needs release 1.1.0 or later\n");
  return kFsckError;
}
#else
namespace {

void Progress(const std::string& line) {
  std::fprintf(stderr, "fsck: %s\n", line.c_str());
}

// $STRIPEFS_TEST_FSCK_PAUSE_MS=N (tests; unset: no pause): sleeps N ms
// between the steps, so that changes running meanwhile fall between them
// (tests/e2e/test_fsck.py checks that none is reported).
void TestPause() {
  static const int ms = [] {
    const char* v = std::getenv("STRIPEFS_TEST_FSCK_PAUSE_MS");
    int n = 0;
    return v != nullptr && absl::SimpleAtoi(v, &n) && n > 0 ? n : 0;
  }();
  if (ms > 0) absl::SleepFor(absl::Milliseconds(ms));
}

struct Server {
  std::string target;
  std::string address;
  uint32_t index = 0;
};

// A failed call as a message naming the server; UNIMPLEMENTED means a
// server that does not serve fsck (release N).
absl::Status CallError(const Server& s, const char* what,
                       const grpc::Status& gs) {
  if (gs.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return Errno(EPROTO, absl::StrCat(s.target, " at ", s.address,
                                      " does not serve fsck (release 1.0.0?); "
                                      "upgrade it to ",
                                      kRelease));
  }
  absl::Status st = rpc::FromGrpc(gs);
  if (gs.error_code() == grpc::StatusCode::UNAVAILABLE ||
      gs.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::Status(
        st.code(), absl::StrCat("cannot reach ", s.target, " at ", s.address,
                                " (is it running?): ", st.message()));
  }
  return absl::Status(st.code(), absl::StrCat(what, " on ", s.target, " at ",
                                              s.address, ": ", st.message()));
}

class Checker {
 public:
  Checker(const FsckOptions& o, Server mds, std::vector<Server> osses)
      : options_(o), mds_(std::move(mds)), osses_(std::move(osses)) {
    mds_v2_ = rpc::MdsV2::NewStub(rpc::MakeChannel(mds_.address));
    mds_v1_ = rpc::Mds::NewStub(rpc::MakeChannel(mds_.address));
    for (const Server& s : osses_) {
      auto ch = rpc::MakeChannel(s.address);
      oss_v1_[s.index] = rpc::Oss::NewStub(ch);
      oss_v2_[s.index] = rpc::OssV2::NewStub(ch);
    }
    client_id_ = std::random_device{}() * 1000003ull + std::random_device{}();
  }

  absl::StatusOr<std::vector<FsckOstView>> ReadState();
  absl::Status ListOst(const Server& s, FsckOstView* view);
  absl::StatusOr<std::vector<FsckRefView>> ListRefs();
  absl::Status Recheck(FsckResult* r);
  absl::StatusOr<uint64_t> Repair(const FsckResult& r);

  const std::vector<Server>& osses() const { return osses_; }

 private:
  // Size of an object now; nullopt when it does not exist.
  absl::StatusOr<std::optional<uint64_t>> ObjectSize(uint32_t ost,
                                                     uint64_t oid);
  const Server* Oss(uint32_t ost) const {
    for (const Server& s : osses_) {
      if (s.index == ost) return &s;
    }
    return nullptr;
  }

  const FsckOptions options_;
  const Server mds_;
  const std::vector<Server> osses_;
  std::unique_ptr<rpc::MdsV2::Stub> mds_v2_;
  std::unique_ptr<rpc::Mds::Stub> mds_v1_;
  std::map<uint32_t, std::unique_ptr<rpc::Oss::Stub>> oss_v1_;
  std::map<uint32_t, std::unique_ptr<rpc::OssV2::Stub>> oss_v2_;
  uint64_t client_id_ = 0;
  uint64_t xid_ = 0;
};

absl::StatusOr<std::vector<FsckOstView>> Checker::ReadState() {
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx);
  rpc::FsckStateRequest req;
  rpc::FsckStateReply reply;
  grpc::Status gs = mds_v2_->FsckState(&ctx, req, &reply);
  if (!gs.ok()) return CallError(mds_, "reading the object state", gs);
  std::map<uint32_t, FsckOstView> views;
  for (const Server& s : osses_) views[s.index].ost = s.index;
  for (const rpc::FsckOstState& o : reply.osts()) {
    FsckOstView& v = views[o.ost()];
    v.ost = o.ost();
    v.horizon = o.horizon();
    for (const rpc::FsckOidRange& r : o.reserved()) {
      v.reserved.push_back({r.first(), r.end()});
    }
  }
  std::vector<FsckOstView> out;
  for (auto& [idx, v] : views) out.push_back(std::move(v));
  return out;
}

absl::Status Checker::ListOst(const Server& s, FsckOstView* view) {
  uint64_t after = 0;
  for (int page = 1;; ++page) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::ListObjectsRequest req;
    req.set_after_oid(after);
    req.set_max_objects(static_cast<uint32_t>(options_.page));
    rpc::ListObjectsReply reply;
    grpc::Status gs = oss_v2_[s.index]->ListObjects(&ctx, req, &reply);
    if (!gs.ok()) return CallError(s, "listing objects", gs);
    for (const rpc::ListedObject& o : reply.objects()) {
      view->objects.push_back({o.oid(), o.size()});
      after = o.oid();
    }
    if (reply.done() || reply.objects().empty()) break;
    if (page % 16 == 0) {
      Progress(absl::StrCat(s.target, ": ", view->objects.size(),
                            " objects scanned"));
    }
  }
  Progress(
      absl::StrCat(s.target, ": ", view->objects.size(), " objects scanned"));
  return absl::OkStatus();
}

FsckRefView::Kind FromProto(rpc::FsckObjectRef::Kind k) {
  switch (k) {
    case rpc::FsckObjectRef::UNLINKED_OPEN:
      return FsckRefView::Kind::kUnlinkedOpen;
    case rpc::FsckObjectRef::DESTROY_QUEUED:
      return FsckRefView::Kind::kDestroyQueued;
    default:
      return FsckRefView::Kind::kFile;
  }
}

absl::StatusOr<std::vector<FsckRefView>> Checker::ListRefs() {
  std::vector<FsckRefView> out;
  std::string after;
  for (int page = 1;; ++page) {
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx);
    rpc::ListObjectRefsRequest req;
    req.set_after(after);
    req.set_max_refs(static_cast<uint32_t>(options_.page));
    rpc::ListObjectRefsReply reply;
    grpc::Status gs = mds_v2_->ListObjectRefs(&ctx, req, &reply);
    if (!gs.ok()) return CallError(mds_, "listing object references", gs);
    for (const rpc::FsckObjectRef& r : reply.refs()) {
      FsckRefView v;
      v.kind = FromProto(r.kind());
      v.ost = r.ost();
      v.oid = r.oid();
      v.ino = r.ino();
      v.file_size = r.file_size();
      v.stripe_size = r.stripe_size();
      v.stripe = r.stripe();
      v.stripe_count = r.stripe_count();
      v.open_for_write = r.open_for_write();
      out.push_back(v);
    }
    if (reply.next().empty()) break;
    after = reply.next();
    if (page % 16 == 0) {
      Progress(absl::StrCat(mds_.target, ": ", out.size(),
                            " object references scanned"));
    }
  }
  Progress(absl::StrCat(mds_.target, ": ", out.size(),
                        " object references scanned"));
  return out;
}

absl::StatusOr<std::optional<uint64_t>> Checker::ObjectSize(uint32_t ost,
                                                            uint64_t oid) {
  const Server* s = Oss(ost);
  if (s == nullptr) return std::optional<uint64_t>();
  grpc::ClientContext ctx;
  rpc::SetDeadline(ctx);
  rpc::ObjAttrRequest req;
  req.set_oid(oid);
  rpc::ObjAttrReply reply;
  grpc::Status gs = oss_v1_[ost]->ObjAttr(&ctx, req, &reply);
  if (gs.ok()) return std::optional<uint64_t>(reply.size());
  absl::Status st = rpc::FromGrpc(gs);
  if (ToErrno(st) == ENOENT) return std::optional<uint64_t>();
  return CallError(*s, "reading an object's size", gs);
}

absl::Status Checker::Recheck(FsckResult* r) {
  std::vector<FsckFinding> kept;
  for (const FsckFinding& f : r->findings) {
    absl::StatusOr<std::optional<uint64_t>> size = ObjectSize(f.ost, f.oid);
    if (!size.ok()) return size.status();
    bool still = true;
    switch (f.problem) {
      case FsckProblem::kOrphan:  // destroyed through the queue meanwhile
        still = size->has_value();
        break;
      case FsckProblem::kMissing:
        still = !size->has_value();
        break;
      case FsckProblem::kWrongSize: {
        still = size->has_value() && **size > f.expected_size;
        if (!still) break;
        grpc::ClientContext ctx;
        rpc::SetDeadline(ctx);
        rpc::GetAttrRequest req;
        req.set_ino(f.ino);
        rpc::Entry e;
        grpc::Status gs = mds_v1_->GetAttr(&ctx, req, &e);
        if (!gs.ok() && ToErrno(rpc::FromGrpc(gs)) != ENOENT) {
          return CallError(mds_, "reading a file's size", gs);
        }
        still = gs.ok() && e.attr().size() == f.file_size;
        break;
      }
      case FsckProblem::kShared:
        break;
    }
    if (still) kept.push_back(f);
  }
  r->findings = std::move(kept);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Checker::Repair(const FsckResult& r) {
  std::map<uint32_t, std::vector<uint64_t>> orphans;
  for (const FsckFinding& f : r.findings) {
    if (f.problem == FsckProblem::kOrphan) orphans[f.ost].push_back(f.oid);
  }
  uint64_t destroyed = 0;
  for (const auto& [ost, oids] : orphans) {
    const Server* s = Oss(ost);
    if (s == nullptr) continue;
    // Small batches: the OSS locks each object of a batch this small.
    constexpr size_t kBatch = 64;
    for (size_t i = 0; i < oids.size(); i += kBatch) {
      grpc::ClientContext ctx;
      rpc::SetDeadline(ctx);
      rpc::DestroyRequest req;
      req.mutable_hdr()->set_client_id(client_id_);
      req.mutable_hdr()->set_xid(++xid_);
      const size_t end = std::min(oids.size(), i + kBatch);
      for (size_t j = i; j < end; ++j) req.add_oids(oids[j]);
      rpc::Empty reply;
      grpc::Status gs = oss_v1_[ost]->Destroy(&ctx, req, &reply);
      if (!gs.ok()) return CallError(*s, "destroying orphans", gs);
      destroyed += end - i;
      Progress(absl::StrCat(s->target, ": ", destroyed, " orphans destroyed"));
    }
  }
  return destroyed;
}

// The MDS and the OSSs of the cluster home.
absl::StatusOr<std::pair<Server, std::vector<Server>>> Servers(
    const std::string& home) {
  absl::StatusOr<ClusterConfig> config =
      LoadConfig(HomePaths(home).ConfigFile());
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        absl::StrCat("no cluster in ", home, ": ", config.status().message()));
  }
  const ServerConfig* mds = config->Mds();
  if (mds == nullptr) return Errno(EINVAL, "cluster.json names no MDS");
  std::vector<Server> osses;
  for (const ServerConfig* o : config->Osses()) {
    Server s{o->target, o->address, 0};
    if (!o->target.starts_with("ost") ||
        !absl::SimpleAtoi(o->target.substr(3), &s.index)) {
      return Errno(EINVAL, absl::StrCat("unexpected OSS target ", o->target));
    }
    osses.push_back(std::move(s));
  }
  return std::make_pair(Server{mds->target, mds->address, 0}, std::move(osses));
}

int Error(const absl::Status& s) {
  std::fprintf(stderr, "stripefs: fsck: %s\n",
               std::string(s.message()).c_str());
  return kFsckError;
}

}  // namespace

int RunFsck(const FsckOptions& options) {
  auto servers = Servers(options.home);
  if (!servers.ok()) return Error(servers.status());
  Checker checker(options, servers->first, servers->second);
  absl::StatusOr<std::vector<FsckOstView>> views = checker.ReadState();
  if (!views.ok()) return Error(views.status());
  for (FsckOstView& v : *views) {
    const Server* s = nullptr;
    for (const Server& o : checker.osses()) {
      if (o.index == v.ost) s = &o;
    }
    if (s == nullptr) {
      return Error(Errno(ENOENT, absl::StrCat("the MDS has ost", v.ost,
                                              ", cluster.json does not")));
    }
    TestPause();
    if (absl::Status st = checker.ListOst(*s, &v); !st.ok()) return Error(st);
  }
  TestPause();
  absl::StatusOr<std::vector<FsckRefView>> refs = checker.ListRefs();
  if (!refs.ok()) return Error(refs.status());
  TestPause();
  FsckResult result = CompareObjects(*views, *refs);
  if (absl::Status st = checker.Recheck(&result); !st.ok()) return Error(st);
  for (const FsckFinding& f : result.findings) {
    std::printf("%s\n", FormatFinding(f).c_str());
  }
  uint64_t repaired = 0;
  if (options.repair) {
    absl::StatusOr<uint64_t> n = checker.Repair(result);
    if (!n.ok()) return Error(n.status());
    repaired = *n;
  }
  std::fputs(FormatSummary(result, repaired).c_str(), stdout);
  std::fflush(stdout);
  return FsckExitCode(result, repaired);
}
#endif

}  // namespace stripefs::cli
