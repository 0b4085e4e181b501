#include "conn/active_gate.h"

#include <utility>

#include "conn/request_gate.h"
#include "spdlog/spdlog.h"

namespace stripefs::conn {

void PauseTarget(TargetClient& t, absl::Duration drain_limit) {
  t.gate().Close();
  const absl::Time start = absl::Now();
  const absl::Time limit = start + drain_limit;
  absl::Status s = t.gate().WaitIdle([&] { return absl::Now() >= limit; });
  if (!s.ok()) {
    spdlog::warn(
        "{}: {} requests still in flight after {}; letting the "
        "server go anyway",
        t.name(), t.gate().in_flight(), absl::FormatDuration(drain_limit));
  } else if (absl::Now() - start > absl::Seconds(1)) {
    spdlog::info("{}: in-flight requests took {} to finish", t.name(),
                 absl::FormatDuration(absl::Now() - start));
  }
}

absl::Status ReconnectTarget(TargetClient& t) {
  const std::string old_release = t.server_release();
  const uint32_t old_proto = t.proto();
  if (absl::Status s = t.Reconnect(); !s.ok()) return s;
  if (t.server_release() != old_release || t.proto() != old_proto) {
    spdlog::info("{}: server release {} -> {}, protocol {} -> {}", t.name(),
                 old_release, t.server_release(), old_proto, t.proto());
  }
  return absl::OkStatus();
}

absl::Status ResumeTarget(TargetClient& t, bool lost,
                          const AfterReconnect& after) {
  GateBypass bypass;  // our own requests pass the closed gate
  if (absl::Status s = ReconnectTarget(t); !s.ok()) return s;
  if (after) {
    if (absl::Status s = after(lost); !s.ok()) return s;
  }
  t.gate().Reopen();
  return absl::OkStatus();
}

dlm::ActiveWatchHooks GateHooks(TargetClient* t, AfterReconnect after) {
  return {.pause = [t] { PauseTarget(*t); },
          .resume = [t, after = std::move(after)](bool lost) {
            return ResumeTarget(*t, lost, after);
          }};
}

absl::StatusOr<std::unique_ptr<dlm::ActiveWatch>> WatchActive(
    dlm::DlmClient* dlm, TargetClient* t, AfterReconnect after) {
  t->gate().Close();
  return dlm::ActiveWatch::Start(dlm, t->name(),
                                 GateHooks(t, std::move(after)));
}

}  // namespace stripefs::conn
