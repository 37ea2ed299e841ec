"""Microcontroller memory and accuracy: the static arena plan against TFLite Micro's own
recording allocator, and TFLM's accuracy against LiteRT's on the same int8 files.

    edgesmith run --targets cpu,mcu-cortex-m4,ethos-u55-128
    python benchmarks/mcu_memory.py runs/digits-cnn runs/fashion-mnist-cnn

For every int8 .tflite file of each run (Vela's compiled files excepted: they need the NPU):
    plan / head     static greedy plan of the activations / the arena TFLM planned for them
    est. / total    static arena estimate (plan + bookkeeping model) / TFLM's whole arena
    accuracy        on the run's whole test split: TFLM, LiteRT (default kernels with XNNPACK),
                    LiteRT reference kernels, and the top-1 agreement of TFLM with LiteRT

Goals (microcontroller issue): est. / total within 0.9–1.1; TFLM accuracy identical to LiteRT's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, run_dataset  # noqa: E402

from toolkit.benchmark.runners import LiteRTRunner, predict  # noqa: E402
from toolkit.benchmark.tflm import TFLMRunner, recorded_arena  # noqa: E402
from toolkit.checks.arena import plan_file  # noqa: E402


def int8_files(run_dir: Path) -> list[Path]:
    """The run's full-int8 TFLite files, one per target folder and variant."""
    files = sorted(run_dir.glob("*/*__int8.tflite"))
    return [path for path in files if path.parent.name != "best"]


def measure(path: Path, x: np.ndarray, y: np.ndarray) -> dict:
    plan = plan_file(path)
    micro = TFLMRunner(path)
    top1 = predict(micro, x).argmax(axis=1)
    arena = recorded_arena(micro)
    lite = predict(LiteRTRunner(path), x).argmax(axis=1)
    reference = predict(LiteRTRunner(path, reference_kernels=True), x).argmax(axis=1)
    return {
        "plan_ratio": plan.peak_activation_bytes / arena["head"], "estimate_ratio": plan.arena_bytes / arena["total"],
        "estimate": plan.arena_bytes, "total": arena["total"],
        "tflm": float((top1 == y).mean()), "litert": float((lite == y).mean()),
        "reference": float((reference == y).mean()), "agreement": float((top1 == lite).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    args = parser.parse_args()
    rows = []
    print(f"{'file':52} {'plan/head':>9} {'est.':>7} {'total':>7} {'est./total':>10} "
          f"{'TFLM %':>7} {'LiteRT %':>8} {'ref. %':>7} {'agree %':>7}")
    for run_dir in args.run_dirs:
        data = run_dataset(run_dir)
        for path in int8_files(run_dir):
            row = measure(path, data.x_test, data.y_test)
            rows.append(row)
            name = f"{run_dir.name}/{path.parent.name}/{path.name}"
            print(f"{name:52} {row['plan_ratio']:9.3f} {row['estimate']:7d} {row['total']:7d} {row['estimate_ratio']:10.3f} "
                  f"{row['tflm'] * 100:7.2f} {row['litert'] * 100:8.2f} {row['reference'] * 100:7.2f} "
                  f"{row['agreement'] * 100:7.2f}")
    ratios = [row["estimate_ratio"] for row in rows]
    identical = sum(row["tflm"] == row["litert"] for row in rows)
    print(f"\nstatic arena estimate / TFLM recorded arena: {min(ratios):.3f}–{max(ratios):.3f} over {len(rows)} files "
          f"(goal 0.9–1.1: {goal(all(0.9 <= ratio <= 1.1 for ratio in ratios))})")
    print(f"static activation plan / TFLM planned activations: "
          f"{min(row['plan_ratio'] for row in rows):.3f}–{max(row['plan_ratio'] for row in rows):.3f}")
    print(f"TFLM accuracy identical to LiteRT's (default kernels) in {identical} of {len(rows)} files "
          f"(goal all: {goal(identical == len(rows))}); identical to LiteRT's reference kernels in "
          f"{sum(row['tflm'] == row['reference'] for row in rows)} of {len(rows)}")


if __name__ == "__main__":
    main()
