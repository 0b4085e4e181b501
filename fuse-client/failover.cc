#include "fuse-client/failover.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "conn/active_gate.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

void MountFailover::Pause(TargetClient& t) { conn::PauseTarget(t); }

absl::Status MountFailover::ResumeTarget(TargetClient& t) {
  return conn::ReconnectTarget(t);
}

absl::Status MountFailover::ResumeMds(MdsClient& mds, bool lost) {
  // Nothing to do when the same instance still has every handle (e.g. the
  // lock was lost to a DLM eviction while the MDS kept running) and no
  // recovery moved them since the last resume; but when a keepalive or a
  // resending request re-established them on a new instance first (the
  // mount missed the stopping MDS's callback, so its gate was open), the
  // lost lock still fails the files with unsynced writes
  // (TargetClient::ResumeRecover).
  return conn::ResumeTarget(mds, lost, [&mds](bool was_lost) {
    return mds.ResumeRecover({}, was_lost);
  });
}

absl::StatusOr<std::unique_ptr<MountFailover>> MountFailover::Start(
    dlm::DlmClient* dlm, MdsClient* mds, OstSet* osts) {
  std::unique_ptr<MountFailover> f(new MountFailover());
  mds->gate().Close();
  for (const auto& [index, ost] : osts->all()) ost->gate().Close();
  // The open files are re-established by the MdsClient's recovery function
  // (Fs::ReopenAll, set by the mount), which also serves crash recovery:
  // the MdsClient alone knows which instance the handles live on, so a
  // reopen is done once per instance whichever path finds it first.
  auto watch = conn::WatchActive(dlm, mds, [mds](bool lost) {
    return mds->ResumeRecover({}, lost);
  });
  if (!watch.ok()) return watch.status();
  f->dlm_ = dlm;
  f->osts_ = osts;
  {
    absl::MutexLock l(&f->mu_);
    f->watches_.push_back(std::move(*watch));
  }
  for (const auto& [index, ost] : osts->all()) {
    STRIPEFS_RETURN_IF_ERROR(f->WatchOst(index));
  }
  return f;
}

absl::Status MountFailover::WatchOst(uint32_t index) {
  OstClient* ost = osts_->Get(index);
  if (ost == nullptr) return absl::NotFoundError("no such OST");
  // Object I/O is stateless: nothing to re-establish. Writes buffered
  // for the OST (write_behind.h) are sent before its requests pause.
  dlm::ActiveWatchHooks hooks = conn::GateHooks(ost);
  if (WriteBehind* wb = osts_->write_behind(); wb != nullptr) {
    hooks.pause = [wb, index, ost] {
      wb->PauseOst(index);
      conn::PauseTarget(*ost);
    };
    hooks.resume = [wb, index, ost](bool lost) {
      absl::Status s = conn::ResumeTarget(*ost, lost);
      if (s.ok()) wb->ResumeOst(index);
      return s;
    };
  }
  ost->gate().Close();
  auto w = dlm::ActiveWatch::Start(dlm_, ost->name(), std::move(hooks));
  if (!w.ok()) return w.status();
  absl::MutexLock l(&mu_);
  watches_.push_back(std::move(*w));
  return absl::OkStatus();
}

absl::Status MountFailover::AddOst(uint32_t index, absl::Duration timeout) {
  STRIPEFS_RETURN_IF_ERROR(WatchOst(index));
  dlm::ActiveWatch* w = nullptr;
  {
    absl::MutexLock l(&mu_);
    w = watches_.back().get();
  }
  if (!w->WaitActive(timeout)) {
    return absl::UnavailableError(absl::StrCat(
        w->target(), ": not active after ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

MountFailover::~MountFailover() { Stop(); }

std::vector<dlm::ActiveWatch*> MountFailover::Watches() {
  absl::MutexLock l(&mu_);
  std::vector<dlm::ActiveWatch*> out;
  for (auto& w : watches_) out.push_back(w.get());
  return out;
}

bool MountFailover::WaitActive(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  for (dlm::ActiveWatch* w : Watches()) {
    if (!w->WaitActive(std::max(end - absl::Now(), absl::ZeroDuration()))) {
      spdlog::warn("{}: not active after {}", w->target(),
                   absl::FormatDuration(timeout));
      return false;
    }
  }
  return true;
}

void MountFailover::Stop() {
  for (dlm::ActiveWatch* w : Watches()) w->Stop();
}

}  // namespace stripefs::client
