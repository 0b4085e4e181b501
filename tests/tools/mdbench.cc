// stripefs-mdbench: a small metadata benchmark in the spirit of mdtest.
//
// In a new subdirectory of --dir it creates --files empty files
// (open O_CREAT|O_EXCL + close), then stats each one, then removes each one,
// timing each phase. Prints one line per phase ("create 2000 files 0.123 s
// 16260 files/s") or, with --json, one JSON object with the three rates.
// Exits non-zero on the first failed system call. Single-threaded test code.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const char* what, const std::string& path) {
  int err = errno;
  std::fprintf(stderr, "mdbench: %s %s: %s\n", what, path.c_str(),
               std::strerror(err));
  return 1;
}

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int files = 2000;
  bool json = false;
  CLI::App app{"stripefs-mdbench: create/stat/remove rates"};
  app.add_option("--dir", dir, "directory to work in")->required();
  app.add_option("--files", files, "number of files")->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print one JSON object");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // CLI11 reports through exceptions
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::string base = dir + "/mdbench." + std::to_string(getpid());
  if (mkdir(base.c_str(), 0755) != 0) return Fail("mkdir", base);
  std::vector<std::string> names;
  names.reserve(files);
  for (int i = 0; i < files; ++i) {
    names.push_back(base + "/f." + std::to_string(i));
  }

  auto t = Clock::now();
  for (const auto& n : names) {
    int fd = open(n.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return Fail("create", n);
    if (close(fd) != 0) return Fail("close", n);
  }
  double create_s = Since(t);

  t = Clock::now();
  for (const auto& n : names) {
    struct stat st;
    if (stat(n.c_str(), &st) != 0) return Fail("stat", n);
  }
  double stat_s = Since(t);

  t = Clock::now();
  for (const auto& n : names) {
    if (unlink(n.c_str()) != 0) return Fail("unlink", n);
  }
  double remove_s = Since(t);
  if (rmdir(base.c_str()) != 0) return Fail("rmdir", base);

  auto rate = [&](double s) { return s > 0 ? files / s : 0.0; };
  if (json) {
    std::printf(
        "{\"files\": %d, \"create\": %.1f, \"stat\": %.1f, \"remove\": %.1f}\n",
        files, rate(create_s), rate(stat_s), rate(remove_s));
  } else {
    std::printf("create %d files %.3f s %.0f files/s\n", files, create_s,
                rate(create_s));
    std::printf("stat   %d files %.3f s %.0f files/s\n", files, stat_s,
                rate(stat_s));
    std::printf("remove %d files %.3f s %.0f files/s\n", files, remove_s,
                rate(remove_s));
  }
  return 0;
}
