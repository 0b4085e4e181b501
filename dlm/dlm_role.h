// The DLM as a server role: the lock table (LockManager) and the Dlm
// service (server/runner.h); stripefs-dlm
// (dlm/main.cc) parses the flags and runs it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dlm/lock_manager.h"
#include "server/runner.h"

namespace stripefs::dlm {

std::unique_ptr<server::ServerRole> NewDlmRole(std::string target, std::string data,
                                               LockManagerOptions options);

}  // namespace stripefs::dlm
