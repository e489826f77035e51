#!/usr/bin/env python3
"""Wall and CPU time of load to first vector, onnx vs safetensors, for one or more CLI builds, alternating.

Usage: bench/load_cpu_rounds.py [--rounds N] [--model DIR] LABEL=CLI [LABEL=CLI ...]
Each round runs every CLI on `embed --model DIR --model-format onnx|safetensors --threads 2 "one
sentence"` (OMP_WAIT_POLICY=passive unless set) and reads user and system CPU time from wait4's
rusage (microseconds, unlike /usr/bin/time's 10 ms), and the wall time from spawn to exit
(time.perf_counter). Prints medians, and per CLI the median of the per-round safetensors - onnx
differences ("paired"), which a loaded machine disturbs least. The order of the two files
alternates from round to round.
"""
import argparse, os, statistics, subprocess, time

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=21)
ap.add_argument("--model", default=os.path.join(here, "..", "..", "shared", "models", "minilm-l6-synthetic"))
ap.add_argument("clis", nargs="+", metavar="LABEL=CLI")
args = ap.parse_args()
clis = [c.split("=", 1) for c in args.clis]
env = dict(os.environ)
env.setdefault("OMP_WAIT_POLICY", "passive")
rows = []
for r in range(args.rounds):
    for label, cli in clis:
        for fmt in (("onnx", "safetensors") if r % 2 == 0 else ("safetensors", "onnx")):
            t0 = time.perf_counter()
            p = subprocess.Popen([cli, "embed", "--model", args.model, "--model-format", fmt, "--threads", "2",
                                  "one sentence"], stdout=subprocess.DEVNULL, env=env)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            if status != 0:
                raise SystemExit(f"{cli} --model-format {fmt} failed (status {status})")
            rows.append((label, fmt, ru.ru_utime, ru.ru_stime, wall))
print(f"model {args.model}; {args.rounds} rounds, alternating; 2 threads")
print("| CLI | file | wall ms (median) | paired wall, safetensors - onnx, ms (median) | user + sys ms (median) | "
      "paired CPU, safetensors - onnx, ms (median) |")
print("|---|---|---:|---:|---:|---:|")
for label, _ in clis:
    def of(fmt, field):
        return [(row[2] + row[3]) if field == "cpu" else row[4] for row in rows if row[0] == label and row[1] == fmt]
    for fmt in ("onnx", "safetensors"):
        wall, cpu = of(fmt, "wall"), of(fmt, "cpu")
        paired_wall = paired_cpu = ""
        if fmt == "safetensors":
            paired_wall = f"{statistics.median(a - b for a, b in zip(wall, of('onnx', 'wall'))) * 1e3:+.1f}"
            paired_cpu = f"{statistics.median(a - b for a, b in zip(cpu, of('onnx', 'cpu'))) * 1e3:+.1f}"
        print(f"| {label} | {fmt} | {statistics.median(wall) * 1e3:.1f} | {paired_wall} | "
              f"{statistics.median(cpu) * 1e3:.1f} | {paired_cpu} |")
