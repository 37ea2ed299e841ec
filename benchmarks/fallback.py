"""What selective float fallback buys and costs, on Fashion-MNIST.

    python benchmarks/fallback.py [--epochs 5] [--rounds 30]

Trains the quantization-hostile MLP of toolkit.quant_debug.hostile on Fashion-MNIST (one
layer whose int8 weight scales are blown up by planted outliers the float model never uses),
then for TFLite (cpu) and ONNX (onnx-cpu): the int8 drop, the drop with `auto` fallback
(the layers it kept float), and mixed/int8 size and p50 (batch 1, one thread, interleaved).
Goal (issue 15): the hostile layer ranked first; auto recovers ≥ half the loss with ≤ 2 float layers.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from toolkit.benchmark.compare import interleaved_latency
from toolkit.data import load_dataset
from toolkit.quant_debug import explain_model, parse_fallback
from toolkit.quant_debug.hostile import build_hostile
from toolkit.targets import load_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    start = time.perf_counter()
    data = load_dataset("fashion-mnist")
    model = build_hostile(data, epochs=args.epochs)
    with tempfile.TemporaryDirectory(prefix="edgesmith-fallback-") as folder:
        for target in ("cpu", "onnx-cpu"):
            result = explain_model(model, load_target(target), data, Path(folder) / target, parse_fallback("auto:2"))
            int8, mixed = result.steps[0], result.steps[-1]
            int8_latency, mixed_latency = interleaved_latency([Path(int8.path), Path(mixed.path)], data.x_test,
                                                              threads=1, rounds=args.rounds)
            lost = (result.float_accuracy - int8.accuracy) * 100
            mixed_drop = (result.float_accuracy - mixed.accuracy) * 100
            print(f"{target} ({result.format}): float {result.float_accuracy * 100:.2f}%, worst layer "
                  f"`{result.layers[0].name}` ({result.layers[0].share * 100:.0f}% of the error)")
            print(f"  int8 drop {lost:.2f} pp; mixed (float: {', '.join(mixed.float_layers) or 'none'}) drop {mixed_drop:.2f} pp")
            print(f"  mixed/int8 size {mixed.size_bytes / 1024:.1f} / {int8.size_bytes / 1024:.1f} KB = "
                  f"{mixed.size_bytes / int8.size_bytes:.2f}; p50 {mixed_latency.p50:.4f} / {int8_latency.p50:.4f} ms = "
                  f"{mixed_latency.p50 / int8_latency.p50:.2f}")
            recovered = result.layers[0].layer == "hostile" and len(mixed.float_layers) <= 2 and lost - mixed_drop >= lost / 2
            print(f"  goal (hostile first, ≥ half recovered, ≤ 2 float layers): {'met' if recovered else 'NOT met'}")
            print(f"  {result.findings()}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
