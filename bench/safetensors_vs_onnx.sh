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
echo "| measure | file | wall s (median) | CPU s (median) | peak RSS MB (median, min-max) |"
echo "|---|---|---:|---:|---:|"
for label in first all; do
  for format in onnx safetensors; do
    awk -v l="$label" -v f="$format" '$1 == l && $2 == f { w[n] = $3; c[n] = $4; m[n] = $5; n++ }
      function med(a, n,   i, j, t) { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return a[int(n / 2)] }
      END { lo = m[0]; hi = m[0]; for (i = 0; i < n; i++) { if (m[i] < lo) lo = m[i]; if (m[i] > hi) hi = m[i] }
            printf "| %s | %s | %.2f | %.2f | %.1f (%.1f-%.1f) |\n", (l == "first" ? "load to first vector" : "embed all texts"), f,
                   med(w, n), med(c, n), med(m, n) / 1024, lo / 1024, hi / 1024 }' "$work/rows"
  done
done
