"""`explain`: rank a model's layers by the int8 error they add on one target, measure the
worst one kept in float, and run the requested fallback."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data_stream import predict_in_chunks
from toolkit.errors import EdgesmithError
from toolkit.quant_debug.fallback import FallbackPlan, FallbackStep, refusal, run_fallback
from toolkit.quant_debug.layers import rank
from toolkit.quant_debug.result import Explanation
from toolkit.top1 import top1

QAT_FIX = "make the model int8-friendly with quantization-aware training instead (edgesmith run --variant qat)"


def explain_model(model: Any, target: Any, data: Any, folder: Path, fallback: FallbackPlan | None = None,
                  max_accuracy_drop: float = 1.0, samples: int = 200, calibration_samples: int = 256,
                  seed: int = 0) -> Explanation:
    """Per-layer error of `model`'s int8 export for `target` on `samples` test samples (the
    calibration is the pipeline's: `calibration_samples` training samples drawn with `seed`);
    the files it measures are written to `folder`."""
    check_request(target, fallback)
    refused = refusal(target)
    folder.mkdir(parents=True, exist_ok=True)
    calibration = data.calibration_sample(calibration_samples, seed)
    debug_x = data.x_test[:samples]
    backend, suffix = debugger_for(model, target, calibration, debug_x, folder)
    layers = rank(backend.layer_errors())
    float_accuracy = float(np.mean(top1(predict_in_chunks(lambda x: model.predict(x, verbose=0), data.x_test)) == data.y_test))
    accuracy = lambda path: file_accuracy(path, data.x_test, data.y_test)  # noqa: E731
    measure = lambda plan: run_fallback(plan, layers, backend.write, accuracy, folder, float_accuracy,  # noqa: E731
                                        max_accuracy_drop, suffix)
    steps = measure(fallback) if fallback is not None else []
    int8, top_float = (steps[0] if steps else None), None
    if not refused and layers:  # the findings' "keeping it in float recovers Y pp at +Z% size"
        worst = (layers[0].name,)
        top_float = next((step for step in steps if step.float_layers == worst), None)
        if top_float is None:
            plain, top_float = measure(FallbackPlan(auto=False, layers=worst))
            int8 = int8 or plain
    if int8 is None:
        int8 = _plain_int8(backend, accuracy, folder / f"int8.{suffix}")
    return Explanation(target.name, suffix, len(debug_x), float_accuracy, layers, int8, top_float, steps,
                       refused, max_accuracy_drop)


def check_request(target: Any, fallback: FallbackPlan | None) -> None:
    """Refuse what cannot be done before any model is loaded: no int8 export, or a fallback
    on a target whose accelerator computes int8 only."""
    if "int8" not in target.precisions:
        raise EdgesmithError(f"{target.name} has no int8 export ({', '.join(target.precisions)})",
                             "explain an int8 target, e.g. --target cpu or --target onnx-cpu")
    refused = refusal(target)
    if fallback is not None and refused:
        raise EdgesmithError(f"float fallback is refused: {refused}", QAT_FIX)


def debugger_for(model: Any, target: Any, calibration: np.ndarray, debug_x: np.ndarray, folder: Path) -> tuple[Any, str]:
    """The debugger of the target's file format (a runtime's files are TFLite or ONNX)."""
    from toolkit.quant_debug import onnx_debug, tflite_debug
    from toolkit.runtimes import runtime_named

    if runtime_named(target.runtime).SUFFIX == onnx_debug.FORMAT:
        return onnx_debug.OnnxDebug(model, target, calibration, debug_x, folder), onnx_debug.FORMAT
    return tflite_debug.TFLiteDebug(model, target, calibration, debug_x), tflite_debug.FORMAT


def _plain_int8(backend: Any, accuracy: Any, path: Path) -> FallbackStep:
    backend.write(path, [])
    return FallbackStep((), accuracy(path), path.stat().st_size, str(path))


def file_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a file with the runtime the benchmark uses (integer I/O handled)."""
    from toolkit.benchmark.device_runners import open_runner, predict

    return float(np.mean(top1(predict(open_runner(path), x)) == y))
