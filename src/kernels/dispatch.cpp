// The one CPU dispatch (dispatch.h): each family's tables listed fastest first with the level they
// belong to and the CPU check they need; kernel_config() is the set chosen for the level in effect.
#include "kernels/dispatch.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>

#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/encoded_linear_decoding.h"
#include "kernels/encoded_linear_int8_internal.h"
#include "kernels/kernels.h"
#include "kernels/row_kernels_tables.h"
#include "kernels/transpose.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

bool always() { return true; }

// One table of a family: the level it belongs to, the CPU check it needs, the table.
template <class Table>
struct Choice {
  Isa isa;
  bool (*runs)();
  const Table& (*table)();
};

// Fastest first; each list ends with the reference, which always runs.
const Choice<RowKernels> kRowKernels[] = {
    {Isa::avx512, cpu_has_avx512f, row_kernels_avx512},
    {Isa::avx2, cpu_has_avx2_fma, row_kernels_avx2},
    {Isa::ref, always, row_kernels_reference},
};
const Choice<AttentionKernels> kAttention[] = {
    {Isa::avx512, cpu_has_avx512f, attention_kernels_avx512},
    {Isa::avx2, cpu_has_avx2_fma, attention_kernels_avx2},
    {Isa::ref, always, attention_kernels_reference},
};
const Choice<DecodingKernels> kDecoding[] = {
    {Isa::avx512, cpu_has_avx512f, decoding_kernels_avx512},
    {Isa::avx2, cpu_has_avx2_fma_f16c, decoding_kernels_avx2},
    {Isa::ref, always, decoding_kernels_reference},
};
const Choice<Int8RowKernels> kInt8Rows[] = {
    {Isa::avx512, cpu_has_avx512_int8, int8_row_kernels_avx512},
    {Isa::ref, always, int8_row_kernels_reference},
};
const Choice<TransposeKernels> kTranspose[] = {
    {Isa::avx2, cpu_has_avx2_fma, transpose_kernels_avx2},
    {Isa::ref, always, transpose_kernels_reference},
};

template <class Table, std::size_t N>
const Table* pick(const Choice<Table> (&choices)[N], Isa level) {
  for (const Choice<Table>& c : choices)
    if (c.isa <= level && c.runs()) return &c.table();
  return &choices[N - 1].table();  // the reference
}

const Isa kLevels[kIsaCount] = {Isa::ref, Isa::avx2, Isa::avx512};

// A level by name; "auto" = the best this CPU runs. False if unknown.
bool parse(const std::string& name, Isa& isa) {
  if (name == "auto") {
    isa = isa_best();
    return true;
  }
  for (Isa level : kLevels)
    if (name == isa_name(level)) {
      isa = level;
      return true;
    }
  return false;
}

std::atomic<const KernelConfig*> g_current{nullptr};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::ref: break;
  }
  return "ref";
}

bool isa_runs(Isa isa) {
  switch (isa) {
    case Isa::avx2: return cpu_has_avx2_fma();
    case Isa::avx512: return cpu_has_avx512f();
    case Isa::ref: break;
  }
  return true;
}

Isa isa_best() {
  Isa best = Isa::ref;
  for (Isa level : kLevels)
    if (isa_runs(level)) best = level;
  return best;
}

const KernelConfig& kernel_config_for(Isa isa) {
  static const std::array<KernelConfig, kIsaCount> configs = [] {
    std::array<KernelConfig, kIsaCount> all;
    for (Isa level : kLevels)
      all[static_cast<int>(level)] = {level, pick(kRowKernels, level), pick(kAttention, level),
                                      pick(kDecoding, level), pick(kInt8Rows, level), pick(kTranspose, level)};
    return all;
  }();
  return configs[static_cast<int>(isa)];
}

const KernelConfig& kernel_config_startup_choice() {
  const char* env = std::getenv("LEANEMBED_ISA");
  if (!env || !*env) return kernel_config_for(isa_best());
  Isa isa = Isa::ref;
  if (parse(env, isa) && isa_runs(isa)) return kernel_config_for(isa);
  std::string names = "auto";
  for (Isa level : kLevels)
    if (isa_runs(level)) names += std::string(", ") + isa_name(level);
  throw Error(ErrorCode::invalid_argument,
              std::string("environment variable LEANEMBED_ISA: expected one of ") + names +
                  " (the levels this CPU runs), found \"" + env + "\"");
}

const KernelConfig& kernel_config() {
  const KernelConfig* config = g_current.load(std::memory_order_acquire);
  if (!config) {
    config = &kernel_config_startup_choice();
    const KernelConfig* expected = nullptr;
    if (!g_current.compare_exchange_strong(expected, config, std::memory_order_acq_rel)) config = expected;
  }
  return *config;
}

const RowKernels& row_kernels() { return *kernel_config().rows; }

bool kernels_force_isa(const std::string& name) {
  Isa isa = Isa::ref;
  if (name == "auto") {
    g_current.store(&kernel_config_startup_choice(), std::memory_order_release);
    return true;
  }
  if (!parse(name, isa) || !isa_runs(isa)) return false;
  g_current.store(&kernel_config_for(isa), std::memory_order_release);
  return true;
}

std::string describe(const KernelConfig& c) {
  return std::string("rows ") + c.rows->isa + ", attention " + c.attention->isa + ", q4/f16 " + c.decoding->isa +
         ", int8 rows " + c.int8_rows->isa + ", transpose " + c.transpose->isa;
}

}  // namespace leanembed::kernels
