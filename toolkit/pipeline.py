"""The run: baseline → passes → per-target export → check → benchmark → reports.

Every stage is cached by content (see cache.py), so a re-run only redoes what changed and an
interrupted run resumes where it stopped. Inputs are validated before the run folder is
touched, so a bad flag never leaves a half-made folder behind.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from toolkit.cache import CACHE_DIR, StageCache
from toolkit.config import Experiment, Variant
from toolkit.data import Dataset, load_configured
from toolkit.errors import EdgesmithError
from toolkit.records import Record
from toolkit.run_lock import run_lock
from toolkit.targets import Target, load_target
from toolkit.task import REGRESSION

Log = Callable[[str], None]
Progress = Callable[[int, int], None]  # (artifacts finished, artifacts planned)


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
    baseline_file: str = "baseline/model.h5"  # relative to run_dir; model.keras for a Keras 3 model kept as it is
    baseline_quality: dict[str, float] = field(default_factory=dict)  # toolkit.task.score_outputs of the full model
    baseline_params: int = 0
    reference_outputs: np.ndarray | None = None
    baseline_checks: dict[str, Any] = field(default_factory=dict)
    calibration: np.ndarray | None = None
    records: list[Record] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    variant_info: dict[str, Any] = field(default_factory=dict)
    planned: int = 0
    finished: int = 0
    progress: Progress | None = None
    devices: dict[str, Any] = field(default_factory=dict)  # target name → the device it is timed on
    shared: dict[str, Any] = field(default_factory=dict)  # work done once per run for identical inputs (stages._once)
    deferred: list[Any] | None = None  # a list: timings on this machine wait for stages.time_deferred
    phase_seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase: baseline, build, measure

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the block to `phase` (run.json shows where a run's time went)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + time.perf_counter() - started

    def artifacts_finished(self, count: int = 1) -> None:
        """Count `count` planned artifacts as done (benchmarked, cached or skipped) and report it."""
        self.finished += count
        if self.progress is not None:
            self.progress(self.finished, self.planned)


def run(experiment: Experiment, log: Log = print, progress: Progress | None = None,
        dataset: Dataset | None = None) -> Path:
    """Execute the experiment and return the run folder.

    `log` gets one line per step; `progress(finished, planned)` is called as each artifact
    (one variant × target × precision) finishes, so a caller can show how far the run is;
    `dataset` replaces loading one by name (the Python API passes arrays this way).
    """
    from toolkit.stages import planned_artifacts

    started = time.time()
    with open_run(experiment, log, progress, dataset, check=_checked_chains) as (state, user_model, chains):
        plan = _plan(experiment, chains)
        state.planned = sum(planned_artifacts(state.targets, variant, steps) for variant, steps in plan)
        _log_fallback_refusals(state)
        _execute(state, plan, user_model, started, _passes_refused(user_model, chains))
    return state.run_dir


def _checked_chains(experiment: Experiment) -> list[tuple[Variant, tuple]]:
    """The experiment's chains, parsed, with their controls, each id once."""
    from toolkit.passes import parse_chain

    chains = _with_controls([(variant, parse_chain(variant.chain)) for variant in experiment.variants])
    _reject_duplicate_ids(chains)
    _reject_empty_plan(experiment, chains)
    return chains


def _reject_empty_plan(experiment: Experiment, chains: list[tuple[Variant, tuple]]) -> None:
    """A run that would make no file is a mistake in its settings, not a finished run."""
    from toolkit.passes import is_qat_chain
    from toolkit.stages import planned_artifacts

    targets = [load_target(name, experiment.targets_dir) for name in experiment.targets]
    plan = _plan(experiment, chains)
    fix = "ask for a precision the targets support (`edgesmith targets` lists them)"
    if not sum(planned_artifacts(targets, variant, steps) for variant, steps in plan):
        raise EdgesmithError(
            f"nothing to build: precisions {list(experiment.precisions)} and {len(chains)} variant(s) give no file "
            f"for the targets {', '.join(experiment.targets)}", f"{fix}, or for a variant")
    for variant, steps in plan[1:]:  # a variant that would train for nothing
        if not planned_artifacts(targets, variant, steps):
            why = " (a chain ending in qat exports int8 only)" if is_qat_chain(steps) else ""
            raise EdgesmithError(f"variant {'+'.join(variant.chain)} with precisions {list(variant.precisions)} gives no "
                                 f"file for the targets {', '.join(experiment.targets)}{why}", f"{fix}, or drop the variant")


