"""Seconds per TFLite conversion: TensorFlow's default route for a Keras model (write a temporary
SavedModel, read it back, convert) against the one edgesmith uses (freeze the model's inference
function, convert), on the default cnn and on MobileNetV2-0.35 at 96×96, fp32 and int8. Prints
the time of each, their ratio, and the largest difference between the two files' outputs.

    python benchmarks/convert_time.py
    python benchmarks/convert_time.py --repeats 3
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

from toolkit._tf import tf
from toolkit.benchmark.runners import open_runner, predict
from toolkit.converters.tflite import convert
from toolkit.models import build

MODELS = {"cnn (digits 8×8)": ("cnn", (8, 8, 1)), "mobilenet_v2:alpha=0.35 (96×96)": ("mobilenet_v2:alpha=0.35", (96, 96, 3))}


def tensorflow_default(model, precision: str, calibration: np.ndarray) -> bytes:
    """`TFLiteConverter.from_keras_model`, configured as edgesmith configures its own."""
    tensorflow = tf()
    converter = tensorflow.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
        converter.target_spec.supported_ops = [tensorflow.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tensorflow.int8
    return converter.convert()


def seconds(function, repeats: int) -> tuple[float, bytes]:
    times, result = [], b""
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return median(times), result


def outputs(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(flatbuffer)
        return predict(open_runner(path), x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="conversions per route (median reported)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for label, (name, shape) in MODELS.items():
        model = build(name, shape, 10)
        calibration = rng.random((16, *shape), dtype=np.float32)
        for precision in ("fp32", "int8"):
            default_s, default_bytes = seconds(lambda: tensorflow_default(model, precision, calibration), args.repeats)
            ours_s, ours_bytes = seconds(lambda: convert(model, precision, calibration), args.repeats)
            difference = np.abs(outputs(default_bytes, calibration) - outputs(ours_bytes, calibration)).max()
            print(f"{label:<32} {precision}: SavedModel route {default_s:6.2f} s, frozen function {ours_s:5.2f} s "
                  f"(ratio {ours_s / default_s:.3f}); outputs differ by at most {difference:g}")


if __name__ == "__main__":
    main()
