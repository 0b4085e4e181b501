// Process-wide logging setup over spdlog. Call InitLogging once in main();
// afterwards use spdlog::info/warn/error. Thread-safe after init.
#pragma once

#include <string>

namespace stripefs {

// role names the process in every line ("mds", "ost0", "client").
// level: "debug", "info", "warn", "error".
void InitLogging(const std::string& role, const std::string& level = "info");

}  // namespace stripefs
