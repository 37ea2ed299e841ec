"""How raw pixels reach an int8 artifact's input tensor: the question device developers ask most.

A camera delivers uint8 bytes. The model was trained on preprocess(bytes) = bytes·a + b (per
channel), and an int8 input tensor holds q = round(x / scale + zero_point). Composed:
q = round(bytes · a/scale + b/scale + zero_point). When that is the identity (uint8 input) or
a fixed −128 shift (int8 input) for every byte value, the device can feed camera bytes as-is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.preprocess import Preprocess

BYTES = np.arange(256, dtype=np.float64)


def raw_input(path: Path, preprocess: Preprocess, raw_dtype: str) -> dict[str, Any]:
    """The mapping for one artifact, with `how` saying in words what a device must do."""
    dtype, scale, zero_point = _input_tensor(path)
    multiplier, offset = preprocess.affine()
    if scale is None:  # float input (an ONNX QDQ model quantizes inside the graph)
        return {
            "input_dtype": dtype, "raw_bytes_as_is": False,
            "how": f"float input: feed {_formula(multiplier, offset, 'the pixel values')} as {dtype} (the model quantizes it itself)",
        }
    k, c = multiplier / scale, offset / scale + zero_point
    shift = _exact_shift(k, c) if raw_dtype == "uint8" else None
    if shift == 0 and dtype == "uint8":
        how = "feed raw uint8 pixels as they are"
    elif shift == -128 and dtype == "int8":
        how = "feed raw pixels − 128 (flip the top bit: byte ^ 0x80) as int8"
    else:
        info = np.iinfo(dtype)
        how = f"compute q = round({_formula(k, c, 'pixel')}) clipped to [{info.min}, {info.max}] as {dtype}"
    return {
        "input_dtype": dtype, "input_scale": scale, "input_zero_point": zero_point,
        "pixel_multiplier": _plain(k), "pixel_offset": _plain(c),
        "raw_bytes_as_is": shift == 0 and dtype == "uint8", "how": how,
    }


def raw_input_findings(records: list[dict[str, Any]]) -> list[str]:
    """What a device must do with camera bytes for the full model's int8 files, one sentence
    per distinct answer (every int8 record's `raw_input` answers it for its own file)."""
    targets: dict[str, list[str]] = {}
    for record in records:
        if not record["chain"] and record.get("raw_input"):
            targets.setdefault(record["raw_input"]["how"], []).append(record["target"])
    return [f"raw pixels into the full model's int8 file on {', '.join(dict.fromkeys(names))}: {how}"
            for how, names in targets.items()]


def _input_tensor(path: Path) -> tuple[str, float | None, int | None]:
    """(dtype, scale, zero point) of the first input; scale None for float inputs."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        kind = session.get_inputs()[0].type.removeprefix("tensor(").removesuffix(")")
        return {"float": "float32", "double": "float64"}.get(kind, kind), None, None
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_path=str(path)).get_input_details()[0]
    dtype = np.dtype(detail["dtype"]).name
    scale, zero_point = detail["quantization"]
    if np.issubdtype(detail["dtype"], np.floating) or scale == 0:
        return dtype, None, None
    return dtype, float(scale), int(zero_point)


def _exact_shift(k: np.ndarray, c: np.ndarray) -> int | None:
    """s when round(byte · k + c) == byte + s for every byte value and channel, else None."""
    shifts = set()
    for multiplier, offset in zip(np.broadcast_to(k, np.broadcast(k, c).shape), np.broadcast_to(c, np.broadcast(k, c).shape)):
        difference = np.round(BYTES * multiplier + offset) - BYTES
        if not np.all(difference == difference[0]):
            return None
        shifts.add(int(difference[0]))
    return shifts.pop() if len(shifts) == 1 else None


def _formula(k: np.ndarray, c: np.ndarray, name: str) -> str:
    if len(k) == 1:
        scaled = name if k[0] == 1 else f"{name} × {k[0]:.6g}"
        return scaled if c[0] == 0 else f"{scaled} {'+' if c[0] > 0 else '−'} {abs(c[0]):.6g}"
    return f"{name} × [{', '.join(f'{v:.6g}' for v in k)}] + [{', '.join(f'{v:.6g}' for v in c)}] per channel"


def _plain(values: np.ndarray) -> float | list[float]:
    return float(values[0]) if len(values) == 1 else [float(v) for v in values]
