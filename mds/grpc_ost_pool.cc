// OstPool over gRPC: one channel and stub per OST, a Connect handshake before
// the first call and after any transport error.
#include <atomic>
#include <cerrno>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "dlm/active_watch.h"
#include "mds/ost_pool.h"
#include "rpc/channel.h"
#include "rpc/handshake.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "rpc/status.h"
#include "spdlog/spdlog.h"

namespace stripefs::mds {
namespace {

constexpr absl::Duration kConnectDeadline = absl::Seconds(5);
constexpr absl::Duration kCallDeadline = absl::Seconds(30);

class GrpcOstPool : public OstPool {
 public:
  GrpcOstPool(std::vector<OstTarget> targets, uint64_t client_id)
      : targets_(std::move(targets)), client_id_(client_id) {
    for (const auto& t : targets_) {
      auto conn = std::make_unique<Conn>();
      conn->stub = rpc::Oss::NewStub(rpc::MakeChannel(t.address));
      conns_[t.index] = std::move(conn);
    }
  }

  ~GrpcOstPool() override { StopWatching(); }

  const std::vector<OstTarget>& Targets() const override { return targets_; }

  void WatchActive(dlm::DlmClient* dlm) override {
    if (dlm == nullptr) return;
    for (const auto& t : targets_) {
      const uint32_t ost = t.index;
      Conn* c = conns_.at(ost).get();
      auto w = dlm::ActiveWatch::Start(
          dlm, absl::StrCat("ost", ost),
          {.pause = [c] { Pause(*c); },
           .resume = [this, c, ost](bool) -> absl::Status {
             {
               absl::MutexLock l(&c->mu);
               c->connected = false;  // handshake with the next instance
             }
             if (auto s = Connected(ost); !s.ok()) return s.status();
             absl::MutexLock l(&c->gate_mu);
             c->paused = false;
             return absl::OkStatus();
           }});
      if (!w.ok()) {
        spdlog::error("ost{}: cannot watch its active lock: {}", ost,
                      w.status().ToString());
        continue;
      }
      watches_.push_back(std::move(*w));
    }
  }

  void StopWatching() override {
    for (auto& w : watches_) w->Stop();
  }

  absl::StatusOr<ObjectRange> Precreate(uint32_t ost, uint32_t count,
                                        absl::Duration deadline) override {
    GatePass pass(this, ost, deadline);
    if (!pass.status().ok()) return pass.status();
    auto c = Connected(ost);
    if (!c.ok()) return c.status();
    rpc::PrecreateRequest req;
    FillHeader(req.mutable_hdr());
    req.set_count(count);
    rpc::PrecreateReply reply;
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, deadline);
    absl::Status s = Done(ost, (*c)->Precreate(&ctx, req, &reply));
    if (!s.ok()) return s;
    if (reply.count() == 0) return Errno(EIO, "OST precreated no objects");
    return ObjectRange{reply.first_oid(), reply.count()};
  }

  absl::Status Destroy(uint32_t ost,
                       const std::vector<uint64_t>& oids) override {
    GatePass pass(this, ost, kCallDeadline);
    if (!pass.status().ok()) return pass.status();
    auto c = Connected(ost);
    if (!c.ok()) return c.status();
    rpc::DestroyRequest req;
    FillHeader(req.mutable_hdr());
    for (uint64_t oid : oids) req.add_oids(oid);
    rpc::Empty reply;
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, kCallDeadline);
    return Done(ost, (*c)->Destroy(&ctx, req, &reply));
  }

