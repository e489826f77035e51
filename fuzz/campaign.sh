#!/usr/bin/env bash
# A long campaign of one fuzz target (issue 16, item 17: >= 10 million executions per target under
# ASan+UBSan): runs BUILD_DIR/fuzz/TARGET until it has executed RUNS inputs, seeded from
# fuzz/corpus/TARGET, growing a working corpus in WORK_DIR/TARGET/corpus (kept between runs: a
# second campaign continues from it). Prints the executions, the corpus size and any crash file
# (copy a crash into fuzz/corpus/TARGET as a regression input once it is fixed). Scratch files of
# the targets go to TMPDIR (use a tmpfs: /dev/shm).
#   fuzz/campaign.sh BUILD_DIR TARGET [RUNS=10000000] [WORK_DIR=/dev/shm/leanembed-fuzz]
# ASan keeps no allocation stacks (malloc_context_size=0: a large share of an allocation-heavy
# target's time); reproduce a crash with the target alone to get them. A run that takes longer than
# LEANEMBED_FUZZ_TIMEOUT seconds (120: a niced campaign waits for the CPU) is reported as a hang.
set -euo pipefail
build=${1:?usage: campaign.sh BUILD_DIR TARGET [RUNS] [WORK_DIR]}
target=${2:?usage: campaign.sh BUILD_DIR TARGET [RUNS] [WORK_DIR]}
runs=${3:-10000000}
work=${4:-/dev/shm/leanembed-fuzz}/$target
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/corpus" "$work/crashes"
seeds=()
[ -d "$here/corpus/$target" ] && seeds+=("$here/corpus/$target")
start=$(date +%s)
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0} LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan-liblmdb.supp} \
  "$build/fuzz/$target" -runs="$runs" -rss_limit_mb=2048 -timeout="${LEANEMBED_FUZZ_TIMEOUT:-120}" -print_final_stats=1 \
  -artifact_prefix="$work/crashes/" "$work/corpus" "${seeds[@]}" >"$work/log" 2>&1 || status=$?
executions=$(grep -E "stat::number_of_executed_units" "$work/log" | awk '{print $2}' | tail -1 || true)
# libFuzzer's artifacts: crash-, leak-, oom-, timeout- (failures) and slow-unit- (a run slower than
# 10 s, reported and fuzzing goes on: under nice, often only a wait for the CPU; rerun it alone).
failures=$(find "$work/crashes" -type f ! -name 'slow-unit-*' | wc -l)
slow=$(find "$work/crashes" -type f -name 'slow-unit-*' | wc -l)
echo "$target: ${executions:-?} executions in $(( $(date +%s) - start )) s, exit $status," \
     "corpus $(ls "$work/corpus" | wc -l) inputs, failures: $failures, slow units: $slow ($work/crashes)"
exit "$status"
