"""Shared by the benchmark scripts: read a finished run, and small helpers for printing."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.benchmark.runners import open_runner
from toolkit.data import Dataset, load_configured


def load_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(results.json records, run.json) of a finished `edgesmith run`."""
    records = json.loads((run_dir / "results.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    return records, info


def find(records: list[dict[str, Any]], variant: str, target: str, precision: str) -> dict[str, Any]:
    """The one record of `variant` on `target` at `precision`; a clear error if the run lacks it."""
    for record in records:
        if (record["variant"], record["target"], record["precision"]) == (variant, target, precision):
            return record
    raise SystemExit(f"the run has no {variant} {precision} artifact for {target}; run benchmarks/fashion_cnn.toml")


def goal(met: bool) -> str:
    return "met" if met else "NOT met"


def run_dataset(run_dir: Path) -> Dataset:
    """The dataset a run used, split exactly as it was (same name, data path and seed)."""
    config = json.loads((run_dir / "manifest.json").read_text())["config"]
    return load_configured(config)


def zero_input(path: Path) -> np.ndarray:
    """One all-zero float sample shaped for the model (latency does not depend on values)."""
    return np.zeros((1, *open_runner(path).input_shape), dtype=np.float32)
