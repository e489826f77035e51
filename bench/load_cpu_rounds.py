#!/usr/bin/env python3
"""CPU time of load to first vector, onnx vs safetensors, for one or more CLI builds, alternating.

Usage: bench/load_cpu_rounds.py [--rounds N] [--model DIR] LABEL=CLI [LABEL=CLI ...]
Each round runs every CLI on `embed --model DIR --model-format onnx|safetensors --threads 2 "one
sentence"` (OMP_WAIT_POLICY=passive unless set) and reads user and system CPU time from wait4's
rusage (microseconds, unlike /usr/bin/time's 10 ms). Prints medians, and per CLI the median of the
per-round safetensors - onnx differences ("paired"), which a loaded machine disturbs least.
"""
import argparse, os, statistics, subprocess

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
for _ in range(args.rounds):
    for label, cli in clis:
        for fmt in ("onnx", "safetensors"):
            p = subprocess.Popen([cli, "embed", "--model", args.model, "--model-format", fmt, "--threads", "2",
                                  "one sentence"], stdout=subprocess.DEVNULL, env=env)
            _, status, ru = os.wait4(p.pid, 0)
            if status != 0:
                raise SystemExit(f"{cli} --model-format {fmt} failed (status {status})")
            rows.append((label, fmt, ru.ru_utime, ru.ru_stime))
print(f"model {args.model}; {args.rounds} rounds, alternating; 2 threads")
print("| CLI | file | user ms | sys ms | user + sys ms (median) | paired safetensors - onnx, ms (median) |")
print("|---|---|---:|---:|---:|---:|")
for label, _ in clis:
    onnx = [u + s for l, f, u, s in rows if l == label and f == "onnx"]
    for fmt in ("onnx", "safetensors"):
        sel = [(u, s) for l, f, u, s in rows if l == label and f == fmt]
        total = [u + s for u, s in sel]
        paired = ""
        if fmt == "safetensors":
            paired = f"{statistics.median(a - b for a, b in zip(total, onnx)) * 1e3:+.1f}"
        print(f"| {label} | {fmt} | {statistics.median(u for u, _ in sel) * 1e3:.1f} | "
              f"{statistics.median(s for _, s in sel) * 1e3:.1f} | {statistics.median(total) * 1e3:.1f} | {paired} |")
