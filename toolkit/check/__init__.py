"""Pre-flight compatibility check: will this model file run fully on a target's accelerator?

`check_artifact(path, target)` reads any .tflite (or .onnx) file, places every op on the
target's accelerator or its CPU fallback using the target profile's data, and, for targets with
a real compiler (the Edge TPU), runs that compiler where it is installed.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from toolkit.check.report import CompatibilityReport, OpPlacement
from toolkit.errors import EdgesmithError
from toolkit.targets import RUNTIME_FORMATS, Target, format_target_list

_LABELS = {"tflite": "a TFLite", "onnx": "an ONNX"}
__all__ = ["CompatibilityReport", "OpPlacement", "check_artifact", "compiler_available", "format_target_list"]


def check_artifact(path: Path, target: Target) -> CompatibilityReport:
    """Check one exported model file against one target; bad input raises EdgesmithError."""
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"model file {path} does not exist", "check the path")
    kind = _format(path)
    expected = RUNTIME_FORMATS[target.runtime]
    if kind != expected:
        raise EdgesmithError(
            f"{path} is {_LABELS[kind]} model but target '{target.name}' runs {target.runtime} ({expected} files)",
            f"check it against a target whose runtime reads {kind} files (see `edgesmith targets`)",
        )
    if kind == "onnx":
        from toolkit.check.onnx import check_onnx

        return check_onnx(path, target)
    from toolkit.check.tflite import check_tflite

    report = check_tflite(path, target)
    if target.accelerator.compiler == "edgetpu_compiler":
        report = dataclasses.replace(report, compile=_compile_edgetpu(path))
    return report


def compiler_available(target: Target) -> bool:
    """Whether the target's own compiler is installed (its verdict then replaces ours)."""
    return bool(target.accelerator.compiler and shutil.which(target.accelerator.compiler))


def _format(path: Path) -> str:
    from toolkit.check.flatbuffer import is_tflite

    with open(path, "rb") as handle:
        head = handle.read(8)
    if is_tflite(head):
        return "tflite"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise EdgesmithError(f"{path} is neither a TFLite flatbuffer nor an .onnx file",
                         "pass a .tflite or .onnx model exported by edgesmith or a converter")


def _compile_edgetpu(path: Path) -> dict:
    """The compiler's own verdict; its output goes to a scratch folder (the check writes nothing)."""
    from toolkit.convert.edgetpu import compile_edgetpu

    with tempfile.TemporaryDirectory(prefix="edgesmith-edgetpu-") as scratch:
        result = compile_edgetpu(path, Path(scratch))
    data = result.to_dict()
    data["output"] = None  # only the verdict is kept: the check never writes next to the model
    return data
