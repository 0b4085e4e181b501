// CRC-32 of the zlib polynomial (ISO-HDLC; the checksum OssV2.Write2
// carries, rpc/wire_v2.h), computed with carry-less multiplication
// (PCLMULQDQ, folding 64 bytes per step) where the CPU has it and with
// zlib's crc32 otherwise. Both give the same value for the same bytes, so
// a sender and a receiver may use either: nothing on the wire changes.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace stripefs::rpc {

// zlib's crc32(crc, data, len): continues `crc` (0 to start) over the bytes.
uint32_t Crc32(uint32_t crc, const char* data, size_t len);

// The same with zlib only (the reference the fast path is tested against).
uint32_t Crc32Zlib(uint32_t crc, const char* data, size_t len);

// True when Crc32 uses the carry-less multiply on this CPU.
bool Crc32Accelerated();

}  // namespace stripefs::rpc
