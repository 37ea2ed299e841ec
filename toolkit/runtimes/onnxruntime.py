"""ONNX Runtime (CPU execution provider): .onnx files exported with tf2onnx and quantized with
ONNX Runtime's own tools (or, for quantization-aware variants, from their int8 TFLite file)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import numpy as np

    from toolkit.benchmark.runners import Runner
    from toolkit.checks.report import CompatibilityReport
    from toolkit.targets import Target

NAME = "onnxruntime"
SUFFIX = "onnx"
FILE_KIND = "an .onnx"  # how error messages name the file
LABEL = "an ONNX"
PACKAGES = ("onnxruntime", "onnx", "tf2onnx")  # versions that shape its artifacts and timings
DEVICE_PACKAGES = ("onnxruntime",)  # what a device needs to run its files
REFERENCE = False
# reduce_range: int8 weights in 7 bits, so u8×s8 kernels never saturate (toolkit.cpu_features)
TARGET_KEYS: dict[str, tuple[Any, bool]] = {"reduce_range": (bool, False), "per_channel": (bool, False)}  # targets.per_channel
ACCELERATOR_KEYS: dict[str, tuple[Any, bool]] = {"op_domains": (list, True)}


def sniff(head: bytes, path: Path) -> bool:
    """ONNX files are protobufs with no magic number: recognised by extension."""
    return path.suffix.lower() == f".{SUFFIX}"


def validate_profile(fail, top: dict[str, Any], accelerator: dict[str, Any]) -> None:
    if not accelerator.get("op_domains"):
        raise fail("accelerator.op_domains", "is empty", 'list the op domains it runs, e.g. ["ai.onnx"]')


def export(model: Any, path: Path, target: Target, precision: str, calibration_x: np.ndarray,
           opset: int, quantization_aware: bool) -> Path:
    """fp32 straight from Keras; int8 by ORT's static QDQ on the fp32 model, or, for QAT
    variants, from the QAT int8 TFLite file so the trained quantization ranges are kept."""
    from toolkit.converters import onnx, tflite
    from toolkit.errors import EdgesmithError
    from toolkit.targets import per_channel

    input_shape = tuple(model.input_shape[1:])
    seven_bit = _reduce_range(target)
    if precision == "fp32":
        return onnx.export_keras(model, path, input_shape, opset, target.fixed_batch)
    with tempfile.TemporaryDirectory(prefix="edgesmith-onnx-") as scratch:
        scratch = Path(scratch)
        if precision == "int8" and quantization_aware:
            int8_tflite = tflite.convert_to_file(model, scratch / "qat.tflite", "int8", calibration_x=calibration_x,
                                                 int8_io_dtype="int8", fixed_batch=target.fixed_batch)
            return onnx.export_tflite(int8_tflite, path, opset, seven_bit)
        fp32 = onnx.export_keras(model, scratch / "fp32.onnx", input_shape, opset, target.fixed_batch)
        if precision == "int8":
            return onnx.quantize_static(fp32, path, calibration_x, seven_bit, per_channel=per_channel(target))
        if precision == "dynamic":
            return onnx.quantize_dynamic(fp32, path)
    raise EdgesmithError(f"ONNX export has no {precision} mode", "use fp32, dynamic or int8 for ONNX targets")


def export_spec(target: Target, precision: str, opset: int) -> dict[str, Any]:
    from toolkit.targets import per_channel_spec

    return {"fixed_batch": target.fixed_batch, "opset": opset,
            "reduce_range": _reduce_range(target) if precision == "int8" else None, **per_channel_spec(target, precision)}


def open_runner(path: Path, threads: int = 1, validate: bool = True) -> Runner:
    from toolkit.benchmark.device_runners import OnnxRuntimeRunner

    if validate:  # a corrupt file gets our one-line error instead of ORT's
        from toolkit.converters.onnx_files import load_checked

        load_checked(path)
    return OnnxRuntimeRunner(path, threads)


def check(path: Path, target: Target) -> CompatibilityReport:
    from toolkit.checks.onnx import check_onnx

    return check_onnx(path, target)


def estimated_timing(target: Target, compatibility: Mapping[str, Any]) -> None:
    """None: its files are timed, here or on the device (toolkit.devices.measure)."""
    return None


def record_extras(path: Path, precision: str, x: np.ndarray, compatibility: Mapping[str, Any]) -> dict[str, Any]:
    """int8: do the runtime's fused integer kernels compute the graph's exact integers on this
    CPU? (They saturate on x86 without VNNI when weights use all 8 bits.)"""
    if precision != "int8":
        return {}
    from toolkit.checks.int8_kernels import kernel_agreement

    return {"int8_kernels": kernel_agreement(path, x)}


def _reduce_range(target: Target) -> bool:
    return bool(target.options.get("reduce_range", False))
