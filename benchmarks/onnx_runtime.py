"""ONNX Runtime figures of the ONNX issue, from a finished Fashion-MNIST `cnn` run.

    edgesmith run benchmarks/fashion_cnn.toml
    python benchmarks/onnx_runtime.py runs/fashion-mnist-cnn

Prints the ORT int8/fp32 p50 ratio (batch 1, one thread, interleaved in one process), the ORT
int8 accuracy drop, and the max abs difference between fp32 ONNX and fp32 TFLite outputs on
the whole test split.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _runs import find, goal, load_run, run_dataset  # noqa: E402

from toolkit.bench.compare import interleaved_latency  # noqa: E402
from toolkit.bench.runners import open_runner, predict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    records, _ = load_run(args.run_dir)
    fp32 = args.run_dir / find(records, args.variant, "onnx-cpu", "fp32")["path"]
    int8_record = find(records, args.variant, "onnx-cpu", "int8")
    int8 = args.run_dir / int8_record["path"]
    data = run_dataset(args.run_dir)

    fp32_latency, int8_latency = interleaved_latency([fp32, int8], data.x_test, threads=1, rounds=args.rounds)
    ratio = int8_latency.p50 / fp32_latency.p50
    print(f"ORT fp32 p50 {fp32_latency.p50:.4f} ms (95% CI {fp32_latency.ci95_p50[0]:.4f}–{fp32_latency.ci95_p50[1]:.4f})")
    print(f"ORT int8 p50 {int8_latency.p50:.4f} ms (95% CI {int8_latency.ci95_p50[0]:.4f}–{int8_latency.ci95_p50[1]:.4f})")
    print(f"ORT int8/fp32 p50 ratio: {ratio:.3f} (goal < 1: {goal(ratio < 1)})")
    drop = int8_record["accuracy_drop_pp"]
    print(f"ORT int8 accuracy {int8_record['accuracy'] * 100:.2f}%, drop {drop:+.2f} pp (goal ≤ 1.0: {goal(drop <= 1.0)}), "
          f"top-1 agreement with the full model {int8_record['agreement'] * 100:.2f}%")

    tflite = args.run_dir / find(records, args.variant, "cpu", "fp32")["path"]
    onnx_scores = predict(open_runner(fp32), data.x_test)
    tflite_scores = predict(open_runner(tflite), data.x_test)
    difference = float(np.abs(onnx_scores - tflite_scores).max())
    print(f"fp32 ONNX vs fp32 TFLite on {len(data.x_test)} test samples: max abs output difference {difference:.2e} "
          f"(goal ≤ 1e-4: {goal(difference <= 1e-4)})")



if __name__ == "__main__":
    main()
