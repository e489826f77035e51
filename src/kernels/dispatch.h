// The one CPU dispatch of src/kernels. Every kernel family written for more than one instruction
// set has a table of function pointers per ISA (like XNNPACK's per-family config structs):
//
//   family                         tables (fastest first)      table type (header)
//   row kernels                    avx512, avx2, ref           RowKernels (kernels.h)
//   attention of one head          avx512, avx2, ref           AttentionKernels (attention.h)
//   q4 / f16 decoding layers       avx512, avx2, ref           DecodingKernels (encoded_linear_decoding.h)
//   int8 layer's row functions     avx512, ref                 Int8RowKernels (encoded_linear_int8_internal.h)
//   transposition (weight loading) avx2, ref                   TransposeKernels (transpose.h)
//
// kernel_config() holds one table per family, chosen together on first use: for each family the
// fastest table at or below the ISA level in effect whose CPU check (cpu_features.h) passes. The
// level in effect is LEANEMBED_ISA (ref, avx2 or avx512; unset, empty or auto = the best level this
// CPU runs), read once; a level this CPU cannot run, or an unknown name, throws
// Error(invalid_argument) on first use. kernels_force_isa() (kernels.h) switches the level at run
// time (tests, benchmarks). Model code never tests CPU features; kernel files never choose.
// oneDNN (fp32 matmul, int8 products) picks its own ISA; DNNL_MAX_CPU_ISA caps it.
#pragma once

#include <string>

namespace leanembed::kernels {

// ISA levels, each including the ones before: ref = baseline x86-64 (the scalar references),
// avx2 = AVX2 + FMA (+ F16C where a family needs it), avx512 = AVX-512F (+ BW/VL/DQ for int8).
enum class Isa { ref, avx2, avx512 };
inline constexpr int kIsaCount = 3;

const char* isa_name(Isa isa);  // "ref", "avx2", "avx512"
// Whether this CPU (and OS) runs the level: ref always, avx2 cpu_has_avx2_fma(), avx512 cpu_has_avx512f().
bool isa_runs(Isa isa);
// The highest level this CPU runs.
Isa isa_best();

struct RowKernels;
struct AttentionKernels;
struct DecodingKernels;
struct Int8RowKernels;
struct TransposeKernels;

struct KernelConfig {
  Isa isa = Isa::ref;  // the level these tables were chosen for
  const RowKernels* rows = nullptr;
  const AttentionKernels* attention = nullptr;
  const DecodingKernels* decoding = nullptr;  // q4 and f16 layers (EncodedLinear, Implementation::fast)
  const Int8RowKernels* int8_rows = nullptr;  // the int8 layer's activation quantizer and epilogue
  const TransposeKernels* transpose = nullptr;  // the safetensors loader's [out, in] -> [in, out]
};

// The tables in effect; never null members. Cheap (one atomic load).
const KernelConfig& kernel_config();
// The tables for `isa` (each family's fastest at or below it that this CPU runs), built once.
const KernelConfig& kernel_config_for(Isa isa);
// What kernel_config() starts with: the level LEANEMBED_ISA names, else isa_best(). Reads the
// environment on every call. Throws Error(invalid_argument) naming the variable, the value and the
// accepted names if the name is unknown or this CPU cannot run it.
const KernelConfig& kernel_config_startup_choice();
// "rows avx2, attention avx512, q4/f16 avx512, int8 rows avx512, transpose avx2": the table of each family.
std::string describe(const KernelConfig& config);

}  // namespace leanembed::kernels
