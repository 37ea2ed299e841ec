"""LiteRT (TensorFlow Lite): .tflite flatbuffers, run with XNNPACK, a GPU delegate or an Edge TPU.

The reference runtime: every other runtime's fp32 file is cross-checked against its fp32 file.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import numpy as np

    from toolkit.benchmark.runners import Runner
    from toolkit.checks.report import CompatibilityReport
    from toolkit.targets import Target

NAME = "litert"
SUFFIX = "tflite"
FILE_KIND = "a TFLite flatbuffer"  # how error messages name the file
LABEL = "a TFLite"
PACKAGES = ("ai-edge-litert", "tensorflow")  # versions that shape its artifacts and timings
DEVICE_PACKAGES = ("ai-edge-litert",)  # what a device needs to run its files
REFERENCE = True
TARGET_KEYS: dict[str, tuple[Any, bool]] = {"per_channel": (bool, False)}  # targets.per_channel
ACCELERATOR_KEYS: dict[str, tuple[Any, bool]] = {"tensor_types": (list, True), "delegate": (str, False)}


def sniff(head: bytes, path: Path) -> bool:
    from toolkit.checks.flatbuffer import is_tflite

    return is_tflite(head)


def validate_profile(fail, top: dict[str, Any], accelerator: dict[str, Any]) -> None:
    """A LiteRT profile lists the builtin ops its accelerator runs and the tensor types it computes."""
    from difflib import get_close_matches

    from toolkit.checks.flatbuffer import builtin_op_names

    if not top.get("ops"):
        raise fail("ops", "is missing or empty", 'list the builtin ops the accelerator runs, e.g. CONV_2D = "any"')
    names = sorted(builtin_op_names().values())
    for op in top["ops"]:
        if op not in names:
            close = get_close_matches(op, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise fail(f"ops.{op}", "is not a TFLite builtin op", f"{hint}custom ops go under [custom_ops]")
    if not accelerator.get("tensor_types"):
        raise fail("accelerator.tensor_types", "is empty", 'list the tensor types it computes, e.g. ["int8"]')
    from toolkit.benchmark.device_runners import DELEGATES

    if accelerator.get("delegate") not in (None, *DELEGATES):
        raise fail("accelerator.delegate", f"is '{accelerator['delegate']}'", f"use one of: {', '.join(DELEGATES)}")


def export(model: Any, path: Path, target: Target, precision: str, calibration_x: np.ndarray,
           opset: int, quantization_aware: bool) -> Path:
    """The TensorFlow converter at `precision`, with the target's integer I/O type, batch and
    weight scales (per channel, or per tensor)."""
    from toolkit.converters import tflite
    from toolkit.targets import per_channel

    return tflite.convert_to_file(model, path, precision, calibration_x=calibration_x,
                                  int8_io_dtype=target.int8_io_dtype, fixed_batch=target.fixed_batch,
                                  per_channel=per_channel(target))


def export_spec(target: Target, precision: str, opset: int) -> dict[str, Any]:
    from toolkit.targets import per_channel_spec

    return {"fixed_batch": target.fixed_batch, "int8_io_dtype": target.int8_io_dtype if precision == "int8" else None,
            **per_channel_spec(target, precision)}


def open_runner(path: Path, threads: int = 1, validate: bool = True) -> Runner:
    from toolkit.benchmark.device_runners import LiteRTRunner

    return LiteRTRunner(path, threads)


def check(path: Path, target: Target) -> CompatibilityReport:
    """Static op placement; for a target with a real compiler (Edge TPU) where it is installed,
    that compiler's verdict too."""
    from toolkit.checks.tflite import check_tflite

    report = check_tflite(path, target)
    if target.accelerator.compiler == "edgetpu_compiler":
        report = dataclasses.replace(report, compile=_compile_edgetpu(path))
    return report


def estimated_timing(target: Target, compatibility: Mapping[str, Any]) -> None:
    """None: its files are timed, here or on the device (toolkit.devices.measure)."""
    return None


def record_extras(path: Path, precision: str, x: np.ndarray, compatibility: Mapping[str, Any]) -> dict[str, Any]:
    """Zeros actually present in the exported weights, overall and per layer: what pruning left
    after conversion, and what gzip can exploit; and the activation memory a static plan of the
    file needs (what a microcontroller would have to hold)."""
    import numpy as np

    from toolkit.checks.arena import plan_file
    from toolkit.passes.sparsity import tflite_sparsity

    layers = tflite_sparsity(path.read_bytes())
    sizes = [int(np.prod(layer["shape"])) for layer in layers]
    total = sum(sizes)
    overall = sum(layer["sparsity"] * size for layer, size in zip(layers, sizes)) / total if total else 0.0
    return {"sparsity": round(overall, 4), "sparsity_per_layer": layers,
            "peak_activation_bytes": plan_file(path).peak_activation_bytes}


def _compile_edgetpu(path: Path) -> dict:
    """The compiler's own verdict; its output goes to a scratch folder (the check writes nothing)."""
    from toolkit.converters.edgetpu import compile_edgetpu

    with tempfile.TemporaryDirectory(prefix="edgesmith-edgetpu-") as scratch:
        result = compile_edgetpu(path, Path(scratch))
    data = result.to_dict()
    data["output"] = None  # only the verdict is kept: the check never writes next to the model
    return data
