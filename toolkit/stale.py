"""Remove the artifacts an earlier run left in the folder that this run did not make.

A run folder describes one run. Re-running with fewer targets, precisions or variants must not
leave the old files (or an old `best/<target>/` pick) next to the new ones, where a user would
ship a file built from another model or other data. Trained Keras models under `variants/` stay:
they are the stage cache that makes turning a variant back on cheap, and nothing ships them.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

from toolkit.best import BEST_DIR
from toolkit.files import is_side_file
from toolkit.targets import TARGET_NAME


def previous_targets(run_dir: Path) -> set[str]:
    """The targets the folder's current run.json names (read before this run replaces it)."""
    try:
        targets = json.loads((Path(run_dir) / "run.json").read_text()).get("targets") or []
    except (OSError, ValueError, AttributeError):
        return set()
    return {target for target in targets if isinstance(target, str)}


def remove_stale(run_dir: Path, records: Iterable[Mapping[str, Any]], best: Mapping[str, Any],
                 targets: Iterable[str]) -> list[str]:
    """Delete, from the folders of `targets`, every artifact (`<variant>__<precision>…`) that no
    record (and no trial of the folder's search.json) names, with its side files (`.cc`/`.h`, `_vela`, `_edgetpu`, Vela's summary), and every
    `best/<target>/` that `best` does not fill. Returns the removed paths, relative to `run_dir`."""
    run_dir = Path(run_dir)
    stems: dict[str, set[str]] = {}
    for name in [*(record["path"] for record in records), *_search_trial_paths(run_dir)]:
        path = Path(name)
        stems.setdefault(path.parent.as_posix(), set()).add(path.stem)
    removed = []
    for target in sorted(set(targets)):
        if not TARGET_NAME.match(target):  # a hand-edited run.json must not reach outside the folder
            continue
        folder = run_dir / target
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.is_file() and "__" in file.name and not file.name.startswith(".") \
                    and not _made_by(file.name, stems.get(target, set())):
                file.unlink()
                removed.append(f"{target}/{file.name}")
        if target not in stems and not any(folder.iterdir()):
            folder.rmdir()
    best_root = run_dir / BEST_DIR
    if best_root.is_dir():
        for folder in sorted(best_root.iterdir()):
            if folder.is_dir() and not best.get(folder.name):
                shutil.rmtree(folder)
                removed.append(f"{BEST_DIR}/{folder.name}/")
    return removed


def _search_trial_paths(run_dir: Path) -> list[str]:
    """The files of the trials in the folder's search.json: a search shares its folder with runs
    (one trained full model, one timing per file), and its summary points at those files."""
    try:
        trials = json.loads((run_dir / "search.json").read_text()).get("trials") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [trial["path"] for trial in trials if isinstance(trial, dict) and isinstance(trial.get("path"), str)]


def _made_by(name: str, stems: set[str]) -> bool:
    """True for an artifact of `stems` or one of its side files (`<stem>.cc`, `<stem>_vela.tflite`)."""
    return any(is_side_file(name, stem) for stem in stems)
