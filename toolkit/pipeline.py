"""The run: baseline → passes → per-target export → check → benchmark → reports.

Every stage is cached by content (see cache.py), so a re-run only redoes what changed and an
interrupted run resumes where it stopped. Inputs are validated before the run folder is
touched, so a bad flag never leaves a half-made folder behind.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolkit.cache import CACHE_DIR, StageCache
from toolkit.config import Experiment, Variant
from toolkit.data import Dataset, load_configured
from toolkit.errors import EdgesmithError
from toolkit.targets import Target, load_target

Log = Callable[[str], None]


@dataclass
class Run:
    """State shared by the stages of one run."""

    experiment: Experiment
    run_dir: Path
    data: Dataset
    targets: list[Target]
    cache: StageCache
    log: Log
    baseline_key: str = ""
    baseline_accuracy: float = 0.0
    baseline_params: int = 0
    reference_outputs: np.ndarray | None = None
    baseline_checks: dict[str, Any] = field(default_factory=dict)
    calibration: np.ndarray | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    variant_info: dict[str, Any] = field(default_factory=dict)


def run(experiment: Experiment, log: Log = print) -> Path:
    """Execute the experiment and return the run folder."""
    from toolkit.passes import parse_chain

    started = time.time()
    targets = [load_target(name) for name in experiment.targets]
    chains = _with_controls([(variant, parse_chain(variant.chain)) for variant in experiment.variants])
    _reject_duplicate_ids(chains)
    data = load_configured(experiment.to_dict())
    user_model = _check_user_model(experiment, data)
    calibration = data.calibration_sample(experiment.calibration_samples, experiment.seed)
    run_dir = _prepare_run_dir(experiment)
    cache = StageCache(run_dir, enabled=not experiment.force)
    state = Run(experiment, run_dir, data, targets, cache, log, calibration=calibration)

    from toolkit.stages import baseline_stage, export_and_bench_variant

    baseline = baseline_stage(state, user_model)
    export_and_bench_variant(state, (), Variant(chain=(), precisions=experiment.precisions), baseline)
    for variant, steps in chains:
        export_and_bench_variant(state, steps, variant, baseline)

    from toolkit.crosscheck import add_fp32_crosscheck
    from toolkit.outputs import write_outputs

    add_fp32_crosscheck(run_dir, state.records, data.x_test)

    write_outputs(state, started)
    return run_dir


def _with_controls(chains: list[tuple[Variant, tuple]]) -> list[tuple[Variant, tuple]]:
    """Add, after each distillation chain, the same student trained from scratch (once), so the
    report shows what distillation bought rather than what a smaller model costs."""
    from toolkit.passes import chain_id, control_chain

    result, seen = [], {chain_id(steps) for _, steps in chains}
    for variant, steps in chains:
        result.append((variant, steps))
        control = control_chain(steps)
        if control is not None and chain_id(control) not in seen:
            seen.add(chain_id(control))
            result.append((Variant(tuple(str(step) for step in control), variant.precisions), control))
    return result


def _reject_duplicate_ids(chains: list[tuple[Variant, tuple]]) -> None:
    """Two chains with one id would write the same files and overwrite each other's cache."""
    from toolkit.passes import chain_id

    seen: dict[str, tuple[str, ...]] = {}
    for variant, steps in chains:
        variant_id = chain_id(steps)
        if variant_id in seen:
            raise EdgesmithError(
                f"variants {list(seen[variant_id])} and {list(variant.chain)} both get the id '{variant_id}'",
                "list each chain once (ids round sparsity to whole percent)",
            )
        seen[variant_id] = variant.chain


def _check_user_model(experiment: Experiment, data: Dataset) -> Any | None:
    """Load the user's model file (if any) and check it fits the dataset, before any output."""
    from toolkit.models import check_zoo_spec, is_zoo

    if is_zoo(experiment.model):
        check_zoo_spec(experiment.model, data.input_shape)
        return None
    from toolkit.model_files import load_user_model

    model = load_user_model(Path(experiment.model), experiment.allow_unsafe, sample=data.x_test)
    expected = tuple(model.input_shape[1:])
    if expected != data.input_shape:
        raise EdgesmithError(
            f"{experiment.model} expects inputs of shape {expected}, the {data.name} samples are {data.input_shape}",
            "pick the dataset the model was trained on",
        )
    outputs = model.output_shape[-1]
    if outputs is None or outputs < data.num_classes:
        raise EdgesmithError(
            f"{experiment.model} has {outputs} outputs but the {data.name} labels go up to {data.num_classes - 1}",
            "pick the dataset the model was trained on",
        )
    return model


def _prepare_run_dir(experiment: Experiment) -> Path:
    """Create (or reuse) the run folder; `force` drops the stage cache, not the folder."""
    run_dir = Path(experiment.output) / experiment.run_name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EdgesmithError(
            f"cannot write to the output folder {run_dir} ({exc.strerror})",
            "pass --output DIR with a folder you can write to",
        ) from None
    if experiment.force:
        shutil.rmtree(run_dir / CACHE_DIR, ignore_errors=True)
    return run_dir
