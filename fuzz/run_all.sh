#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR, seeded from fuzz/corpus/<target>/ if present, for the number
# of executions fuzz/ci_runs.txt gives it, from libFuzzer seed 1 (the same inputs on every machine),
# times SCALE (default 1). Fails if a target crashes, or has no count in ci_runs.txt.
# Usage: fuzz/run_all.sh BUILD_DIR [SCALE]
set -euo pipefail
build=${1:?usage: run_all.sh BUILD_DIR [SCALE]}
scale=${2:-1}
case $scale in ''|*[!0-9]*|0) echo "fuzz: SCALE must be a positive integer, got '$scale'" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob
targets=("$build"/fuzz/fuzz_*)
if ((${#targets[@]} == 0)); then echo "fuzz: no targets built in $build/fuzz" >&2; exit 1; fi
for t in "${targets[@]}"; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  work=$(mktemp -d)
  seeds=()
  [ -d "$here/corpus/$name" ] && seeds+=("$here/corpus/$name")
  runs=$(awk -v t="$name" '$1 == t { print $2 }' "$here/ci_runs.txt")
  if [ -z "$runs" ]; then echo "fuzz: $name has no count in fuzz/ci_runs.txt" >&2; exit 1; fi
  runs=$((runs * scale))
  echo "fuzz: $name, $runs executions"
  mkdir -p "$work.artifacts"
  # A failure prints the input that caused it (base64), so that a run on a machine that is gone
  # (CI, scripts/check-fresh.sh's fresh root) can be reproduced.
  LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan-liblmdb.supp} \
  "$t" -runs="$runs" -seed=1 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work.artifacts/" "$work" "${seeds[@]}" 2>"$work.log" \
    || { tail -50 "$work.log"
         for a in "$work.artifacts"/*; do [ -f "$a" ] && echo "fuzz: $name input $(basename "$a") (base64): $(base64 -w0 "$a")"; done
         echo "fuzz: $name FAILED"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work.log" | sed "s/^/fuzz: $name /"
  rm -rf "$work" "$work.log" "$work.artifacts"
done
