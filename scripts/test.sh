#!/usr/bin/env bash
# Builds and runs every test: the optimized build's suite, the Node.js package's tests
# (bindings/node) on that build, the same C++ suite under ASan+UBSan, and a short run of each
# libFuzzer target. Exits non-zero on any failure.
#   scripts/test.sh            everything
#   LEANEMBED_TEST_STAGES="release" scripts/test.sh   only some stages (release, node, sanitize, fuzz)
#   LEANEMBED_FUZZ_SCALE=10 scripts/test.sh           the fuzz stage runs 10x fuzz/ci_runs.txt's counts
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stages=${LEANEMBED_TEST_STAGES:-"release node sanitize fuzz"}
jobs=$(nproc)
# Tests run in parallel on few cores: OpenMP threads that spin while another test holds the core
# slow everything down many times over; let them sleep instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# The full-size MiniLM int8 / fp16 / q4 files are a recipe in ../shared (make-variants); make them
# once for every stage (tests read LEANEMBED_VARIANTS_DIR, see tests/test_support.h).
variants="$root/build/variants/minilm-l6-synthetic"
if [ -z "${LEANEMBED_VARIANTS_DIR:-}" ]; then
  if [ ! -f "$variants/onnx/model_q4.onnx" ]; then
    echo "=== making the MiniLM variants ($variants)"
    rm -rf "$variants"; mkdir -p "$(dirname "$variants")"
    rm -rf "$variants.tmp"
    "$root/../shared/tools/make-variants" "$root/../shared/models/minilm-l6-synthetic" "$variants.tmp" int8,fp16,q4 >/dev/null
    mv "$variants.tmp" "$variants"
  fi
  export LEANEMBED_VARIANTS_DIR="$variants"
fi
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)

run_stage() {  # name, build dir, ctest args, configure command...
  local name=$1 dir=$2 ctest_args=$3; shift 3
  echo "=== test stage: $name ($dir)"
  "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" $ctest_args)
}

for stage in $stages; do
  case $stage in
    release)
      run_stage release build/release "" scripts/configure-release.sh ;;
    sanitize)
      # Left out here: tests labelled "heavy" (the full-size model through the slow interpreter:
      # minutes under the sanitizers, no coverage the tiny model does not give) and "memory" (RSS
      # figures, meaningless with the sanitizers' allocators); the release stage runs both.
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      run_stage sanitize build/sanitize "-LE heavy|memory" cmake -S . -B build/sanitize "${gen[@]}" \
        -DCMAKE_BUILD_TYPE=Debug -DLEANEMBED_SANITIZERS=ON -DLEANEMBED_BENCH=OFF ;;
    node)
      # The addon is built in the release tree (-DLEANEMBED_NODE=ON: the libraries that build
      # made, no second compile), then node's test runner runs bindings/node/test/.
      echo "=== test stage: node (build/release, bindings/node)"
      scripts/configure-release.sh >/dev/null
      cmake --build build/release -j "$jobs" --target leanembed_node
      (cd bindings/node && LEANEMBED_NODE_ADDON="$root/build/release/bindings/node/leanembed.node" \
        node --test --test-concurrency=1 test/*.test.cjs) ;;
    fuzz)
      echo "=== test stage: fuzz (build/fuzz)"
      CXX=clang++-14 CC=clang-14 cmake -S . -B build/fuzz "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DLEANEMBED_FUZZ=ON -DLEANEMBED_TESTS=OFF -DLEANEMBED_BENCH=OFF >/dev/null
      cmake --build build/fuzz -j "$jobs" --target fuzz_targets
      "$root/fuzz/run_all.sh" build/fuzz "${LEANEMBED_FUZZ_SCALE:-1}" ;;
    *) echo "unknown stage '$stage'" >&2; exit 2 ;;
  esac
done
echo "=== all test stages passed: $stages"
