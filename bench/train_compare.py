#!/usr/bin/env python3
"""Per-step training time of the reference models, Tessera vs PyTorch, side by side.

Runs `tessera train --time-steps N` and bench/peers/torch_train.py --time-steps N (and, with
--compile, the torch.compile'd twin) in alternation (A B A B ...), `--rounds` times per model, so
drift of a shared machine hits every system alike; each run reports the median of N timed steps
after 3 warm-up steps (compilation and warm-up excluded). Prints a Markdown table with the median
over rounds of the per-run medians, the spread (min-max of the per-run medians) and the ratio
peer / Tessera (> 1: Tessera is faster).

  .venv-bench/bin/python bench/train_compare.py --threads 2 --rounds 3 --steps 20 [--json out.json]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [l for l in p.stdout.splitlines() if l.startswith("step_ms")]
    if p.returncode != 0 or not line:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return float(re.search(r"median=([0-9.]+)", line[-1]).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mlp,cnn,gpt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tessera", default=os.path.join(ROOT, "build", "tessera"))
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    torch_env = dict(env)
    torch_env.pop("OPENBLAS_CORETYPE", None)  # PyTorch's CPU wheel does not use OpenBLAS for these ops; be safe
    systems = {
        "tessera": lambda m: run([args.tessera, "train", "--model", m, "--time-steps", str(args.steps),
                                  "--threads", str(args.threads), "--progress", "off"], env),
        "pytorch": lambda m: run([sys.executable, os.path.join(ROOT, "bench/peers/torch_train.py"), "--model", m,
                                  "--time-steps", str(args.steps), "--threads", str(args.threads)], torch_env),
    }
    if args.compile:
        systems["torch.compile"] = lambda m: run(
            [sys.executable, os.path.join(ROOT, "bench/peers/torch_train.py"), "--model", m, "--time-steps",
             str(args.steps), "--threads", str(args.threads), "--compile"], torch_env)

    records = []
    rows = []
    for model in args.models.split(","):
        meds = {s: [] for s in systems}
        for r in range(args.rounds):
            for s, fn in systems.items():
                meds[s].append(fn(model))
                print(f"  {model} round {r + 1}: {s} {meds[s][-1]:.2f} ms", file=sys.stderr, flush=True)
        t = statistics.median(meds["tessera"])
        for s, v in meds.items():
            m = statistics.median(v)
            records.append({"workload": f"train step {model}", "system": s, "median": m, "min": min(v),
                            "max": max(v), "unit": "ms"})
            if s != "tessera":
                rows.append((model, t, f"{min(meds['tessera']):.1f}-{max(meds['tessera']):.1f}", s, m,
                             f"{min(v):.1f}-{max(v):.1f}", m / t))
    print(f"\nTraining step (forward, backward, optimizer), {args.threads} threads, medians of {args.rounds} "
          f"interleaved runs x {args.steps} steps\n")
    print("| model | Tessera ms | spread | peer | peer ms | spread | peer/Tessera |")
    print("|---|---|---|---|---|---|---|")
    for m, t, ts_, s, v, vs, ratio in rows:
        print(f"| {m} | {t:.2f} | {ts_} | {s} | {v:.2f} | {vs} | {ratio:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
