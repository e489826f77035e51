// What this CPU and OS can run: the one place in src/kernels that asks CPUID and XCR0. Each answer is
// computed once (thread-safe static) and means "the instructions exist and the OS saves the
// registers they use". Kernel files compiled for an extension are called only after these checks.
#pragma once

namespace leanembed::kernels {

// AVX2 and FMA, with the YMM state saved (XCR0 bits 1-2).
bool cpu_has_avx2_fma();
// cpu_has_avx2_fma() and F16C (vcvtph2ps).
bool cpu_has_avx2_fma_f16c();
// cpu_has_avx2_fma_f16c() and AVX-512F, with the opmask and ZMM state saved (XCR0 bits 5-7).
bool cpu_has_avx512f();
// AVX-512 F, BW, VL and DQ with the opmask and ZMM state saved (the int8 quantizer's needs).
bool cpu_has_avx512_int8();

}  // namespace leanembed::kernels
