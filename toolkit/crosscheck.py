"""Cross-check runtimes: a variant's fp32 ONNX and fp32 TFLite files must compute the same
function. A difference beyond float rounding means a converter changed the model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit.bench.runners import open_runner, predict

TOLERANCE = 1e-4


def add_fp32_crosscheck(run_dir: Path, records: list[dict[str, Any]], x: np.ndarray) -> None:
    """Set `fp32_max_abs_diff_vs_tflite` on each fp32 ONNX record with a TFLite fp32 sibling."""
    tflite_fp32 = {
        r["variant"]: r for r in records if r["format"] == "tflite" and r["precision"] == "fp32"
    }
    for record in records:
        if record["format"] != "onnx" or record["precision"] != "fp32" or record["variant"] not in tflite_fp32:
            continue
        reference = tflite_fp32[record["variant"]]
        onnx_scores = predict(open_runner(run_dir / record["path"]), x)
        tflite_scores = predict(open_runner(run_dir / reference["path"]), x)
        difference = float(np.abs(onnx_scores - tflite_scores).max())
        record["fp32_max_abs_diff_vs_tflite"] = difference
        record["fp32_crosscheck"] = {"against": reference["path"], "samples": len(x), "tolerance": TOLERANCE}
        if difference > TOLERANCE:
            record.setdefault("notes", []).append(
                f"fp32 ONNX and TFLite outputs differ by up to {difference:.2e} (> {TOLERANCE:g})"
            )
