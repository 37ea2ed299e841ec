"""One variant chain built away from the run folder: the task a build worker runs (a Ray task or
a local process), and what the driver hands it.

A task builds in a scratch folder laid out like the run folder, with the stages of a local run,
so its files and cache markers are exactly the ones a local build writes. It returns them as
data; only the driver writes the run folder, files first and markers after, so every executor
resumes every other's cache and an interrupted run keeps every variant that came back. Timing
is never done here: the driver times every file after the build phase, so no build competes
with a measurement on the same machine.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from toolkit.config import Experiment, Variant
    from toolkit.data import Dataset
    from toolkit.pipeline import Run
    from toolkit.targets import Target

@dataclass(frozen=True)
class BuildInputs:
    """What every build task needs, sent once per run (Ray's object store, a worker's start)."""

    experiment: Experiment
    data: Dataset
    targets: tuple[Target, ...]
    calibration: np.ndarray | None
    baseline_key: str
    baseline_params: int
    baseline_model: bytes
    threads: int  # TensorFlow threads in a task: its share of the machine (see task_threads)
    baseline_file: str  # where baseline_model is written, relative to the run folder


def build_inputs(state: Run, threads: int) -> BuildInputs:
    """The run's inputs for its build tasks, each task using `threads` TensorFlow threads."""
    return BuildInputs(state.experiment, state.data, tuple(state.targets), state.calibration, state.baseline_key,
                       state.baseline_params, (state.run_dir / state.baseline_file).read_bytes(), threads, state.baseline_file)


def task_threads(experiment: Experiment, share: float) -> int:
    """TensorFlow threads in a build task: `train_threads`, else the task's CPU `share` (threads
    beyond it would compete with the other tasks on the machine)."""
    return experiment.train_threads or max(1, round(share))


def missing_exports(state: Run, variant: Variant, steps: tuple) -> list[tuple[str, str]]:
    """(target name, precision) of each of the variant's exports without a finished cache entry."""
    from toolkit.passes import chain_id
    from toolkit.stages import export_location, variant_exports
    from toolkit.variant_stage import variant_key

    variant_id, model_key = chain_id(steps), variant_key(state, steps)
    return [(target.name, precision) for target, precision in variant_exports(state.targets, variant, steps)
            if state.cache.get(export_location(state, variant_id, model_key, target, precision)[1]) is None]


def cached_models(state: Run, steps: tuple) -> list[dict[str, Any]]:
    """The already built models (marker and files) of the chain and of its prefix chains, so a
    task neither trains the variant again nor the prefix it starts from."""
    from toolkit.variant_stage import variant_key

    keys = [variant_key(state, steps[:length]) for length in range(1, len(steps) + 1)]
    return [state.cache.export_entry(key) for key in keys if state.cache.get(key) is not None]


def adopt(state: Run, variant_id: str, result: dict[str, Any], where: str) -> str | None:
    """Write one finished task's files and markers into the run folder; the reason if the
    variant's passes do not apply to the model."""
    if "not_applicable" in result:
        return result["not_applicable"]
    for line in result["log"]:
        state.log(line)
    state.cache.import_entries(result["entries"])
    state.log(f"[build] {variant_id}: built {where} in {result['seconds']:.1f} s")
    return None


def build_variant(inputs: BuildInputs, steps: tuple, exports: list[tuple[str, str]],
                  model_entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs in the worker: the run's own stages in a scratch run folder; returns its new cache
    entries (markers with their files' bytes) and its log."""
    from toolkit._tf import limit_threads
    from toolkit.cache import StageCache
    from toolkit.model_files import load_saved
    from toolkit.passes import PassNotApplicable, chain_id
    from toolkit.pipeline import Run
    from toolkit.stages import export_stage
    from toolkit.variant_stage import VariantModel, variant_key

    started = time.time()
    limit_threads(inputs.threads)
    with tempfile.TemporaryDirectory(prefix="edgesmith-build-") as folder:
        run_dir = Path(folder)
        baseline_path = run_dir / inputs.baseline_file
        baseline_path.parent.mkdir(parents=True)
        baseline_path.write_bytes(inputs.baseline_model)
        cache = StageCache(run_dir, enabled=not inputs.experiment.force)
        cache.import_entries(model_entries)
        lines: list[str] = []
        state = Run(inputs.experiment, run_dir, inputs.data, list(inputs.targets), cache, lines.append,
                    baseline_key=inputs.baseline_key, baseline_file=inputs.baseline_file, baseline_params=inputs.baseline_params,
                    calibration=inputs.calibration)
        baseline = lru_cache(maxsize=1)(lambda: load_saved(baseline_path))
        built = VariantModel(state, chain_id(steps), variant_key(state, steps), steps, baseline)
        targets = {target.name: target for target in inputs.targets}
        try:
            for target_name, precision in exports:
                export_stage(state, built, targets[target_name], precision)
        except PassNotApplicable as exc:
            return {"not_applicable": str(exc)}
        carried = {entry["key"] for entry in model_entries}
        entries = [cache.export_entry(key) for key in cache.keys() if key not in carried]
    return {"entries": entries, "log": lines, "seconds": time.time() - started}