@contextlib.contextmanager
def open_run(experiment: Experiment, log: Log, progress: Progress | None = None, dataset: Dataset | None = None,
             check: Callable[[Experiment], Any] = lambda experiment: None,
             needs_passes: bool = False) -> Iterator[tuple[Run, Any | None, Any]]:
    """The state of a run, holding the run folder's lock: targets loaded, `check(experiment)`
    passed, devices connected, data loaded, user model checked, all before the folder is touched.
    Yields (state, the user's model or None, what `check` returned); `edgesmith search` shares it
    with `needs_passes` (a Keras 3 model that is not translated is refused then)."""
    targets = [load_target(name, experiment.targets_dir) for name in experiment.targets]
    checked = check(experiment)
    _set_threads(experiment, log)
    from toolkit.devices import connect_devices
    from toolkit.scale import session

    with session(experiment, log):
        devices = connect_devices(targets, experiment.devices)  # an unreachable device fails here, before training
        if dataset is None:
            experiment = _data_defaults_from_model(experiment, log)
        data = dataset or load_configured(experiment.to_dict())
        _log_data_source(data, log)
        user_model = _check_user_model(experiment, data, log, needs_passes)
        calibration = data.calibration_sample(experiment.calibration_samples, experiment.seed)
        run_dir = _prepare_run_dir(experiment)
        with run_lock(run_dir, wait=not experiment.no_wait, log=log):
            if experiment.force:  # only once the folder is ours: another run may be using the cache
                shutil.rmtree(run_dir / CACHE_DIR, ignore_errors=True)
            cache = StageCache(run_dir, enabled=not experiment.force)
            yield (Run(experiment, run_dir, data, targets, cache, log, calibration=calibration, progress=progress,
                       devices=devices), user_model, checked)


def _log_data_source(data: Dataset, log: Log) -> None:
    """What the loader did that changes what the user's data means: the folder layout it read
    (and folders it did not use), files left out, streaming."""
    if data.source.get("layout"):
        log(f"[data] {data.source['layout']}")
    if data.source.get("ignored_files"):
        from toolkit.data_folder import suffix_counts

        log(f"[data] ignored {suffix_counts(data.source['ignored_files'])} in the class folders: not images edgesmith reads")
    if data.source.get("unlisted_images"):
        log(f"[data] {data.source['unlisted_images']} image(s) in the folder are not listed in targets.csv: left out")
    if data.streamed:
        log(f"[data] {data.source['float32_bytes'] / 2**30:.1f} GiB as float32, more than a quarter of the memory "
            "available: samples stay uint8 and are preprocessed a batch at a time")
    shape = tuple(data.input_shape)
    if len(shape) == 3 and shape[0] in (1, 3) and shape[2] not in (1, 3, 4) and min(shape[1:]) > 4:
        log(f"[data] samples shaped {shape} are read as height × width × channels ({shape[2]} channels); if they are "
            f"channels-first images, transpose them to (n, {shape[1]}, {shape[2]}, {shape[0]}) first")


def _passes_refused(user_model: Any | None, chains: list[tuple[Variant, tuple]]) -> dict[str, str]:
    """Chain id → why it cannot be built: every chain, for a Keras 3 model kept untranslated."""
    from toolkit.keras3 import PTQ_ONLY, untranslated_reason
    from toolkit.passes import chain_id

    reason = untranslated_reason(user_model)
    return {} if reason is None else {chain_id(steps): f"{reason}; {PTQ_ONLY}" for _, steps in chains}


def _execute(state: Run, plan: list[tuple[Variant, tuple]], user_model: Any | None, started: float,
             refused: dict[str, str]) -> None:
    """The stages, in order, then the cross-check and the run's top-level files; the chains in
    `refused` (chain id → why) are reported as skipped."""
    from toolkit.crosscheck import add_fp32_crosscheck
    from toolkit.outputs import write_outputs
    from toolkit.passes import chain_id
    from toolkit.stages import baseline_stage, export_and_bench_variant, planned_artifacts, skip_variant, time_deferred

    state.artifacts_finished(0)  # tells the caller how many artifacts are planned
    with state.timed("baseline"):
        baseline = baseline_stage(state, user_model)
    from toolkit.scale import build_phase

    with state.timed("build"):  # processes or Ray: the loop below then finds every export cached and only times
        buildable = [(variant, steps) for variant, steps in plan if chain_id(steps) not in refused]
        failed = {**refused, **build_phase(state, buildable)}  # variant id → why it could not be built
    state.deferred = []
    for variant, steps in plan:
        if chain_id(steps) in failed:
            skip_variant(state, chain_id(steps), failed[chain_id(steps)], planned_artifacts(state.targets, variant, steps))
        else:
            export_and_bench_variant(state, steps, variant, baseline)
    time_deferred(state)
    state.records = add_fp32_crosscheck(state.run_dir, state.records, state.data.x_test)
    write_outputs(state, started)


def _set_threads(experiment: Experiment, log: Log) -> None:
    """`train_threads`, set before anything starts TensorFlow (a user's model file would)."""
    from toolkit._tf import limit_threads

    if experiment.train_threads and not limit_threads(experiment.train_threads):
        log(f"[threads] TensorFlow already runs in this process with its own thread count: train_threads = "
            f"{experiment.train_threads} applies only to a fresh process (the `edgesmith` command, a Ray task)")


def _plan(experiment: Experiment, chains: list[tuple[Variant, tuple]]) -> list[tuple[Variant, tuple]]:
    """The full model's exports first, then each chain's, with the float fallback's precisions."""
    return _with_float_fallback(experiment, [(Variant(chain=(), precisions=experiment.precisions), ()), *chains])


