#include "common/fault_points.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/errors.h"
#include "spdlog/spdlog.h"

namespace stripefs::fault {
namespace {

enum class Action { kError, kCrash, kDelay, kDrop };

struct Rule {
  Action action = Action::kError;
  absl::Duration delay;
  double probability = 1.0;
  uint64_t count = 1;
  uint64_t fired = 0;
};

struct State {
  absl::Mutex mu;
  std::map<std::string, Rule> rules ABSL_GUARDED_BY(mu);
  std::mt19937_64 rng ABSL_GUARDED_BY(mu);
};

State& Get() {
  static State* s = new State;
  return *s;
}

std::atomic<bool> g_any{false};

absl::Status Bad(absl::string_view part, absl::string_view why) {
  return Errno(EINVAL, absl::StrCat("fault spec '", part, "': ", why));
}

absl::Status ParseRule(absl::string_view item, std::string* name, Rule* r) {
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(item, absl::MaxSplits('=', 1));
  if (kv.first.empty() || kv.second.empty()) {
    return Bad(item, "want NAME=ACTION");
  }
  *name = std::string(kv.first);
  absl::string_view rest = kv.second;
  // *COUNT, then @PROBABILITY, from the right.
  if (size_t star = rest.rfind('*'); star != absl::string_view::npos) {
    if (!absl::SimpleAtoi(rest.substr(star + 1), &r->count) ||
        r->count == 0 || r->count > 1000000) {
      return Bad(item, "COUNT must be 1..1000000");
    }
    rest = rest.substr(0, star);
  }
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    if (!absl::SimpleAtod(rest.substr(at + 1), &r->probability) ||
        !(r->probability > 0 && r->probability <= 1)) {
      return Bad(item, "PROBABILITY must be in (0, 1]");
    }
    rest = rest.substr(0, at);
  }
  if (rest == "error") {
    r->action = Action::kError;
  } else if (rest == "crash") {
    r->action = Action::kCrash;
  } else if (rest == "drop") {
    r->action = Action::kDrop;
  } else if (absl::StartsWith(rest, "delay:")) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(rest.substr(6), &ms) || ms < 0 || ms > 600000) {
      return Bad(item, "delay:MS with MS in 0..600000");
    }
    r->action = Action::kDelay;
    r->delay = absl::Milliseconds(ms);
  } else {
    return Bad(item, "ACTION must be error, crash, drop or delay:MS");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Configure(const std::string& spec, uint64_t seed) {
  std::map<std::string, Rule> rules;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::string name;
    Rule r;
    if (absl::Status s = ParseRule(item, &name, &r); !s.ok()) return s;
    rules[name] = r;
  }
  State& st = Get();
  absl::MutexLock l(&st.mu);
  st.rules = std::move(rules);
  st.rng.seed(seed);
  g_any.store(!st.rules.empty());
  if (!st.rules.empty()) {
    spdlog::warn("fault points armed: '{}' (seed {})", spec, seed);
  }
  return absl::OkStatus();
}

absl::Status ConfigureFromEnv() {
  const char* spec = std::getenv("STRIPEFS_FAULTS");
  if (spec == nullptr || *spec == '\0') return Configure("", 1);
  uint64_t seed = 1;
  if (const char* s = std::getenv("STRIPEFS_FAULT_SEED");
      s != nullptr && !absl::SimpleAtoi(s, &seed)) {
    return Errno(EINVAL, absl::StrCat("STRIPEFS_FAULT_SEED '", s,
                                      "' is not a number"));
  }
  return Configure(spec, seed);
}

absl::Status Hit(const char* name) {
  if (!g_any.load(std::memory_order_relaxed)) return absl::OkStatus();
  Rule fire;
  {
    State& st = Get();
    absl::MutexLock l(&st.mu);
    auto it = st.rules.find(name);
    if (it == st.rules.end() || it->second.fired >= it->second.count) {
      return absl::OkStatus();
    }
    Rule& r = it->second;
    if (r.probability < 1.0 &&
        std::uniform_real_distribution<double>(0, 1)(st.rng) >=
            r.probability) {
      return absl::OkStatus();
    }
    ++r.fired;
    fire = r;
  }
  switch (fire.action) {
    case Action::kCrash:
      spdlog::critical("fault point {}: crash", name);
      spdlog::shutdown();
      _exit(kCrashExit);
    case Action::kDelay:
      spdlog::warn("fault point {}: delay {}", name,
                   absl::FormatDuration(fire.delay));
      absl::SleepFor(fire.delay);
      return absl::OkStatus();
    case Action::kDrop:
      // UNAVAILABLE is what a cut connection gives the client, so it
      // resends the same request with the same xid.
      spdlog::warn("fault point {}: drop", name);
      return absl::UnavailableError(
          absl::StrCat("fault point ", name, ": reply dropped"));
    case Action::kError:
      break;
  }
  spdlog::warn("fault point {}: error", name);
  return Errno(EIO, absl::StrCat("fault point ", name));
}

uint64_t Fired(const std::string& name) {
  State& st = Get();
  absl::MutexLock l(&st.mu);
  auto it = st.rules.find(name);
  return it == st.rules.end() ? 0 : it->second.fired;
}

}  // namespace stripefs::fault
