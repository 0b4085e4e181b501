// The OSS as a server role: the object store, its object locks through
// the DLM (--dlm) and the Oss service (server/runner.h); stripefs-oss
// (oss/main.cc) parses the flags and runs it.
#pragma once

#include <cstdint>
#include <memory>
#include <cstddef>
#include <string>

#include "server/runner.h"

namespace stripefs::oss {

std::unique_ptr<server::ServerRole> NewOssRole(std::string target, std::string data,
                                               size_t max_open_files,
                                               uint32_t ost_index,
                                               uint64_t capacity_bytes = 0);

}  // namespace stripefs::oss
