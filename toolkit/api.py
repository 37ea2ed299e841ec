"""The Python API: what the CLI does, as functions a notebook or a script can call.

Nothing prints unless asked (`verbose=True`); every function returns data (records, reports,
paths) and raises `EdgesmithError` with the problem and the fix on bad input, like the CLI.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from toolkit.config import Experiment, from_dict, load_experiment
from toolkit.errors import EdgesmithError
from toolkit.records import Record, as_records, load_results
from toolkit.targets import Target, load_target

ExperimentLike = Experiment | Mapping[str, Any] | str | Path


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder, one Record per artifact, the best pick per target, run.json."""

    run_dir: Path
    records: list[Record]
    best: dict[str, str | None]
    info: dict[str, Any]

    def record(self, variant: str, target: str, precision: str) -> Record:
        """The record of one artifact, e.g. result.record("qat", "cpu", "int8")."""
        for record in self.records:
            if (record.variant, record.target, record.precision) == (variant, target, precision):
                return record
        raise EdgesmithError(f"the run has no {variant} {precision} artifact for {target}",
                             "see result.records for what the run produced")


def run(experiment: ExperimentLike = None, *, data: Mapping[str, np.ndarray] | None = None,
        verbose: bool = False) -> RunResult:
    """Run the whole pipeline. `experiment`: an Experiment, a dict of its keys, or a TOML path
    (None: the defaults). `data`: arrays x_train, y_train, x_test, y_test to use instead of a
    named dataset (uint8 images are scaled by 1/255, other dtypes used as they are)."""
    from toolkit.data import from_arrays
    from toolkit.pipeline import run as run_pipeline

    exp = _experiment(experiment)
    dataset = None
    if data is not None:
        name = exp.name or f"arrays-{Path(exp.model).stem}"
        exp = dataclasses.replace(exp, dataset="arrays", name=name)
        dataset = from_arrays(data, exp.seed, preprocess=exp.preprocess, task=exp.task)
    run_dir = run_pipeline(exp, log=print if verbose else _quiet, dataset=dataset)
    records, info = load_results(run_dir)
    return RunResult(run_dir, records, dict(info.get("best") or {}), info)


def check(path: str | Path, target: str | Target) -> Any:
    """Will this .tflite/.onnx file run fully on `target`? Returns a CompatibilityReport
    (`.compatible`, `.blockers`, `.ops`, `.to_dict()`, `.format_text()`)."""
    from toolkit.benchmark.isolated import survives_loading
    from toolkit.checks import check_artifact

    path = _file_path(path)
    survives_loading(path)
    return check_artifact(path, _target(target))


def bench(path: str | Path, *, threads: int = 1, batch: int = 1, runs: int = 300,
          inputs: np.ndarray | None = None, device: str | None = None) -> dict[str, Any]:
    """Latency (p50/p90/p99 with intervals), all-core latency, throughput at `batch` and memory
    of one model file, with the same method as `run`. `inputs`: real samples shaped like the
    model's input (float, preprocessed as in training); default: uniform random values.
    `device`: measure on that device instead of here (`ssh://user@host[:port]`)."""
    from toolkit.benchmark.isolated import survives_loading
    from toolkit.benchmark.runners import open_runner
    from toolkit.devices import bench_file

    path = _file_path(path)
    for name, value in (("threads", threads), ("batch", batch), ("runs", runs)):
        _check_count(name, value)
    survives_loading(path)
    shape = open_runner(path).input_shape
    if inputs is None:
        inputs = np.random.default_rng(0).random((max(batch, 1), *shape), dtype=np.float32)
    inputs = np.asarray(inputs, dtype=np.float32)
    if tuple(inputs.shape[1:]) != shape:
        raise EdgesmithError(f"inputs are shaped {inputs.shape} but {path.name} takes (n, {', '.join(map(str, shape))})",
                             "pass samples shaped (n, *input_shape)")
    return bench_file(path, inputs, runs, threads, batch, device)


def convert(model: Any, target: str | Target, precision: str, *, calibration: np.ndarray | None = None,
            output: str | Path | None = None, opset: int = 17, quantization_aware: bool = False) -> Path:
    """Export a tf_keras model (or a model file, loaded as `load_model` does) for `target` at
    `precision` (fp32, fp16, dynamic, int8) and return the file. int8 needs `calibration`: a few
    hundred preprocessed training samples. `quantization_aware`: the model came out of QAT
    (exported from its trained ranges)."""
    from toolkit.config import PRECISIONS
    from toolkit.runtimes import runtime_named

    target = _target(target)
    if isinstance(model, (str, Path)):
        model = load_model(model)
    if precision not in PRECISIONS:
        raise EdgesmithError(f"unknown precision '{precision}'", f"use one of: {', '.join(PRECISIONS)}")
    if precision == "int8" and calibration is None:
        raise EdgesmithError("int8 needs calibration samples", "pass calibration=x_train[:256] (preprocessed)")
    runtime = runtime_named(target.runtime)
    output = Path(output) if output else Path(f"{getattr(model, 'name', 'model')}__{precision}.{runtime.SUFFIX}")
    if output.suffix != f".{runtime.SUFFIX}":
        raise EdgesmithError(f"output {output} does not end in .{runtime.SUFFIX}, the format {target.name} gets",
                             f"name the file {output.with_suffix('.' + runtime.SUFFIX).name}")
    samples = None if calibration is None else np.asarray(calibration, dtype=np.float32)
    return runtime.export(model, output, target, precision, samples, opset, quantization_aware)


