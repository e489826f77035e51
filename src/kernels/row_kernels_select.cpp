// Chooses the row-kernel table once per process: the config table below lists the ISAs fastest
// first, the reference last; the first whose CPU check passes wins, unless LEANEMBED_ISA or
// kernels_force_isa() names one.

#include <atomic>
#include <cstdlib>
#include <string>

#include "kernels/kernels.h"
#include "kernels/row_kernels_tables.h"
#include "leanembed/error.h"

namespace leanembed::kernels {

namespace {

struct IsaEntry {
  const char* name;
  bool (*available)();
  const RowKernels& (*table)();
};

bool always() { return true; }

// Fastest first; the reference last (it always runs).
const IsaEntry kIsas[] = {
    {"avx2", cpu_has_avx2_fma, row_kernels_avx2},
    {"ref", always, row_kernels_reference},
};

const RowKernels* best_available() {
  for (const IsaEntry& isa : kIsas)
    if (isa.available()) return &isa.table();
  return &row_kernels_reference();
}

// Table by name; null if unknown or not runnable here. "auto" = best available.
const RowKernels* by_name(const std::string& name) {
  if (name == "auto") return best_available();
  for (const IsaEntry& isa : kIsas)
    if (name == isa.name) return isa.available() ? &isa.table() : nullptr;
  return nullptr;
}

std::string known_names() {
  std::string names = "auto";
  for (const IsaEntry& isa : kIsas) names += std::string(", ") + isa.name;
  return names;
}

std::atomic<const RowKernels*> g_current{nullptr};

}  // namespace

const RowKernels& row_kernels_startup_choice() {
  const char* env = std::getenv("LEANEMBED_ISA");
  if (!env || !*env) return *best_available();
  if (const RowKernels* table = by_name(env)) return *table;
  throw Error(ErrorCode::invalid_argument,
              std::string("environment variable LEANEMBED_ISA: expected one of ") + known_names() +
                  " runnable on this CPU, found \"" + env + "\"");
}

const RowKernels& row_kernels() {
  const RowKernels* table = g_current.load(std::memory_order_acquire);
  if (!table) {
    table = &row_kernels_startup_choice();
    const RowKernels* expected = nullptr;
    if (!g_current.compare_exchange_strong(expected, table, std::memory_order_acq_rel)) table = expected;
  }
  return *table;
}

bool kernels_force_isa(const std::string& name) {
  const RowKernels* table = by_name(name);
  if (!table) return false;
  g_current.store(table, std::memory_order_release);
  return true;
}

}  // namespace leanembed::kernels
