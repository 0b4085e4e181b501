// dlm_bench: lock throughput through real gRPC on 127.0.0.1 with an
// in-process stripefs-dlm (RocksDB in a temp dir), and the floor under every
// stripefs RPC: an empty synchronous unary gRPC call (a service that does
// nothing, same process, 127.0.0.1), its latency and its CPU (client and
// server). Prints one line per measurement; not run by ctest.
//   dlm_bench [--ops N] [--threads T]
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "grpcpp/grpcpp.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dlm/dlm_client.h"
#include "dlm/dlm_service.h"
#include "dlm/lock_manager.h"
#include "rpc/proto/dlm.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "storage/kv.h"

namespace {

// Answers Touch and nothing else, doing no work: the cost of the call alone.
class EmptyService final : public stripefs::rpc::Dlm::Service {
  grpc::Status Touch(grpc::ServerContext*, const stripefs::rpc::TouchRequest*,
                     stripefs::rpc::DlmEmpty*) override {
    return grpc::Status::OK;
  }
};

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One client thread calls `ops` times in a row: latency is wall time per
// call, CPU is the whole process's (client and server) per call.
int EmptyCalls(int ops) {
  EmptyService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return 1;
  auto stub = stripefs::rpc::Dlm::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  int failed = 0;
  auto call = [&] {
    grpc::ClientContext ctx;
    stripefs::rpc::TouchRequest req;
    stripefs::rpc::DlmEmpty reply;
    if (!stub->Touch(&ctx, req, &reply).ok()) ++failed;
  };
  for (int i = 0; i < 200; ++i) call();  // connect, warm up
  const double cpu0 = CpuSeconds();
  const absl::Time start = absl::Now();
  for (int i = 0; i < ops; ++i) call();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const double cpu = CpuSeconds() - cpu0;
  printf("grpc empty call: %d ops in %.2f s = %.0f ops/s, %.0f us latency, "
         "%.0f us CPU per call (1 threads, %d failed)\n",
         ops, secs, ops / secs, secs / ops * 1e6, cpu / ops * 1e6, failed);
  server->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DLM throughput benchmark"};
  int ops = 20000;
  int threads = 4;
  app.add_option("--ops", ops, "enqueue+cancel pairs per measurement");
  app.add_option("--threads", threads, "client threads");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  using namespace stripefs;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("dlm_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto kv = storage::OpenRocksKv((dir / "db").string());
  if (!kv.ok()) return 1;
  auto manager = dlm::LockManager::Open(kv->get(), RealClock());
  if (!manager.ok()) return 1;
  dlm::DlmService service({}, manager->get());
  int port = 0;
  auto server = dlm::StartDlmServer(&service, "127.0.0.1:0", &port);
  if (!server.ok()) return 1;
  auto client = dlm::DlmClient::Start(
      {.address = absl::StrCat("127.0.0.1:", port), .name = "bench"});
  if (!client.ok()) return 1;

  auto run = [&](const char* what, bool cached) {
    std::atomic<int> next{0};
    std::atomic<int> failed{0};
    const absl::Time start = absl::Now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        dlm::LockOptions opts;
        opts.no_cache_match = !cached;
        for (int i; (i = next.fetch_add(1)) < ops;) {
          dlm::LockSpec spec{{absl::StrCat("ino:", cached ? t : i),
                              dlm::LockType::kIbits},
                             dlm::LockMode::kPR, dlm::kBitLookup};
          auto l = (*client)->Lock(spec, opts);
          if (!l.ok()) {
            ++failed;
            continue;
          }
          (*client)->Release(l->handle);
          if (!cached && !(*client)->Cancel(l->handle).ok()) ++failed;
        }
      });
    }
    for (auto& th : ts) th.join();
    double secs = absl::ToDoubleSeconds(absl::Now() - start);
    printf("dlm %s: %d ops in %.2f s = %.0f ops/s (%d threads, %d failed)\n",
           what, ops, secs, ops / secs, threads, failed.load());
  };
  run("enqueue+cancel", false);
  run("cached lock reuse", true);
  if (EmptyCalls(ops) != 0) return 1;
  (*client)->Close();
  service.SetStopping();
  absl::Status closed = (*manager)->Close();
  if (!closed.ok()) fprintf(stderr, "close: %s\n", closed.ToString().c_str());
  (*server)->Shutdown();
  std::filesystem::remove_all(dir);
  return 0;
}