def _with_float_fallback(experiment: Experiment, plan: list[tuple[Variant, tuple]]) -> list[tuple[Variant, tuple]]:
    """With `float_fallback`, every variant that has int8 also asks for int8-mixed (the
    targets that cannot run a float layer leave it out: stages._precisions)."""
    from toolkit.quant_debug.mixed import MIXED

    if not experiment.float_fallback:
        return plan
    return [(dataclasses.replace(variant, precisions=(*variant.precisions, MIXED))
             if "int8" in variant.precisions else variant, steps) for variant, steps in plan]


def _log_fallback_refusals(state: Run) -> None:
    """Say up front which targets get no int8-mixed file, why, and what to do instead."""
    from toolkit.quant_debug.analysis import QAT_FIX
    from toolkit.quant_debug.mixed import refused_targets

    if state.experiment.float_fallback:
        for name, reason in refused_targets(state.targets).items():
            state.log(f"[fallback] no int8-mixed on {name}: {reason}; {QAT_FIX}")


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


def _data_defaults_from_model(experiment: Experiment, log: Log) -> Experiment:
    """image_size, color and preprocess left unset follow a model file (`data_defaults`)."""
    from toolkit.model_inputs import data_defaults
    from toolkit.models import is_zoo

    if is_zoo(experiment.model):
        return experiment
    return dataclasses.replace(experiment, **data_defaults(Path(experiment.model), experiment.to_dict(), log))


def _check_user_model(experiment: Experiment, data: Dataset, log: Log, needs_passes: bool) -> Any | None:
    """Load the user's model file (if any) and check it fits the dataset, before any output."""
    from toolkit.models import check_zoo_spec, is_zoo

    if is_zoo(experiment.model):
        check_zoo_spec(experiment.model, data.input_shape)
        return None
    from toolkit.model_files import load_user_model
    from toolkit.model_inputs import declared_input_shape
    from toolkit.top1 import is_single_output

    model = load_user_model(Path(experiment.model), experiment.allow_unsafe, sample=data.x_test)
    expected = tuple(model.input_shape[1:])
    declared = declared_input_shape(Path(experiment.model))
    if declared is not None and None in declared and None not in expected:
        log(f"[model] input {declared} fixed to the data's {expected}: converters and edge runtimes need static shapes")
    if expected != data.input_shape:
        fix = "pick the dataset the model was trained on"
        if data.name == "folder" and len(expected) == 3 and None not in expected:
            color = "grayscale" if expected[2] == 1 else "rgb"
            fix = f"leave image_size and color unset, or set image_size = \"{expected[1]}x{expected[0]}\" and color = \"{color}\" (the model's input)"
        raise EdgesmithError(
            f"{experiment.model} expects inputs of shape {expected}, the {data.name} samples are {data.input_shape}", fix)
    if len(model.outputs) != 1:
        raise EdgesmithError(f"{experiment.model} has {len(model.outputs)} outputs; edgesmith compares one output (class scores or regression values)",
                             "save a model with a single output (keras.Model(inputs, the_class_scores))")
    outputs = model.output_shape[-1]
    if data.task == REGRESSION:
        if outputs != data.num_classes or len(model.output_shape) != 2:
            raise EdgesmithError(f"{experiment.model} outputs {tuple(model.output_shape[1:])} per sample but the "
                                 f"{data.name} data has {data.num_classes} targets per sample",
                                 "pick the dataset the model was trained on")
        return _keras3_kept(model, experiment, log, needs_passes)
    binary = is_single_output(tuple(model.output_shape)) and data.num_classes == 2
    if outputs is None or (outputs < data.num_classes and not binary):
        raise EdgesmithError(
            f"{experiment.model} has {outputs} outputs but the {data.name} labels go up to {data.num_classes - 1}",
            "pick the dataset the model was trained on",
        )
    if outputs > data.num_classes and not binary:
        log(f"[model] {experiment.model} has {outputs} outputs but the {data.name} data has {data.num_classes} classes: "
            f"a test sample whose top score is output {data.num_classes} or above counts as wrong")
    return _keras3_kept(model, experiment, log, needs_passes)


def _keras3_kept(model: Any, experiment: Experiment, log: Log, needs_passes: bool) -> Any:
    """The user's model; a Keras 3 model that was not translated is refused where the passes
    are needed, and said to be kept as it is otherwise."""
    from toolkit.keras3 import PTQ_ONLY, untranslated_reason

    reason = untranslated_reason(model)
    if reason and needs_passes:
        raise EdgesmithError(f"{experiment.model}: {reason}, and a search needs the compression passes, which need tf_keras",
                             "run `edgesmith run` for its post-training precisions, or rebuild the model from the layers the README lists")
    if reason:
        log(f"[model] Keras 3 model kept as it is: {reason}; {PTQ_ONLY}")
    return model


def _prepare_run_dir(experiment: Experiment) -> Path:
    """Create (or reuse) the run folder and check it is writable."""
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
    return run_dir
