"""Cross-check runtimes: a variant's fp32 file for any runtime and its fp32 file for the reference
runtime (LiteRT) must compute the same function. A difference beyond float rounding means a
converter changed the model."""
from __future__ import annotations

from pathlib import Path
import numpy as np

from toolkit.benchmark.runners import open_runner, predict
from toolkit.records import Record

TOLERANCE = 1e-4


def add_fp32_crosscheck(run_dir: Path, records: list[Record], x: np.ndarray) -> list[Record]:
    """Set `fp32_max_abs_diff_vs_tflite` on each fp32 record of another runtime that has a fp32
    sibling of the reference runtime (the key keeps its name: the reference reads .tflite)."""
    from toolkit.runtimes import reference_runtime

    reference_format = reference_runtime().SUFFIX
    reference_fp32 = {
        r["variant"]: r for r in records if r["format"] == reference_format and r["precision"] == "fp32"
    }
    checked = []
    for record in records:
        reference = reference_fp32.get(record.variant)
        if record.format == reference_format or record.precision != "fp32" or reference is None:
            checked.append(record)
            continue
        scores = predict(open_runner(run_dir / record.path), x)
        reference_scores = predict(open_runner(run_dir / reference.path), x)
        difference = float(np.abs(scores - reference_scores).max())
        notes = record.notes
        if difference > TOLERANCE:
            notes += (f"fp32 {record.format} and {reference.format} outputs differ by up to {difference:.2e} "
                      f"(> {TOLERANCE:g})",)
        checked.append(record.with_fields(
            fp32_max_abs_diff_vs_tflite=difference, notes=notes,
            fp32_crosscheck={"against": reference.path, "samples": len(x), "tolerance": TOLERANCE},
        ))
    return checked