  absl::StatusOr<OstStatfs> Statfs(uint32_t ost) override {
    GatePass pass(this, ost, absl::Seconds(10));
    if (!pass.status().ok()) return pass.status();
    auto c = Connected(ost);
    if (!c.ok()) return c.status();
    rpc::OssStatfsRequest req;
    rpc::OssStatfsReply reply;
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, absl::Seconds(10));
    absl::Status s = Done(ost, (*c)->Statfs(&ctx, req, &reply));
    if (!s.ok()) return s;
    return OstStatfs{reply.total_bytes(), reply.free_bytes(),
                     reply.avail_bytes(), reply.objects()};
  }

 private:
  struct Conn {
    std::unique_ptr<rpc::Oss::Stub> stub;
    absl::Mutex mu;
    bool connected ABSL_GUARDED_BY(mu) = false;
    // The OST's gate (controlled failover): closed while its server stops.
    absl::Mutex gate_mu;
    bool paused ABSL_GUARDED_BY(gate_mu) = false;
    int in_flight ABSL_GUARDED_BY(gate_mu) = 0;
  };

  // Admits one call to an OST, waiting up to `wait` while it is paused.
  class GatePass {
   public:
    GatePass(GrpcOstPool* pool, uint32_t ost, absl::Duration wait) {
      auto it = pool->conns_.find(ost);
      if (it == pool->conns_.end()) return;  // Connected() reports it
      Conn* c = it->second.get();
      absl::MutexLock l(&c->gate_mu);
      auto open = [c]() ABSL_SHARED_LOCKS_REQUIRED(c->gate_mu) {
        return !c->paused;
      };
      if (!c->gate_mu.AwaitWithTimeout(absl::Condition(&open), wait)) {
        status_ = Errno(EAGAIN, absl::StrCat("ost", ost,
                                             " is failing over; try again"));
        return;
      }
      ++c->in_flight;
      conn_ = c;
    }
    ~GatePass() {
      if (conn_ == nullptr) return;
      absl::MutexLock l(&conn_->gate_mu);
      --conn_->in_flight;
    }
    const absl::Status& status() const { return status_; }

   private:
    Conn* conn_ = nullptr;
    absl::Status status_;
  };

  // Closes the gate, then waits (bounded) for the calls in flight.
  static void Pause(Conn& c) {
    absl::MutexLock l(&c.gate_mu);
    c.paused = true;
    auto idle = [&c]() ABSL_SHARED_LOCKS_REQUIRED(c.gate_mu) {
      return c.in_flight == 0;
    };
    if (!c.gate_mu.AwaitWithTimeout(absl::Condition(&idle),
                                    absl::Seconds(20))) {
      spdlog::warn("{} calls to a stopping OST still in flight after 20s",
                   c.in_flight);
    }
  }

  void FillHeader(rpc::ReqHeader* hdr) {
    hdr->set_client_id(client_id_);
    hdr->set_xid(next_xid_.fetch_add(1));
  }

  // The stub of `ost`, after a successful handshake.
  absl::StatusOr<rpc::Oss::Stub*> Connected(uint32_t ost) {
    auto it = conns_.find(ost);
    if (it == conns_.end()) {
      return Errno(EINVAL, absl::StrCat("unknown OST index ", ost));
    }
    Conn& c = *it->second;
    absl::MutexLock l(&c.mu);
    if (c.connected) return c.stub.get();
    rpc::ConnectRequest req = rpc::MakeConnectRequest(
        client_id_, "mds", absl::StrCat("mds:", getpid()));
    rpc::ConnectReply reply;
    grpc::ClientContext ctx;
    rpc::SetDeadline(ctx, kConnectDeadline);
    absl::Status s = rpc::FromGrpc(c.stub->Connect(&ctx, req, &reply));
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("connect to ost", ost, ": ",
                                                  s.message()));
    }
    spdlog::info("connected to {} (release {}, proto {})", reply.target(),
                 reply.release(), reply.proto());
    c.connected = true;
    return c.stub.get();
  }

  // Converts a call result; a transport failure forces a new handshake.
  absl::Status Done(uint32_t ost, const grpc::Status& gs) {
    absl::Status s = rpc::FromGrpc(gs);
    if (gs.error_code() == grpc::StatusCode::UNAVAILABLE ||
        gs.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      Conn& c = *conns_.at(ost);
      absl::MutexLock l(&c.mu);
      c.connected = false;
    }
    return s;
  }

  const std::vector<OstTarget> targets_;
  const uint64_t client_id_;
  std::map<uint32_t, std::unique_ptr<Conn>> conns_;  // fixed after ctor
  std::atomic<uint64_t> next_xid_{1};
  std::vector<std::unique_ptr<dlm::ActiveWatch>> watches_;
};

}  // namespace

std::unique_ptr<OstPool> NewGrpcOstPool(std::vector<OstTarget> targets,
                                        uint64_t client_id) {
  return std::make_unique<GrpcOstPool>(std::move(targets), client_id);
}

}  // namespace stripefs::mds
