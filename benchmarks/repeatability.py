"""Are the reported intervals on p50 honest? Benchmark the files once (the "report"), then
re-benchmark them N more times and count how many p50s land inside the reported intervals.
Goal: at least 9 of 10 inside the repeat interval (`repeat95_p50`). The confidence interval of
the median (`ci95_p50`) is printed too: it is narrower by design (a repeat has noise of its
own), so expect about 8 of 10 there. Measured with the pipeline's plan (adaptive, its default
width and budget per artifact) unless `--target-width 0` asks for the fixed plan of `--runs`.
The files are timed as `edgesmith run` times a run's files: together, their sessions
interleaved; `--alone` times each file by itself, one after the other (the method before).

    python benchmarks/repeatability.py runs/digits-cnn/cpu/*.tflite runs/digits-cnn/onnx-cpu/*.onnx
    python benchmarks/repeatability.py --target-width 0 --runs 1000 MODEL...   # the fixed plan
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, zero_input  # noqa: E402

from toolkit.benchmark.device_bench import BenchSettings, measure_interleaved, measure_latency  # noqa: E402
from toolkit.config import Experiment  # noqa: E402

PIPELINE = Experiment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--runs", type=int, default=PIPELINE.bench_runs,
                        help="fixed plan: timed invokes per benchmark; adaptive: a tenth of it per session (bench_runs)")
    parser.add_argument("--target-width", type=float, default=PIPELINE.bench_target_width,
                        help="bench_target_width (0: the fixed plan)")
    parser.add_argument("--budget-s", type=float, default=PIPELINE.bench_budget_s, help="bench_budget_s of the adaptive plan")
    parser.add_argument("--alone", action="store_true", help="time each file by itself, not interleaved with the others")
    args = parser.parse_args()
    budget = args.budget_s if args.target_width else 60
    settings = BenchSettings(runs=args.runs, threads=1, batch=1, budget_s=budget, target_width=args.target_width)
    files = [(path, zero_input(path)) for path in args.models]
    print(f"plan: {'adaptive, ±' + format(args.target_width, '.1%') + f' or {budget:g} s' if args.target_width else 'fixed'}, "
          f"runs {args.runs}; {'each file timed alone' if args.alone else f'{len(files)} files, sessions interleaved'}")
    if args.alone:
        measure = lambda: [measure_latency(path, sample, settings) for path, sample in files]  # noqa: E731
    else:
        measure = lambda: measure_interleaved(files, settings)  # noqa: E731
    reported, *repeats = (measure() for _ in range(args.repeats + 1))
    met = 0
    for index, (path, _) in enumerate(files):
        report, again = reported[index], [figures[index] for figures in repeats]
        print(f"{path}: reported p50 {report.p50:.4f} ms ({report.runs} runs in {report.sessions} sessions, "
              f"stopped by {report.stopped_by})")
        print(f"  repeats: {' '.join(f'{r.p50:.4f}' for r in again)}")
        print(f"  repeats' sessions: {' '.join(str(r.sessions) for r in again)}")
        for name, (low, high) in (("ci95_p50", report.ci95_p50), ("repeat95_p50", report.repeat95_p50)):
            inside = sum(low <= r.p50 <= high for r in again)
            verdict = f" (goal ≥ 9 of 10: {goal(inside >= 0.9 * args.repeats)})" if name == "repeat95_p50" else ""
            met += name == "repeat95_p50" and inside >= 0.9 * args.repeats
            print(f"  {name} {low:.4f}–{high:.4f}: {inside} of {args.repeats} repeats inside{verdict}")
    print(f"files whose repeat95_p50 held ≥ 9 of {args.repeats} repeats: {met} of {len(files)}")


if __name__ == "__main__":
    main()
