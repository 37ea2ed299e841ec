"""Is the reported 95% interval on p50 honest? Benchmark a file once (the "report"), then
re-benchmark it N more times with fresh interpreters and count how many p50s land inside the
reported interval. Goal: at least 9 of 10.

    python benchmarks/repeatability.py runs/fashion-mnist-cnn/cpu/baseline__fp32.tflite \
        runs/fashion-mnist-cnn/cpu/baseline__int8.tflite
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from toolkit.bench.harness import BenchSettings, measure_latency
from toolkit.bench.runners import open_runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1000, help="timed invokes per benchmark (the pipeline's bench_runs)")
    args = parser.parse_args()
    for path in args.models:
        sample = np.zeros((1, *open_runner(path).input_shape), dtype=np.float32)
        settings = BenchSettings(runs=args.runs, threads=1, batch=1, budget_s=60)
        reported = measure_latency(path, sample, settings)
        low, high = reported.ci95_p50
        repeats = [measure_latency(path, sample, settings).p50 for _ in range(args.repeats)]
        inside = sum(low <= p50 <= high for p50 in repeats)
        print(f"{path}: reported p50 {reported.p50:.4f} ms, 95% CI {low:.4f}–{high:.4f}")
        print(f"  repeats: {' '.join(f'{p:.4f}' for p in repeats)}")
        print(f"  {inside} of {args.repeats} repeats inside the interval (goal ≥ 9 of 10: {'met' if inside >= 0.9 * args.repeats else 'NOT met'})")


if __name__ == "__main__":
    main()
