"""int8 / fp32 p50 latency ratio of a run's TFLite files (batch 1, one thread, one process).

    edgesmith run --dataset fashion-mnist --model cnn
    python benchmarks/ptq_latency.py runs/fashion-mnist-cnn

Goal (foundation issue): ratio ≤ 0.5.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, run_dataset  # noqa: E402

from toolkit.benchmark.compare import interleaved_latency  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    fp32 = args.run_dir / args.target / f"{args.variant}__fp32.tflite"
    int8 = args.run_dir / args.target / f"{args.variant}__int8.tflite"
    dataset = run_dataset(args.run_dir)
    fp32_latency, int8_latency = interleaved_latency([fp32, int8], dataset.x_test, threads=1, rounds=args.rounds)
    print(f"fp32 {fp32}: p50 {fp32_latency.p50:.4f} ms (95% CI {fp32_latency.ci95_p50[0]:.4f}–{fp32_latency.ci95_p50[1]:.4f})")
    print(f"int8 {int8}: p50 {int8_latency.p50:.4f} ms (95% CI {int8_latency.ci95_p50[0]:.4f}–{int8_latency.ci95_p50[1]:.4f})")
    ratio = int8_latency.p50 / fp32_latency.p50
    print(f"int8/fp32 p50 ratio: {ratio:.3f}  (goal ≤ 0.5: {goal(ratio <= 0.5)})")


if __name__ == "__main__":
    main()
