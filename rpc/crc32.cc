#include "rpc/crc32.h"

#include <zlib.h>

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace stripefs::rpc {

uint32_t Crc32Zlib(uint32_t crc, const char* data, size_t len) {
  uLong c = crc;
  const auto* p = reinterpret_cast<const Bytef*>(data);
  while (len > 0) {
    uInt n = static_cast<uInt>(std::min<size_t>(len, 1u << 30));
    c = crc32(c, p, n);
    p += n;
    len -= n;
  }
  return static_cast<uint32_t>(c);
}

#if defined(__x86_64__)
namespace {

// Below this many bytes zlib's table code is as fast.
constexpr size_t kMinFold = 256;

#define STRIPEFS_CLMUL __attribute__((target("pclmul,sse4.1")))

STRIPEFS_CLMUL inline __m128i Fold(__m128i x, __m128i k, __m128i data) {
  __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(lo, hi), data);
}

STRIPEFS_CLMUL inline __m128i Load(const char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// The bit-reflected CRC register (not inverted) over len bytes; len >= 64
// and a multiple of 16. The folding constants are x^(k) mod P for the
// reflected polynomial 0xEDB88320 ("Fast CRC Computation for Generic
// Polynomials Using PCLMULQDQ", Intel, 2009; the same values as the Linux
// kernel's crc32-pclmul and Chromium's zlib).
STRIPEFS_CLMUL uint32_t FoldCrc(uint32_t reg, const char* p, size_t len) {
  const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
  const __m128i k3k4 = _mm_set_epi64x(0xccaa009e, 0x1751997d0);
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
  const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);
  const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);

  __m128i x1 = _mm_xor_si128(Load(p), _mm_cvtsi32_si128(static_cast<int>(reg)));
  __m128i x2 = Load(p + 16);
  __m128i x3 = Load(p + 32);
  __m128i x4 = Load(p + 48);
  p += 64;
  len -= 64;
  while (len >= 64) {
    x1 = Fold(x1, k1k2, Load(p));
    x2 = Fold(x2, k1k2, Load(p + 16));
    x3 = Fold(x3, k1k2, Load(p + 32));
    x4 = Fold(x4, k1k2, Load(p + 48));
    p += 64;
    len -= 64;
  }
  // Four lanes into one, then the remaining 16-byte blocks.
  x1 = Fold(x1, k3k4, x2);
  x1 = Fold(x1, k3k4, x3);
  x1 = Fold(x1, k3k4, x4);
  while (len >= 16) {
    x1 = Fold(x1, k3k4, Load(p));
    p += 16;
    len -= 16;
  }
  // 128 -> 64 bits (appending 32 zero bits), 64 -> 32 bits.
  __m128i t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
  t = _mm_srli_si128(x1, 4);
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00);
  x1 = _mm_xor_si128(x1, t);
  // Barrett reduction to the 32-bit remainder.
  t = x1;
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
  x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x00);
  x1 = _mm_xor_si128(x1, t);
  return static_cast<uint32_t>(_mm_extract_epi32(x1, 1));
}

bool DetectClmul() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

const bool kHaveClmul = DetectClmul();

}  // namespace

bool Crc32Accelerated() { return kHaveClmul; }

uint32_t Crc32(uint32_t crc, const char* data, size_t len) {
  if (!kHaveClmul || len < kMinFold) return Crc32Zlib(crc, data, len);
  // zlib's value is the inverted register.
  const size_t n = len & ~size_t{15};
  crc = ~FoldCrc(~crc, data, n);
  return Crc32Zlib(crc, data + n, len - n);
}

#else  // !__x86_64__

bool Crc32Accelerated() { return false; }

uint32_t Crc32(uint32_t crc, const char* data, size_t len) {
  return Crc32Zlib(crc, data, len);
}

#endif

}  // namespace stripefs::rpc
