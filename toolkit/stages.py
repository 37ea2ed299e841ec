"""The cached stages of a run: baseline, export per target, benchmark (the variant model's stage
is toolkit.variant_stage).

Each stage computes its cache key from its inputs first and only builds the expensive thing
(training, conversion, timing) on a miss. Models are produced lazily, so a fully cached
variant never even loads TensorFlow's training machinery.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from toolkit.benchmark.device_bench import DEFAULT_BUDGET_S
from toolkit.benchmark.harness import score
from toolkit.config import Variant
from toolkit.data_stream import predict_in_chunks
from toolkit.files import float32_npy, gzip_size, link_or_copy, sha256_file, side_files, write_bytes
from toolkit.quant_debug.mixed import MIXED  # int8 with the worst layers kept float
from toolkit.records import Record
from toolkit.stage_specs import BaselineSpec, BenchSpec, ExportSpec, spec_key
from toolkit.targets import Target, per_channel
from toolkit.task import REGRESSION, is_regression, mean_predictor_mae, quality_change, score_outputs
from toolkit.variant_stage import VariantModel, variant_key

if TYPE_CHECKING:
    from toolkit.pipeline import Run

QAT_PRECISIONS = ("int8",)
INT8_PRECISIONS = ("int8", MIXED)  # calibrated, integer input
EXPORT_FORMAT = 4  # bump when the export code changes the files it writes or their bytes
RECORD_FORMAT = 6  # bump when bench_stage records gain fields or the method changes, so cached records are rebuilt
BASELINE_FORMAT = 2  # bump when the baseline stage's outputs change


def baseline_stage(state: Run, user_model: Any | None) -> Callable[[], Any]:
    """Train (or take) the full model once; return a loader for it; set its reference outputs
    (raw, for output fidelity; top-1, for agreement) and the checks of the full model itself."""
    from toolkit.model_files import load_saved, save_model, saved_model_name
    from toolkit.models import count_params

    exp, data = state.experiment, state.data
    if user_model is not None:
        state.baseline_file = f"baseline/{saved_model_name(user_model)}"
    path = state.run_dir / state.baseline_file
    reference = state.run_dir / "baseline" / "reference_outputs.npy"
    if user_model is not None:  # evaluated as-is: training settings do not matter
        spec = BaselineSpec(data.fingerprint, exp.model, file_sha256=sha256_file(Path(exp.model)),
                            format_version=BASELINE_FORMAT)
    else:
        spec = BaselineSpec(data.fingerprint, exp.model, epochs=exp.epochs, batch_size=exp.batch_size,
                            learning_rate=exp.learning_rate, patience=exp.patience, seed=exp.seed,
                            format_version=BASELINE_FORMAT)
    key = spec_key(state.cache, "baseline", spec)
    state.baseline_key = key
    cached = state.cache.get(key)
    if cached is None:
        model = user_model if user_model is not None else _train_baseline(state)
        outputs = predict_in_chunks(lambda x: model.predict(x, batch_size=256, verbose=0), data.x_test).astype(np.float32)
        save_model(model, path)
        write_bytes(reference, float32_npy(outputs))
        cached = {**score_outputs(outputs, data.y_test, data.task), "params": count_params(model),
                  "checks": _baseline_checks(model, data, exp.seed)}
        state.cache.put(key, cached, [path, reference])
        state.log(f"[baseline] test {_quality_log(cached)} ({cached['params']:,} parameters)")
    else:
        state.log(f"[baseline] cached: test {_quality_log(cached)}")
    state.baseline_quality = {name: cached[name] for name in ("accuracy", "mae", "rmse") if name in cached}
    state.baseline_params = cached["params"]
    state.baseline_checks = cached["checks"]
    state.reference_outputs = np.load(reference)
    return lru_cache(maxsize=1)(lambda: load_saved(path))


def _baseline_checks(model: Any, data: Any, seed: int) -> dict[str, Any]:
    """What the full model should beat (chance, or always predicting the mean) and its accuracy
    (MAE) with BatchNorm in train and inference mode."""
    from toolkit.fidelity import batchnorm_check, chance_accuracy

    batchnorm = batchnorm_check(model, data.x_test, data.y_test, seed, data.task)
    if data.task == REGRESSION:
        return {"mean_predictor_mae": mean_predictor_mae(data.y_train, data.y_test), "batchnorm": batchnorm}
    return {"chance_accuracy": chance_accuracy(data.y_test), "batchnorm": batchnorm}


def _quality_log(quality: dict[str, Any]) -> str:
    if "mae" in quality:
        return f"MAE {quality['mae']:.4g}, RMSE {quality['rmse']:.4g}"
    return f"accuracy {quality['accuracy']:.4f}"


def _train_baseline(state: Run) -> Any:
    from toolkit._tf import seed_everything
    from toolkit.models import build
    from toolkit.train import fit

    exp, data = state.experiment, state.data
    seed_everything(exp.seed)
    model = build(exp.model, data.input_shape, data.num_classes, task=data.task)
    state.log(f"[baseline] training {exp.model} on {data.name} ({len(data.x_train)} samples, up to {exp.epochs} epochs)")
    fit(model, data, exp.epochs, exp.batch_size, exp.learning_rate, exp.patience, exp.seed, log=state.log)
    return model


def export_and_bench_variant(state: Run, steps: tuple, variant: Variant, baseline: Callable[[], Any]) -> None:
    """Build one variant (lazily), export it for every target, check and benchmark each file."""
    from toolkit.passes import PassNotApplicable, chain_id

    variant_id = chain_id(steps)  # the empty chain is "baseline"
    built = VariantModel(state, variant_id, variant_key(state, steps), steps, baseline)
    finished = 0
    try:
        for target, precision in variant_exports(state.targets, variant, steps):
            with state.timed("build"):  # the variant's training happens in its first export
                path = export_stage(state, built, target, precision)
            with state.timed("measure"):
                measured = bench_stage(state, path, target, precision)
            state.records.append(Record.from_dict({**measured, **export_details(state, built, target, precision),
                                                   "variant": variant_id, "chain": variant.chain,
                                                   "params": built.params()}))
            finished += 1
            state.artifacts_finished()
        if steps:
            state.variant_info[variant_id] = built.details()
    except PassNotApplicable as exc:
        skip_variant(state, variant_id, str(exc), planned_artifacts(state.targets, variant, steps) - finished)


def skip_variant(state: Run, variant_id: str, reason: str, artifacts: int) -> None:
    """Report a variant that could not be made (the reason goes into run.json and the report)."""
    state.log(f"[{variant_id}] skipped: {reason}")
    state.skipped.append({"variant": variant_id, "reason": reason})
    state.artifacts_finished(artifacts)


def variant_exports(targets: list[Target], variant: Variant, steps: tuple) -> list[tuple[Target, str]]:
    """(target, precision) of every file one variant is exported to, in run order."""
    return [(target, precision) for target in targets for precision in _precisions(target, variant, steps)]


def planned_artifacts(targets: list[Target], variant: Variant, steps: tuple) -> int:
    """How many files one variant is exported to (one per target and precision)."""
    return len(variant_exports(targets, variant, steps))


def _precisions(target: Target, variant: Variant, steps: tuple) -> list[str]:
    """The target's precisions the variant asks for; int8-mixed right after int8 where the
    target can run a float layer, and not for QAT chains (trained for int8 already)."""
    from toolkit.passes import is_qat_chain
    from toolkit.quant_debug.mixed import can_mix

    wanted = [p for p in target.precisions if p in variant.precisions]
    if is_qat_chain(steps):
        return [p for p in wanted if p in QAT_PRECISIONS]
    if MIXED in variant.precisions and "int8" in wanted and can_mix(target):
        wanted.insert(wanted.index("int8") + 1, MIXED)
    return wanted


def export_stage(state: Run, built: VariantModel, target: Target, precision: str) -> Path:
    """Write `<target>/<variant>__<precision>.<ext>` unless an intact cached copy exists."""
    from toolkit.passes import is_qat_chain
    from toolkit.runtimes import runtime_named

    exp = state.experiment
    runtime = runtime_named(target.runtime)
    path, key = export_location(state, built.variant_id, built.key, target, precision)
    same = _once(state, ("export", built.key, runtime.NAME, precision, _export_settings(state, target, precision)),
                 lambda: path)
    if state.cache.get(key) is None:
        details: dict[str, Any] = {}
        if same != path and same.is_file():  # another target's file from identical settings: the same bytes
            for source in (same, *side_files(same)):  # with its C source and Vela's files, named alike
                link_or_copy(source, path.parent / source.name)
            details = state.cache.get(export_location(state, built.variant_id, built.key, _target_of(state, same), precision)[1]) or {}
        elif precision == MIXED:
            details = _export_mixed(state, built, target, path)
        else:
            runtime.export(built.model(), path, target, precision, state.calibration, exp.opset, is_qat_chain(built.steps))
            if is_qat_chain(built.steps) and not per_channel(target):
                state.log(f"[export] {path.relative_to(state.run_dir)} keeps the per-channel weight scales QAT trained: "
                          f"{target.name}'s per_channel = false applies to post-training int8")
        state.cache.put(key, details, [path, *side_files(path)])  # a process pool or Ray worker sends them all back
        state.log(f"[export] {path.relative_to(state.run_dir)}" + (f" (same bytes as {same.relative_to(state.run_dir)})" if same != path else ""))
    return path


def export_location(state: Run, variant_id: str, model_key: str, target: Target, precision: str) -> tuple[Path, str]:
    """Where one export is written and its cache key, known before the model is built."""
    from toolkit.runtimes import runtime_named

    exp = state.experiment
    runtime = runtime_named(target.runtime)
    path = state.run_dir / target.name / f"{variant_id}__{precision}.{runtime.SUFFIX}"
    return path, spec_key(state.cache, "export", ExportSpec(
        EXPORT_FORMAT, model_key, runtime.NAME, precision, _export_settings(state, target, precision),
        (exp.calibration_samples, exp.seed) if precision in INT8_PRECISIONS else None, str(path.relative_to(state.run_dir)),
    ))


def export_details(state: Run, built: VariantModel, target: Target, precision: str) -> dict[str, Any]:
    """What an export adds to its record: for int8-mixed, the layers kept float and why."""
    if precision != MIXED:
        return {}
    return dict(state.cache.get(export_location(state, built.variant_id, built.key, target, precision)[1]) or {})


def _export_settings(state: Run, target: Target, precision: str) -> dict[str, Any]:
    """The runtime's settings that change the file's bytes; for int8-mixed (the int8 file's
    settings) also the fallback asked for and the budgets it grows within."""
    from toolkit.runtimes import runtime_named

    exp = state.experiment
    runtime = runtime_named(target.runtime)
    if precision != MIXED:
        return runtime.export_spec(target, precision, exp.opset)
    return {**runtime.export_spec(target, "int8", exp.opset), "float_fallback": exp.float_fallback,
            "max_accuracy_drop": exp.max_accuracy_drop, "max_size_kb": exp.max_size_kb}


def _target_of(state: Run, path: Path) -> Target:
    """The target whose folder holds `path`."""
    return next(target for target in state.targets if target.name == path.parent.name)


def _export_mixed(state: Run, built: VariantModel, target: Target, path: Path) -> dict[str, Any]:
    from toolkit.quant_debug.mixed import export_mixed

    exp, data = state.experiment, state.data
    details = export_mixed(built.model(), target, state.calibration, data.x_test, data.y_test, path,
                           exp.float_fallback, exp.max_accuracy_drop, exp.max_size_kb)
    kept = ", ".join(details["float_layers"]) or "none (int8 is within the budget)"
    state.log(f"[fallback] {built.variant_id} on {target.name}: float layers {kept}")
    return details


def bench_stage(state: Run, path: Path, target: Target, precision: str) -> dict[str, Any]:
    """Accuracy, agreement, size, latency and compatibility of one artifact (cached by its bytes)."""
    from toolkit.checks import check_artifact, compiler_available
    from toolkit.devices import measure, not_measured, where_timed
    from toolkit.devices.local import LOCAL
    from toolkit.runtimes import runtime_named

    exp, data = state.experiment, state.data
    runtime = runtime_named(target.runtime)
    device = state.devices.get(target.name, LOCAL)
    settings = _bench_settings(exp)
    digest = sha256_file(path)
    relative = str(path.relative_to(state.run_dir))
    key = spec_key(state.cache, "bench", BenchSpec(
        RECORD_FORMAT, digest, relative, settings, state.baseline_key, target.name,
        sha256_file(target.source), compiler_available(target), device.identity(), exp.device_accuracy and device.remote,
    ))
    record = state.cache.get(key)
    if record is None:
        quality = _once(state, ("score", digest, runtime.NAME),
                        lambda: score(path, data.x_test, data.y_test, state.reference_outputs, runtime.open_runner, data.task))
        compatibility = check_artifact(path, target).to_dict()
        timing_inputs = ("timing", digest, device.identity(), device.remote and target.accelerator.delegate)
        estimated = runtime.estimated_timing(target, compatibility)
        deferred = (estimated is None and not device.remote and state.deferred is not None
                    and _shared_key(timing_inputs) not in state.shared)
        timing = estimated or {
            **(not_measured(settings) if deferred else _once(
                state, timing_inputs,
                lambda: measure(device, path, data.x_test, data.y_test, settings, target, exp.device_accuracy))),
            **where_timed(device, target),
        }
        record = {
            "target": target.name,
            "format": runtime.SUFFIX,
            "precision": precision,
            "path": relative,
            "size_bytes": path.stat().st_size,
            "gzip_bytes": gzip_size(path),
            **quality,
            **quality_change(state.baseline_quality, quality, data.task),
            "task": data.task,
            "raw_input": _raw_input(path, precision, data),
            **timing,
            "compatibility": compatibility,
            "macs": compatibility.get("macs_total"),
            "sha256": digest,
            "sparsity": None,
            "sparsity_per_layer": None,
            "int8_kernels": None,
            **runtime.record_extras(path, "int8" if precision == MIXED else precision, data.x_test, compatibility),
        }
        if deferred:
            state.deferred.append(DeferredTiming(key, path, target, timing_inputs, record))
            return dict(record)
        _finish_record(state, key, path, record)
    return dict(record)


@dataclass(frozen=True)
class DeferredTiming:
    """An artifact scored and checked whose timing on this machine waits for `time_deferred`."""

    key: str
    path: Path
    target: Target
    timing_inputs: tuple
    record: dict[str, Any]


def time_deferred(state: Run) -> None:
    """Time every deferred artifact with the others, their sessions interleaved
    (device_bench.measure_interleaved), then finish their records: the figures of one run
    then see the same states of a machine that drifts between speeds over seconds."""
    from toolkit.benchmark.device_bench import BenchSettings
    from toolkit.benchmark.harness import measure_together
    from toolkit.devices import where_timed
    from toolkit.devices.local import LOCAL

    pending, state.deferred = state.deferred or [], None
    distinct = list({_shared_key(item.timing_inputs): item for item in pending}.values())
    settings, x = _bench_settings(state.experiment), state.data.x_test
    with state.timed("measure"):
        if distinct:
            state.log(f"[bench] timing {len(distinct)} files on this machine, their sessions interleaved")
            latencies = measure_together([(item.path, x) for item in distinct], BenchSettings(
                settings["runs"], settings["threads"], 1, settings["budget_s"], settings["target_width"]))
            for item, latency in zip(distinct, latencies):
                state.shared[_shared_key(item.timing_inputs)] = LOCAL.benchmark(
                    item.path, x, settings["runs"], settings["threads"], settings["batch"], None, settings["budget_s"],
                    settings["target_width"], latency)
        where = {record.path: index for index, record in enumerate(state.records)}
        for item in pending:
            timing = {**state.shared[_shared_key(item.timing_inputs)], **where_timed(LOCAL, item.target)}
            record = {**item.record, **timing}
            _finish_record(state, item.key, item.path, record)
            index = where[record["path"]]
            state.records[index] = state.records[index].with_fields(**timing)


def _bench_settings(exp: Any) -> dict[str, Any]:
    """How the experiment times each file (part of every record's cache key)."""
    return {"runs": exp.bench_runs, "threads": exp.bench_threads, "batch": exp.bench_batch,
            "target_width": exp.bench_target_width,  # 0: the fixed plan, with its own per-figure cap
            "budget_s": exp.bench_budget_s if exp.bench_target_width else DEFAULT_BUDGET_S}


def _finish_record(state: Run, key: str, path: Path, record: dict[str, Any]) -> None:
    """Cache a measured record (a failed measurement is taken again by the next run) and log it."""
    if record["latency_ms"] is not None:
        state.cache.put(key, record, [path])
    state.log(f"[bench] {record['path']}: {_short_quality(record)}  {_p50_text(record)}  {record['size_bytes'] / 1024:.1f} KB"
              + (f"  ({record['latency_error']})" if record.get("latency_error") else ""))


def _short_quality(record: dict[str, Any]) -> str:
    return f"MAE {record['mae']:.4g}" if is_regression(record) else f"acc {record['accuracy']:.4f}"


def _once(state: Run, inputs: tuple, compute: Callable[[], Any]) -> Any:
    """`compute()` the first time a run meets `inputs`, its result after that: the cpu and gpu
    targets export the same bytes from the same settings, and the same bytes are scored and
    timed on the same machine once (a failed measurement is not kept)."""
    key = _shared_key(inputs)
    if key not in state.shared:
        result = compute()
        if isinstance(result, dict) and "latency_ms" in result and result["latency_ms"] is None:
            return result
        state.shared[key] = result
    return state.shared[key]


def _shared_key(inputs: tuple) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)


def _p50_text(record: dict[str, Any]) -> str:
    p50 = (record["latency_ms"] or {}).get("p50")
    kind = "estimated " if record.get("latency_kind") == "estimated" else ""
    if p50 is not None:
        return f"{kind}p50 {p50:.4f} ms"
    return "no estimate" if kind else "not timed"


def _raw_input(path: Path, precision: str, data: Any) -> dict[str, Any] | None:
    """int8 artifacts: how raw pixels map to the input tensor (can camera bytes go in as-is?)."""
    if precision not in INT8_PRECISIONS:
        return None
    from toolkit.raw_input import raw_input

    return raw_input(path, data.preprocess, data.raw_dtype)
