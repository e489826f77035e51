#!/usr/bin/env bash
# Configures build/release, the optimized build that bin/leanembed runs and scripts/test.sh tests:
# one place for its settings, so scripts/setup.sh and scripts/test.sh share one tree. The Node.js
# addon's target is in it too (its npm build tools come from scripts/setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B build/release "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DLEANEMBED_TESTS=ON -DLEANEMBED_BENCH=ON -DLEANEMBED_NODE=ON "$@"
