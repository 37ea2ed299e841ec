"""Are the reported intervals on p50 honest? Benchmark a file once (the "report"), then
re-benchmark it N more times and count how many p50s land inside the reported intervals.
Goal: at least 9 of 10 inside the repeat interval (`repeat95_p50`). The confidence interval of
the median (`ci95_p50`) is printed too: it is narrower by design (a repeat has noise of its
own), so expect about 8 of 10 there.

    python benchmarks/repeatability.py runs/fashion-mnist-cnn/cpu/baseline__fp32.tflite \
        runs/fashion-mnist-cnn/cpu/baseline__int8.tflite
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, zero_input  # noqa: E402

from toolkit.benchmark.device_bench import BenchSettings, measure_latency  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1000, help="timed invokes per benchmark (the pipeline's bench_runs)")
    args = parser.parse_args()
    settings = BenchSettings(runs=args.runs, threads=1, batch=1, budget_s=60)
    for path in args.models:
        sample = zero_input(path)
        reported = measure_latency(path, sample, settings)
        repeats = [measure_latency(path, sample, settings).p50 for _ in range(args.repeats)]
        print(f"{path}: reported p50 {reported.p50:.4f} ms")
        print(f"  repeats: {' '.join(f'{p:.4f}' for p in repeats)}")
        for name, (low, high) in (("ci95_p50", reported.ci95_p50), ("repeat95_p50", reported.repeat95_p50)):
            inside = sum(low <= p50 <= high for p50 in repeats)
            verdict = f" (goal ≥ 9 of 10: {goal(inside >= 0.9 * args.repeats)})" if name == "repeat95_p50" else ""
            print(f"  {name} {low:.4f}–{high:.4f}: {inside} of {args.repeats} repeats inside{verdict}")


if __name__ == "__main__":
    main()