def select(run_or_records: RunResult | str | Path | Sequence[Mapping[str, Any]], target: str, *,
           max_accuracy_drop: float = 1.0, max_latency_ms: float | None = None,
           max_size_kb: float | None = None, max_mae_increase: float = 5.0) -> Any:
    """The artifact to ship on `target` within the budgets (a Selection: `.winner`, `.reasons`,
    `.format_text()`), from a RunResult, a run folder or a list of records. A regression's
    records are held to `max_mae_increase` (percent of the full model's MAE) instead of
    `max_accuracy_drop` (percentage points)."""
    from toolkit.selection import select_best

    _check_budget("max_accuracy_drop", max_accuracy_drop)
    _check_budget("max_mae_increase", max_mae_increase)
    for name, value in (("max_latency_ms", max_latency_ms), ("max_size_kb", max_size_kb)):
        if value is not None:
            _check_budget(name, value)
    if isinstance(run_or_records, RunResult):
        records = run_or_records.records
    elif isinstance(run_or_records, (str, Path)):
        records, _ = load_results(Path(run_or_records))
    elif isinstance(run_or_records, Sequence):
        records = as_records(run_or_records)
    else:
        raise EdgesmithError(f"cannot select from a {type(run_or_records).__name__}",
                             "pass a RunResult, a run folder or a list of records")
    return select_best(records, target, max_accuracy_drop, max_latency_ms, max_size_kb, max_mae_increase)


def load_model(path: str | Path, allow_unsafe: bool = False) -> Any:
    """A Keras model file (.keras, .h5, SavedModel folder) as a tf_keras model, refusing files
    that contain code (Lambda layers) unless `allow_unsafe`. A Keras 3 file is translated, or kept
    as the Keras 3 model when it cannot be (`toolkit.keras3.untranslated_reason(model)` says why:
    it converts at every post-training precision, but the compression passes need tf_keras)."""
    from toolkit.model_files import load_user_model

    return load_user_model(Path(path), allow_unsafe)


def _experiment(experiment: ExperimentLike) -> Experiment:
    if experiment is None:
        return Experiment()
    if isinstance(experiment, Experiment):
        return experiment
    if isinstance(experiment, Mapping):
        return from_dict(experiment, source="experiment dict")
    if isinstance(experiment, (str, Path)):
        return load_experiment(Path(experiment))
    raise EdgesmithError(f"cannot run a {type(experiment).__name__}", "pass an Experiment, a dict or a TOML path")


def _file_path(path: Any) -> Path:
    if not isinstance(path, (str, Path)):
        raise EdgesmithError(f"a model file's path is a str or Path, not a {type(path).__name__}",
                             "pass the .tflite or .onnx file's path")
    return Path(path)


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise EdgesmithError(f"{name} must be a whole number from 1 (got {value!r})", f"pass {name}=1 or more")


def _check_budget(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
        raise EdgesmithError(f"{name} must be a number from 0 (got {value!r})", f"pass {name}=0 for no limit, or a positive budget")


def _target(target: str | Target) -> Target:
    return target if isinstance(target, Target) else load_target(str(target))


def _quiet(message: str) -> None:
    """The pipeline's log when the caller did not ask for progress."""


def explain(model: Any, target: str | Target = "cpu", *, data: Mapping[str, np.ndarray] | Any = None,
            dataset: str = "digits", data_dir: str = "", fallback: str | Sequence[str] | None = None,
            max_accuracy_drop: float = 1.0, samples: int = 200, output: str | Path | None = None) -> Any:
    """Why int8 lost accuracy on `target`: each quantized layer's error (SQNR, RMSE in
    quantization steps, share of the total) on `samples` test samples, worst first, and the
    worst layer kept in float. `model`: a tf_keras model, a model file or a run folder.
    `fallback`: "auto", "auto:N" or layer names to keep float until the drop is within
    `max_accuracy_drop` pp (refused on int8-only targets). Returns an Explanation
    (`.layers`, `.steps`, `.findings()`, `.format_text()`, `.to_dict()`)."""
    from toolkit.quant_debug import explain_model, parse_fallback
    from toolkit.quant_debug.analysis import check_request
    from toolkit.quant_debug.inputs import resolve

    target = _target(target)
    plan = parse_fallback(fallback) if fallback is not None else None
    check_request(target, plan)
    named = None if dataset == "digits" and not data_dir else {"dataset": dataset, "data": data_dir}
    subject = resolve(model, data, named)  # None: a run folder's own dataset, else digits
    folder = Path(output) if output else subject.default_output / target.name
    return explain_model(subject.model, target, subject.data, folder, plan, max_accuracy_drop, samples,
                         subject.calibration_samples, subject.seed)
