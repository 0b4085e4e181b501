// stripefs-ossctl: calls one OSS directly, past the MDS, to inject the
// inconsistencies stripefs fsck must find (tests/e2e/test_fsck.py):
//   stripefs-ossctl ADDRESS precreate N        prints the first new oid
//   stripefs-ossctl ADDRESS destroy OID...
//   stripefs-ossctl ADDRESS write OID OFFSET TEXT
// A test tool: never part of a cluster's operation.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "rpc/channel.h"
#include "rpc/proto/oss.grpc.pb.h"
#include "rpc/status.h"

namespace {

int Check(const grpc::Status& gs, const char* what) {
  if (gs.ok()) return 0;
  absl::Status s = stripefs::rpc::FromGrpc(gs);
  std::fprintf(stderr, "stripefs-ossctl: %s: %s\n", what,
               std::string(s.message()).c_str());
  return 1;
}

void Header(stripefs::rpc::ReqHeader* h) {
  h->set_client_id(std::random_device{}() * 1000003ull +
                   std::random_device{}());
  h->set_xid(1);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stripefs-ossctl: call one OSS directly (tests)"};
  std::string address;
  app.add_option("ADDRESS", address, "HOST:PORT of the OSS")->required();
  app.require_subcommand(1);
  uint32_t count = 1;
  CLI::App* precreate = app.add_subcommand("precreate", "create objects");
  precreate->add_option("N", count)->required();
  std::vector<uint64_t> oids;
  CLI::App* destroy = app.add_subcommand("destroy", "destroy objects");
  destroy->add_option("OID", oids)->required();
  uint64_t oid = 0, offset = 0;
  std::string text;
  CLI::App* write = app.add_subcommand("write", "write TEXT into an object");
  write->add_option("OID", oid)->required();
  write->add_option("OFFSET", offset)->required();
  write->add_option("TEXT", text)->required();
  CLI11_PARSE(app, argc, argv);

  auto stub = stripefs::rpc::Oss::NewStub(stripefs::rpc::MakeChannel(address));
  grpc::ClientContext ctx;
  stripefs::rpc::SetDeadline(ctx);
  if (*precreate) {
    stripefs::rpc::PrecreateRequest req;
    Header(req.mutable_hdr());
    req.set_count(count);
    stripefs::rpc::PrecreateReply reply;
    if (int rc = Check(stub->Precreate(&ctx, req, &reply), "precreate")) {
      return rc;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(reply.first_oid()));
    return 0;
  }
  if (*destroy) {
    stripefs::rpc::DestroyRequest req;
    Header(req.mutable_hdr());
    for (uint64_t o : oids) req.add_oids(o);
    stripefs::rpc::Empty reply;
    return Check(stub->Destroy(&ctx, req, &reply), "destroy");
  }
  stripefs::rpc::WriteRequest req;
  Header(req.mutable_hdr());
  req.set_oid(oid);
  req.set_offset(offset);
  req.set_data(text);
  req.set_sync(true);
  stripefs::rpc::WriteReply reply;
  return Check(stub->Write(&ctx, req, &reply), "write");
}
