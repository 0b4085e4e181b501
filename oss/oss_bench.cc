// oss_bench: measures OSS data-path throughput through real gRPC on
// 127.0.0.1 (an in-process server on a temp dir unless --addr is given):
// sequential 1 MiB writes and reads, random 4 KiB writes and reads, with
// --threads client threads each on its own object.
#include <stdlib.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "oss/oss_service.h"
#include "rpc/channel.h"
#include "rpc/status.h"

namespace {

using Clock = std::chrono::steady_clock;

// CPU seconds (user + system) used by this process so far.
double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"OSS data-path benchmark"};
  std::string addr;
  int threads = 1;
  int mib = 256;
  int rand_ops = 20000;
  app.add_option("--addr", addr, "server HOST:PORT (default: in-process)");
  app.add_option("--threads", threads, "client threads")->check(CLI::Range(1, 64));
  app.add_option("--mib", mib, "MiB per thread, sequential")->check(CLI::Range(1, 1 << 16));
  app.add_option("--rand-ops", rand_ops, "4 KiB ops per thread")->check(CLI::Range(1, 1 << 24));
  CLI11_PARSE(app, argc, argv);

  std::string dir;
  std::unique_ptr<stripefs::oss::ObjectStore> store;
  std::unique_ptr<stripefs::oss::OssService> service;
  std::unique_ptr<grpc::Server> server;
  if (addr.empty()) {
    std::string tmpl = "/tmp/oss_bench.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    dir = tmpl;
    auto s = stripefs::oss::ObjectStore::Open({.data_dir = dir});
    if (!s.ok()) {
      fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
      return 1;
    }
    store = std::move(*s);
    service = std::make_unique<stripefs::oss::OssService>(
        stripefs::oss::OssServiceOptions{.target = "bench"}, store.get());
    int port = 0;
    auto srv = stripefs::oss::StartOssServer(service.get(), "127.0.0.1:0", &port);
    if (!srv.ok()) return 1;
    server = std::move(*srv);
    addr = "127.0.0.1:" + std::to_string(port);
  }
  auto stub = stripefs::rpc::Oss::NewStub(stripefs::rpc::MakeChannel(addr));
  grpc::ClientContext pctx;
  stripefs::rpc::PrecreateRequest preq;
  preq.set_count(threads);
  stripefs::rpc::PrecreateReply prep;
  if (!stub->Precreate(&pctx, preq, &prep).ok()) {
    fprintf(stderr, "precreate failed\n");
    return 1;
  }
  const uint64_t first = prep.first_oid();
  std::atomic<int> errors{0};
  auto run = [&](const char* name, auto op, double units_per_thread,
                 const char* unit) {
    std::vector<std::thread> ts;
    auto start = Clock::now();
    double cpu0 = CpuSeconds();
    for (int t = 0; t < threads; ++t) ts.emplace_back(op, first + t);
    for (auto& th : ts) th.join();
    double secs = Seconds(start);
    double cpu = CpuSeconds() - cpu0;
    printf("%-12s %10.0f %-6s (%.0f per CPU-second, client+server)\n", name,
           units_per_thread * threads / secs, unit,
           units_per_thread * threads / cpu);
  };
  const std::string block(1 << 20, 'b');
  const std::string small(4096, 's');
  run("seq write", [&](uint64_t oid) {
    stripefs::rpc::WriteRequest req;
    req.set_oid(oid);
    req.set_data(block);
    for (int i = 0; i < mib; ++i) {
      grpc::ClientContext ctx;
      req.set_offset(uint64_t(i) << 20);
      stripefs::rpc::WriteReply rep;
      if (!stub->Write(&ctx, req, &rep).ok()) ++errors;
    }
  }, mib, "MiB/s");
  run("seq read", [&](uint64_t oid) {
    stripefs::rpc::ReadRequest req;
    req.set_oid(oid);
    req.set_length(1 << 20);
    for (int i = 0; i < mib; ++i) {
      grpc::ClientContext ctx;
      req.set_offset(uint64_t(i) << 20);
      stripefs::rpc::ReadReply rep;
      if (!stub->Read(&ctx, req, &rep).ok() || rep.data().size() != (1 << 20)) ++errors;
    }
  }, mib, "MiB/s");
  run("rand write", [&](uint64_t oid) {
    std::mt19937_64 rng(oid);
    stripefs::rpc::WriteRequest req;
    req.set_oid(oid);
    req.set_data(small);
    for (int i = 0; i < rand_ops; ++i) {
      grpc::ClientContext ctx;
      req.set_offset((rng() % (uint64_t(mib) << 8)) * 4096);
      stripefs::rpc::WriteReply rep;
      if (!stub->Write(&ctx, req, &rep).ok()) ++errors;
    }
  }, rand_ops, "IOPS");
  run("rand read", [&](uint64_t oid) {
    std::mt19937_64 rng(oid + 1);
    stripefs::rpc::ReadRequest req;
    req.set_oid(oid);
    req.set_length(4096);
    for (int i = 0; i < rand_ops; ++i) {
      grpc::ClientContext ctx;
      req.set_offset((rng() % (uint64_t(mib) << 8)) * 4096);
      stripefs::rpc::ReadReply rep;
      if (!stub->Read(&ctx, req, &rep).ok()) ++errors;
    }
  }, rand_ops, "IOPS");
  printf("errors: %d\n", errors.load());
  if (server) server->Shutdown();
  server.reset();
  service.reset();
  store.reset();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return errors.load() == 0 ? 0 : 1;
}
