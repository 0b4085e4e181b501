#include "server/lifecycle.h"

#include <pthread.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errors.h"
#include "dlm/active_watch.h"
#include "rpc/handshake.h"
#include "spdlog/spdlog.h"
#include "storage/on_disk_features.h"

namespace stripefs::server {

StopSignals::StopSignals(bool forced_failover) {
  sigemptyset(&sigs_);
  sigaddset(&sigs_, SIGTERM);
  sigaddset(&sigs_, SIGINT);
  sigaddset(&sigs_, SIGUSR2);
  if (forced_failover) sigaddset(&sigs_, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs_, nullptr);
}

StopKind StopSignals::Wait() {
  int sig = 0;
  while (sigwait(&sigs_, &sig) != 0) {
  }
  if (sig == SIGUSR1) {
    spdlog::warn(
        "signal {}: forced failover: no more replies, backend read-only",
        sig);
    return StopKind::kForcedFailover;
  }
  if (sig == SIGUSR2) {
    spdlog::info("signal {}: controlled stop", sig);
    return StopKind::kControlled;
  }
  spdlog::info("signal {}: shutting down", sig);
  return StopKind::kClean;
}

storage::FeatureSet KnownFeatures(const std::string& role) {
  // A store carrying a bit this build does not know was written by a later
  // release (CheckStartup refuses unknown ro_compat/incompat bits and keeps
  // unknown compat ones).
  return storage::BuildFeatures(role);
}

absl::StatusOr<storage::StartupDecision> StartupCheck(
    storage::KvStore& kv, const std::string& role, const std::string& target,
    bool force, const std::vector<std::string>& enable_features) {
  absl::StatusOr<std::optional<storage::ServerRecord>> previous =
      storage::LoadServerRecord(kv);
  if (!previous.ok()) {
    return Errno(EIO, absl::StrCat("cannot read the server record: ",
                                   previous.status().message()));
  }
  const char* release = rpc::ThisBuild().release;
  absl::StatusOr<storage::StartupDecision> d = storage::CheckStartup(
      *previous, role, target, release, KnownFeatures(role), force);
  if (!d.ok()) return d.status();
  if (absl::Status s =
          storage::EnableFeatures(enable_features, role, &d->record);
      !s.ok()) {
    return s;  // EINVAL: a refusal naming the features this build offers
  }
  if (previous->has_value()) {
    const storage::ServerRecord& p = **previous;
    spdlog::info(
        "start-up check: previous instance release {} shut down {}; this "
        "release {}{}",
        p.release, p.clean ? "cleanly" : "UNCLEANLY", release,
        d->evict_clients ? " (forced: the old clients are evicted)" : "");
  } else {
    spdlog::info("start-up check: first start of {} (release {})", target,
                 release);
  }
  if (absl::Status s = storage::StoreServerRecord(kv, d->record); !s.ok()) {
    return Errno(EIO, absl::StrCat("cannot write the server record: ",
                                   s.message()));
  }
  absl::StatusOr<std::string> history =
      storage::NoteStart(kv, d->record, d->previous_clean);
  if (!history.ok()) {
    return Errno(EIO, absl::StrCat("cannot write the release history: ",
                                   history.status().message()));
  }
  if (!history->empty()) {
    spdlog::info("on-disk features {}; release history:\n{}",
                 d->record.feature_names, *history);
  }
  return d;
}

bool Refused(const absl::Status& s) {
  const int err = ToErrno(s);
  return err == EPERM || err == EINVAL;
}

absl::Status RecordCleanStop(storage::KvStore& kv,
                             storage::ServerRecord record) {
  record.clean = true;
  return storage::StoreServerRecord(kv, record);
}

absl::Status RecordFailedStart(storage::KvStore& kv,
                               const storage::StartupDecision& d) {
  storage::ServerRecord r = d.record;
  r.clean = d.previous_clean && !d.evict_clients;
  return storage::StoreServerRecord(kv, r);
}

dlm::DlmClientOptions ServerDlmOptions(const std::string& address,
                                       const std::string& role,
                                       const std::string& target) {
  dlm::DlmClientOptions o;
  o.address = address;
  o.client_id = dlm::ServerDlmClientId(target);
  o.kind = role;
  o.name = target;
  o.reset_on_first_connect = true;
  o.defer_connect = true;
  return o;
}

namespace {

absl::StatusOr<dlm::LockInfo> LockActive(dlm::DlmClient& dlm,
                                         const std::string& target,
                                         absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  dlm::LockOptions opts;
  opts.interrupted = [deadline] { return absl::Now() >= deadline; };
  opts.no_cache_match = true;
  const std::string name = dlm::ActiveResource(target);
  absl::StatusOr<dlm::LockInfo> l = dlm.Lock(
      {{name, dlm::LockType::kPlain}, dlm::LockMode::kEX}, opts);
  if (!l.ok() && ToErrno(l.status()) == EINTR) {
    return Errno(ETIMEDOUT, absl::StrCat("EX on ", name, " not granted within ",
                                         absl::FormatDuration(timeout)));
  }
  return l;
}

}  // namespace

absl::StatusOr<uint64_t> TakeActiveLock(dlm::DlmClient& dlm,
                                        const std::string& target,
                                        absl::Duration timeout) {
  spdlog::info("controlled stop: taking EX on {}",
               dlm::ActiveResource(target));
  absl::StatusOr<dlm::LockInfo> l = LockActive(dlm, target, timeout);
  if (!l.ok()) return l.status();
  spdlog::info("controlled stop: EX on {} granted (lock {})",
               dlm::ActiveResource(target), l->handle);
  return l->handle;
}

absl::Status BounceActiveLock(dlm::DlmClient& dlm, const std::string& target,
                              absl::Duration timeout) {
  spdlog::info(
      "forced start: taking EX on {} so that the old clients re-establish "
      "their state with this instance",
      dlm::ActiveResource(target));
  absl::StatusOr<dlm::LockInfo> l = LockActive(dlm, target, timeout);
  if (!l.ok()) return l.status();
  if (absl::Status s = dlm.Cancel(l->handle); !s.ok()) return s;
  spdlog::info("forced start: {} released; clients reconnect",
               dlm::ActiveResource(target));
  return absl::OkStatus();
}

void BounceIfForced(dlm::DlmClient* dlm, const std::string& target,
                    bool evict_clients) {
  if (dlm == nullptr || !evict_clients) return;
  if (absl::Status s = BounceActiveLock(*dlm, target); !s.ok()) {
    spdlog::error("forced start: could not make the old clients reconnect: {}",
                  s.ToString());
  }
}

uint64_t ActiveLockForStop(dlm::DlmClient* dlm, const std::string& target,
                           StopKind kind) {
  if (kind != StopKind::kControlled) return 0;
  if (dlm == nullptr) {
    spdlog::info("controlled stop without a lock service: plain stop");
    return 0;
  }
  absl::StatusOr<uint64_t> h = TakeActiveLock(*dlm, target);
  if (!h.ok()) {
    spdlog::error("controlled stop: {}; stopping plainly",
                  h.status().ToString());
    return 0;
  }
  return *h;
}

}  // namespace stripefs::server
