"""Pick the best variant per target under the run's budget and copy the winners to `best/`."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from toolkit.files import atomic_path
from toolkit.select import select_best

BEST_DIR = "best"


def choose_and_copy(run_dir: Path, records: list[dict[str, Any]], experiment: Any) -> dict[str, Any]:
    """{target: winning record's path, or None}; each winner is copied to best/<target>/."""
    chosen: dict[str, Any] = {}
    for target in sorted({record["target"] for record in records}):
        selection = select_best(
            records, target, experiment.max_accuracy_drop,
            experiment.max_latency_ms or None, experiment.max_size_kb or None,
        )
        winner = selection.winner
        if winner is None:
            chosen[target] = None
            continue
        source = run_dir / winner["path"]
        destination = run_dir / BEST_DIR / target / source.name
        if not destination.exists() or destination.read_bytes() != source.read_bytes():
            with atomic_path(destination) as tmp:
                shutil.copyfile(source, tmp)
        chosen[target] = winner["path"]
    return chosen
