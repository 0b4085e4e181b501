#include "cli/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/cluster_binaries.h"
#include "common/errors.h"
#include "nlohmann/json.hpp"

namespace stripefs::cli {
namespace {

using nlohmann::json;

absl::Status SysError(int err, const std::string& what) {
  return Errno(err, absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<std::string> GetString(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return Errno(EINVAL,
                 absl::StrCat("missing or non-string field '", key, "'"));
  }
  return it->get<std::string>();
}

}  // namespace

const ServerConfig* ClusterConfig::Mds() const {
  for (const auto& s : servers) {
    if (s.role == "mds") return &s;
  }
  return nullptr;
}

const ServerConfig* ClusterConfig::Dlm() const {
  for (const auto& s : servers) {
    if (s.role == "dlm") return &s;
  }
  return nullptr;
}

const ServerConfig* ClusterConfig::Find(const std::string& target) const {
  for (const auto& s : servers) {
    if (s.target == target) return &s;
  }
  return nullptr;
}

std::vector<const ServerConfig*> ClusterConfig::Osses() const {
  std::vector<const ServerConfig*> out;
  for (const auto& s : servers) {
    if (s.role == "oss") out.push_back(&s);
  }
  return out;
}

std::string DefaultHome() {
  const char* env = std::getenv("STRIPEFS_HOME");
  if (env != nullptr && env[0] != '\0') return env;
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') home = "/root";
  return absl::StrCat(home, "/.stripefs");
}

bool IsServerRole(const std::string& role) {
  for (const char* r : kServerRoles) {
    if (r == role) return true;
  }
  return false;
}

std::string ServerBinary(const std::string& role) {
  return absl::StrCat("stripefs-", role);
}

std::string ConfigToJson(const ClusterConfig& config) {
  json servers = json::array();
  for (const auto& s : config.servers) {
    json entry = {{"target", s.target},
                  {"role", s.role},
                  {"address", s.address},
                  {"data", s.data}};
    if (!s.binary_dir.empty()) entry["binary_dir"] = s.binary_dir;
    if (!s.runtime.empty()) entry["runtime"] = s.runtime;
    if (!s.image.empty()) entry["image"] = s.image;
    servers.push_back(std::move(entry));
  }
  json j = {{"servers", servers},
            {"stripe_count", config.stripe_count},
            {"stripe_size", config.stripe_size}};
  return j.dump(2) + "\n";
}

absl::StatusOr<ClusterConfig> ConfigFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Errno(EINVAL, "cluster config is not a JSON object");
  }
  ClusterConfig config;
  auto servers = j.find("servers");
  if (servers == j.end() || !servers->is_array()) {
    return Errno(EINVAL, "cluster config has no 'servers' array");
  }
  for (const auto& s : *servers) {
    if (!s.is_object()) return Errno(EINVAL, "server entry is not an object");
    ServerConfig sc;
    absl::StatusOr<std::string> v;
    if (v = GetString(s, "target"); !v.ok()) return v.status();
    sc.target = *v;
    if (v = GetString(s, "role"); !v.ok()) return v.status();
    sc.role = *v;
    if (v = GetString(s, "address"); !v.ok()) return v.status();
    sc.address = *v;
    if (v = GetString(s, "data"); !v.ok()) return v.status();
    sc.data = *v;
    for (auto [key, field] :
         {std::pair<const char*, std::string*>{"binary_dir", &sc.binary_dir},
          {"runtime", &sc.runtime},
          {"image", &sc.image}}) {
      if (!s.contains(key)) continue;
      if (v = GetString(s, key); !v.ok()) return v.status();
      *field = *v;
    }
    if (!sc.runtime.empty() && sc.runtime != "podman") {
      return Errno(EINVAL, absl::StrCat("server ", sc.target,
                                        " has unknown runtime '", sc.runtime,
                                        "' (expected \"podman\" or none)"));
    }
    if (sc.runtime == "podman" && sc.image.empty()) {
      return Errno(EINVAL, absl::StrCat("server ", sc.target,
                                        " runs in podman but names no image"));
    }
    if (!IsServerRole(sc.role)) {
      return Errno(EINVAL, absl::StrCat("server ", sc.target,
                                        " has unknown role '", sc.role, "'"));
    }
    config.servers.push_back(std::move(sc));
  }
  auto count = j.find("stripe_count");
  if (count != j.end()) {
    if (!count->is_number_integer()) {
      return Errno(EINVAL, "stripe_count is not an integer");
    }
    config.stripe_count = count->get<int64_t>();
  }
  auto size = j.find("stripe_size");
  if (size != j.end()) {
    if (!size->is_number_unsigned() && !size->is_number_integer()) {
      return Errno(EINVAL, "stripe_size is not an integer");
    }
    if (size->is_number_integer() && size->get<int64_t>() < 0) {
      return Errno(EINVAL, "stripe_size is negative");
    }
    config.stripe_size = size->get<uint64_t>();
  }
  if (config.Mds() == nullptr) {
    return Errno(EINVAL, "cluster config names no MDS");
  }
  return config;
}

absl::StatusOr<ClusterConfig> LoadConfig(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<ClusterConfig> config = ConfigFromJson(*text);
  if (!config.ok()) {
    return Errno(EINVAL, absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

absl::Status SaveConfig(const std::string& path, const ClusterConfig& config) {
  return WriteFileAtomic(path, ConfigToJson(config));
}

std::string MountsToJson(const std::vector<MountRecord>& mounts) {
  json arr = json::array();
  for (const auto& m : mounts) {
    arr.push_back({{"mountpoint", m.mountpoint}, {"pid", m.pid}});
  }
  return arr.dump(2) + "\n";
}

absl::StatusOr<std::vector<MountRecord>> MountsFromJson(
    const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return Errno(EINVAL, "mounts file is not a JSON array");
  }
  std::vector<MountRecord> out;
  for (const auto& m : j) {
    if (!m.is_object()) return Errno(EINVAL, "mount entry is not an object");
    MountRecord r;
    absl::StatusOr<std::string> mp = GetString(m, "mountpoint");
    if (!mp.ok()) return mp.status();
    r.mountpoint = *mp;
    auto pid = m.find("pid");
    if (pid != m.end() && pid->is_number_integer()) r.pid = pid->get<int64_t>();
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<MountRecord>> LoadMounts(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (ToErrno(text.status()) == ENOENT) return std::vector<MountRecord>{};
    return text.status();
  }
  absl::StatusOr<std::vector<MountRecord>> mounts = MountsFromJson(*text);
  if (!mounts.ok()) {
    return Errno(EINVAL, absl::StrCat(path, ": ", mounts.status().message()));
  }
  return mounts;
}

absl::Status SaveMounts(const std::string& path,
                        const std::vector<MountRecord>& mounts) {
  return WriteFileAtomic(path, MountsToJson(mounts));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError(errno, absl::StrCat("cannot open ", path));
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return SysError(err, absl::StrCat("cannot read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return SysError(errno, absl::StrCat("cannot create ", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return SysError(err, absl::StrCat("cannot write ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return SysError(err, absl::StrCat("cannot write ", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return SysError(err, absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path) {
  if (path.empty()) return Errno(EINVAL, "empty directory path");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return SysError(errno, absl::StrCat("cannot create directory ", cur));
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return SysError(errno, absl::StrCat("cannot stat ", path));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Errno(ENOTDIR, absl::StrCat(path, " is not a directory"));
  }
  return absl::OkStatus();
}

}  // namespace stripefs::cli
