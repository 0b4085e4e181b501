#include "rpc/connection_log.h"

#include "absl/strings/str_cat.h"

namespace stripefs::rpc {

void ConnectionLog::Note(const std::string& client_name, uint32_t proto) {
  // The rendered list is split on ',' and '=': keep names free of them.
  std::string name = client_name.empty() ? "?" : client_name;
  for (char& c : name) {
    if (c == ',' || c == '=') c = '_';
  }
  absl::MutexLock lock(&mu_);
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    order_.erase(it->second);
    by_name_.erase(it);
  }
  order_.emplace_back(name, proto);
  by_name_[name] = std::prev(order_.end());
  while (order_.size() > kMaxConnections) {
    by_name_.erase(order_.front().first);
    order_.pop_front();
  }
}

std::string ConnectionLog::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, proto] : order_) {
    if (!out.empty()) out += ',';
    absl::StrAppend(&out, name, "=", proto);
  }
  return out;
}

}  // namespace stripefs::rpc
