#include "kernels/cpu_features.h"

#include <cpuid.h>

namespace leanembed::kernels {

namespace {

// CPUID.1:ECX.OSXSAVE set and XCR0 enabling every state bit in `mask`. (libgcc already requires OS
// support before it reports an extension; the check is here too so the rule is visible.)
bool os_saves(unsigned mask) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return false;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & mask) == mask;
}

constexpr unsigned kYmmState = 0x6u;   // SSE (bit 1), AVX (bit 2)
constexpr unsigned kZmmState = 0xE6u;  // and opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7)

}  // namespace

bool cpu_has_avx2_fma() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && os_saves(kYmmState);
  }();
  return supported;
}

bool cpu_has_avx2_fma_f16c() {
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return cpu_has_avx2_fma() && __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  }();
  return supported;
}

bool cpu_has_avx512f() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return cpu_has_avx2_fma_f16c() && __builtin_cpu_supports("avx512f") && os_saves(kZmmState);
  }();
  return supported;
}

bool cpu_has_avx512_int8() {
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && os_saves(kZmmState);
  }();
  return supported;
}

}  // namespace leanembed::kernels
