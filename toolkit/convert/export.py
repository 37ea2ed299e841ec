"""Export one variant for one target at one precision: the target decides format and settings."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.convert import tflite
from toolkit.errors import EdgesmithError
from toolkit.targets import RUNTIME_FORMATS, Target


def extension(target: Target) -> str:
    """File extension of the artifacts a target runs."""
    return RUNTIME_FORMATS[target.runtime]


def export_artifact(
    model: Any,
    path: Path,
    target: Target,
    precision: str,
    calibration_x: np.ndarray,
    opset: int,
    steps: tuple = (),
) -> Path:
    """Write the artifact for `target` at `precision` to `path` (atomically)."""
    if target.runtime == "litert":
        return tflite.convert_to_file(
            model, path, precision,
            calibration_x=calibration_x, int8_io_dtype=target.int8_io_dtype, fixed_batch=target.fixed_batch,
        )
    if target.runtime == "onnxruntime":
        return _export_onnx(model, path, target, precision, calibration_x, opset, steps)
    raise EdgesmithError(f"target {target.name} has unknown runtime '{target.runtime}'", "use litert or onnxruntime")


def _export_onnx(model, path, target, precision, calibration_x, opset, steps) -> Path:
    """fp32 straight from Keras; int8 by ORT's static QDQ on the fp32 model, or, for QAT
    variants, from the QAT int8 TFLite file so the trained quantization ranges are kept."""
    from toolkit.convert import onnx
    from toolkit.passes import is_qat_chain

    input_shape = tuple(model.input_shape[1:])
    if precision == "fp32":
        return onnx.export_keras(model, path, input_shape, opset, target.fixed_batch)
    with tempfile.TemporaryDirectory(prefix="edgesmith-onnx-") as scratch:
        scratch = Path(scratch)
        if precision == "int8" and is_qat_chain(steps):
            int8_tflite = tflite.convert_to_file(
                model, scratch / "qat.tflite", "int8", calibration_x=calibration_x,
                int8_io_dtype="int8", fixed_batch=target.fixed_batch,
            )
            return onnx.export_tflite(int8_tflite, path, opset, target.reduce_range)
        fp32 = onnx.export_keras(model, scratch / "fp32.onnx", input_shape, opset, target.fixed_batch)
        if precision == "int8":
            return onnx.quantize_static(fp32, path, calibration_x, target.reduce_range)
        if precision == "dynamic":
            return onnx.quantize_dynamic(fp32, path)
    raise EdgesmithError(f"ONNX export has no {precision} mode", "use fp32, dynamic or int8 for ONNX targets")
