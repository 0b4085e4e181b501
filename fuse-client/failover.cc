#include "fuse-client/failover.h"

#include "absl/strings/str_cat.h"
#include "fuse-client/request_gate.h"
#include "spdlog/spdlog.h"

namespace stripefs::client {

void MountFailover::Pause(TargetClient& t) {
  t.gate().Close();
  const absl::Time start = absl::Now();
  const absl::Time limit = start + kDrainLimit;
  absl::Status s = t.gate().WaitIdle([&] { return absl::Now() >= limit; });
  if (!s.ok()) {
    spdlog::warn(
        "{}: {} requests still in flight after {}; letting the "
        "server go anyway",
        t.name(), t.gate().in_flight(), absl::FormatDuration(kDrainLimit));
  } else if (absl::Now() - start > absl::Seconds(1)) {
    spdlog::info("{}: in-flight requests took {} to finish", t.name(),
                 absl::FormatDuration(absl::Now() - start));
  }
}

absl::Status MountFailover::ResumeTarget(TargetClient& t) {
  const std::string old_release = t.server_release();
  const uint32_t old_proto = t.proto();
  if (absl::Status s = t.Reconnect(); !s.ok()) return s;
  if (t.server_release() != old_release || t.proto() != old_proto) {
    spdlog::info("{}: server release {} -> {}, protocol {} -> {}", t.name(),
                 old_release, t.server_release(), old_proto, t.proto());
  }
  return absl::OkStatus();
}

absl::Status MountFailover::ResumeMds(MdsClient& mds, bool lost) {
  GateBypass bypass;  // our own requests pass the closed gate
  if (absl::Status s = ResumeTarget(mds); !s.ok()) return s;
  // Nothing to do when the same instance still has every handle (e.g. the
  // lock was lost to a DLM eviction while the MDS kept running) and no
  // recovery moved them since the last resume; but when a keepalive or a
  // resending request re-established them on a new instance first (the
  // mount missed the stopping MDS's callback, so its gate was open), the
  // lost lock still fails the files with unsynced writes
  // (TargetClient::ResumeRecover).
  if (absl::Status s = mds.ResumeRecover({}, lost); !s.ok()) return s;
  mds.gate().Reopen();
  return absl::OkStatus();
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
  auto watch = dlm::ActiveWatch::Start(
      dlm, mds->name(),
      {.pause = [mds] { Pause(*mds); },
       .resume = [mds](bool lost) { return ResumeMds(*mds, lost); }});
  if (!watch.ok()) return watch.status();
  f->watches_.push_back(std::move(*watch));
  for (const auto& [index, ost] : osts->all()) {
    OstClient* o = ost.get();
    // Object I/O is stateless: nothing to re-establish.
    auto w = dlm::ActiveWatch::Start(dlm, o->name(),
                                     {.pause = [o] { Pause(*o); },
                                      .resume = [o](bool) -> absl::Status {
                                        GateBypass bypass;
                                        if (absl::Status s = ResumeTarget(*o);
                                            !s.ok())
                                          return s;
                                        o->gate().Reopen();
                                        return absl::OkStatus();
                                      }});
    if (!w.ok()) return w.status();
    f->watches_.push_back(std::move(*w));
  }
  return f;
}

MountFailover::~MountFailover() { Stop(); }

bool MountFailover::WaitActive(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  for (auto& w : watches_) {
    if (!w->WaitActive(std::max(end - absl::Now(), absl::ZeroDuration()))) {
      spdlog::warn("{}: not active after {}", w->target(),
                   absl::FormatDuration(timeout));
      return false;
    }
  }
  return true;
}

void MountFailover::Stop() {
  for (auto& w : watches_) w->Stop();
}

}  // namespace stripefs::client
