"""Pick the best variant per target under the run's budget and copy the winners to `best/`."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from toolkit.files import atomic_path, side_files
from toolkit.selection import select_best

BEST_DIR = "best"


def choose_and_copy(run_dir: Path, records: list[dict[str, Any]], experiment: Any) -> dict[str, Any]:
    """{target: winning record's path, or None}; each winner is copied to best/<target>/ with
    its side files (a microcontroller's C source, Vela's compiled file): what the firmware embeds."""
    chosen: dict[str, Any] = {}
    for target in sorted({record["target"] for record in records}):
        selection = select_best(
            records, target, experiment.max_accuracy_drop,
            experiment.max_latency_ms or None, experiment.max_size_kb or None, experiment.max_mae_increase,
        )
        folder = run_dir / BEST_DIR / target
        winner = selection.winner
        chosen[target] = winner["path"] if winner else None
        if winner is None:
            shutil.rmtree(folder, ignore_errors=True)  # an old winner must not linger
            continue
        sources = [run_dir / winner["path"], *side_files(run_dir / winner["path"])]
        if _holds_only(folder, sources):
            continue
        with atomic_path(folder) as tmp:  # replaces the whole folder in one rename
            tmp.mkdir()
            for source in sources:
                shutil.copyfile(source, tmp / source.name)
    return chosen


def _holds_only(folder: Path, sources: list[Path]) -> bool:
    """True when `folder` already contains exactly identical copies of `sources`."""
    if not folder.is_dir() or sorted(p.name for p in folder.iterdir()) != sorted(s.name for s in sources):
        return False
    return all((folder / source.name).read_bytes() == source.read_bytes() for source in sources)
