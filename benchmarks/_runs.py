"""Shared by the benchmark scripts: read a finished run's records."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
