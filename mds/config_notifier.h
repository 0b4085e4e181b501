// ConfigNotifier: tells every party that the cluster configuration changed
// (mds/target_registry.h) by taking EX on the `config` lock (PLAIN) and
// dropping it at once. Mounts hold PR on it and re-read GetConfig when it
// is called back (fuse-client/config_watch.h); a mount that cannot answer
// (stopped) is evicted by the DLM's callback timeout and re-reads when it
// runs again.
//
// The EX is taken on the notifier's own thread, so a change returns once
// it is committed; changes made while a notice is in progress are noticed
// again after it (every committed change is followed by an EX granted
// after it). Thread-safe.
//
//   ConfigNotifier n(dlm);   // dlm may be null: no lock service, no notice
//   ... commit a change ...; n.Notify();
#pragma once

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stripefs::dlm {
class DlmClient;
}  // namespace stripefs::dlm

namespace stripefs::mds {

class ConfigNotifier {
 public:
  explicit ConfigNotifier(dlm::DlmClient* dlm);
  ~ConfigNotifier();  // stops the thread (a notice in progress is dropped)
  ConfigNotifier(const ConfigNotifier&) = delete;
  ConfigNotifier& operator=(const ConfigNotifier&) = delete;

  void Notify();
  // Notices completed (EX granted and dropped), for tests.
  uint64_t done() const;

 private:
  void Run();
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || pending_;
  }

  dlm::DlmClient* const dlm_;
  mutable absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace stripefs::mds
