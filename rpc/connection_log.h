// ConnectionLog: the clients a server answered Connect for, with the
// protocol negotiated for each, for the Status RPC
// (StatusReply.info["connections"] = "name=proto,name=proto", most recent
// last; see docs/internals.md "Versions"). Bounded: keeps the most recent
// kMaxConnections client names (a name reconnecting moves to the end with
// its new protocol). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace stripefs::rpc {

class ConnectionLog {
 public:
  static constexpr size_t kMaxConnections = 64;

  // A Connect from `client_name` was answered with protocol `proto`.
  void Note(const std::string& client_name, uint32_t proto);
  // "name=proto,..." oldest first; empty when none.
  std::string Render() const;

 private:
  using Entry = std::pair<std::string, uint32_t>;
  mutable absl::Mutex mu_;
  std::list<Entry> order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> by_name_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace stripefs::rpc
