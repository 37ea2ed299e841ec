"""ONNX Runtime figures from a finished Fashion-MNIST `cnn` run, on the CPU at hand.

    edgesmith run benchmarks/fashion_cnn.toml
    python benchmarks/onnx_runtime.py runs/fashion-mnist-cnn

Prints the CPU's int8-relevant features; the ORT int8/fp32 p50 ratio (batch 1, one thread,
interleaved in one process); the max abs difference between fp32 ONNX and fp32 TFLite outputs
on the whole test split; and, for ORT's own static int8 (PTQ) and the QAT route (the int8
TFLite file converted to ONNX), both with 8-bit and with 7-bit weights (`reduce_range`):
accuracy as the fused kernels compute it on this CPU, accuracy of the exact integer math (what
a CPU with VNNI or ARM dot product computes), top-1 agreement with the full model, agreement of
the fused kernels with the exact math, and p50 latency.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _runs import find, goal, load_run, run_dataset  # noqa: E402

from toolkit.benchmark.compare import interleaved_latency  # noqa: E402
from toolkit.benchmark.runners import OnnxRuntimeRunner, open_runner, predict  # noqa: E402
from toolkit.checks.int8_kernels import kernel_agreement  # noqa: E402
from toolkit.converters.onnx import export_tflite, quantize_static  # noqa: E402
from toolkit.cpu_features import cpu_features, describe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--variant", default="baseline")
    parser.add_argument("--qat-variant", default="qat")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    records, _ = load_run(args.run_dir)
    data = run_dataset(args.run_dir)
    print(f"CPU: {describe(cpu_features())}")
    print(f"     missing: {' '.join(cpu_features()['missing']) or '-'}\n")

    fp32 = args.run_dir / find(records, args.variant, "onnx-cpu", "fp32")["path"]
    int8 = args.run_dir / find(records, args.variant, "onnx-cpu", "int8")["path"]
    fp32_latency, int8_latency = interleaved_latency([fp32, int8], data.x_test, threads=1, rounds=args.rounds)
    ratio = int8_latency.p50 / fp32_latency.p50
    print(f"ORT fp32 p50 {fp32_latency.p50:.4f} ms, int8 (as exported) {int8_latency.p50:.4f} ms: "
          f"int8/fp32 {ratio:.3f} (goal < 1: {goal(ratio < 1)})")
    tflite = args.run_dir / find(records, args.variant, "cpu", "fp32")["path"]
    difference = float(np.abs(predict(open_runner(fp32), data.x_test) - predict(open_runner(tflite), data.x_test)).max())
    print(f"fp32 ONNX vs fp32 TFLite on {len(data.x_test)} test samples: max abs output difference {difference:.2e} "
          f"(goal ≤ 1e-4: {goal(difference <= 1e-4)})\n")

    reference = np.load(args.run_dir / "baseline" / "reference_outputs.npy").argmax(axis=1)
    config = json.loads((args.run_dir / "manifest.json").read_text())["config"]
    calibration = data.calibration_sample(config["calibration_samples"], config["seed"])
    qat_tflite = args.run_dir / find(records, args.qat_variant, "cpu", "int8")["path"]
    with tempfile.TemporaryDirectory(prefix="edgesmith-bench-") as folder:
        folder = Path(folder)
        builds = {
            f"{args.variant} PTQ (ORT static)": lambda out, seven: quantize_static(fp32, out, calibration, seven),
            f"{args.qat_variant} (int8 TFLite → ONNX)": lambda out, seven: export_tflite(qat_tflite, out, reduce_range=seven),
        }
        print(f"{'int8 ONNX':34} {'weights':7} {'acc here':>9} {'acc exact':>9} {'agree full':>10} "
              f"{'kernels=exact':>13} {'p50 ms':>8}")
        for index, (label, build) in enumerate(builds.items()):
            paths = [build(folder / f"{index}_{bits}.onnx", bits == 7) for bits in (8, 7)]
            latencies = interleaved_latency(paths, data.x_test, threads=1, rounds=args.rounds)
            for bits, path, latency in zip((8, 7), paths, latencies):
                fused = predict(OnnxRuntimeRunner(path), data.x_test).argmax(1)
                exact = predict(OnnxRuntimeRunner(path, fuse_qdq=False), data.x_test).argmax(1)
                kernels = kernel_agreement(path, data.x_test, samples=len(data.x_test))
                print(f"{label:34} {bits}-bit {(fused == data.y_test).mean() * 100:9.2f} "
                      f"{(exact == data.y_test).mean() * 100:9.2f} {(fused == reference).mean() * 100:10.2f} "
                      f"{kernels['top1'] * 100:13.2f} {latency.p50:8.4f}")
    print("\nacc here: accuracy as ONNX Runtime's fused kernels compute it on this CPU; acc exact: the file's exact"
          "\ninteger math (what CPUs with VNNI or ARM dot product compute); kernels=exact: top-1 agreement of the two.")


if __name__ == "__main__":
    main()
