#!/usr/bin/env bash
# Prints load-to-first-vector and whole-run figures of the same model loaded from onnx/model.onnx and
# from model.safetensors, measured alternately in one run (so both see the same machine load).
# Usage: bench/safetensors_vs_onnx.sh [CLI] [MODEL_FOLDER] [TEXTS] [LIMIT] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cli=${1:-$here/build/release/tools/cli/leanembed}
model=${2:-$here/../shared/models/minilm-l6-synthetic}
texts=${3:-$here/../shared/corpus/sentences.txt}
limit=${4:-2000}
rounds=${5:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -n "$limit" "$texts" > "$work/texts.txt"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# time -f: wall seconds, user + system CPU seconds, peak RSS KB
measure() {  # format, label, extra args...
  local format=$1 label=$2; shift 2
  /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$cli" embed --model "$model" --model-format "$format" --threads 2 "$@" \
    >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r wall user sys rss < "$work/t"
  printf '%s %s %s %s %s\n' "$label" "$format" "$wall" "$(echo "$user + $sys" | bc)" "$rss" >> "$work/rows"
}
for ((r = 0; r < rounds; ++r)); do
  for format in onnx safetensors; do
    measure "$format" first "one sentence"
    measure "$format" all --input "$work/texts.txt" --format f32 -o "$work/v_$format.f32"
  done
done
cmp -s "$work/v_onnx.f32" "$work/v_safetensors.f32" && same="identical bytes" || same="differ"
echo "model $model; $limit texts of $texts; $rounds rounds, alternating; 2 threads; vectors: $same"
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print("| measure | file | wall s (median) | CPU s, user + sys (median) | peak RSS MB (median; min-max) |")
print("|---|---|---:|---:|---:|")
for label, text in (("first", "load to first vector"), ("all", "embed all texts")):
    for fmt in ("onnx", "safetensors"):
        sel = [r for r in rows if r[0] == label and r[1] == fmt]
        wall = statistics.median(float(r[2]) for r in sel)
        cpu = statistics.median(float(r[3]) for r in sel)
        rss = [float(r[4]) / 1024 for r in sel]
        print(f"| {text} | {fmt} | {wall:.2f} | {cpu:.2f} | {statistics.median(rss):.1f}; {min(rss):.1f}-{max(rss):.1f} |")
PY
