"""Everything a finished run writes at its top level: results, run info, reports, manifest.

Written last and atomically, so the folder's summary files always describe finished stages.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from toolkit.best import choose_and_copy
from toolkit.cpu_features import describe
from toolkit.files import json_text, write_json, write_text
from toolkit.manifest import build_manifest
from toolkit.records import records_json
from toolkit.report.flags import findings
from toolkit.report.tables import csv_text, markdown_table, text_table
from toolkit.stale import previous_targets, remove_stale
from toolkit.task import CLASSIFICATION, REGRESSION, quality_text

if TYPE_CHECKING:
    from toolkit.pipeline import Run


def write_outputs(state: Run, started: float, extra: Mapping[str, Any] | None = None) -> None:
    """results.json/.csv, run.json, report.md, report.html and manifest.json; `extra` goes into
    run.json (a search's summary, which the report then shows)."""
    run_dir: Path = state.run_dir
    records = state.records
    earlier_targets = previous_targets(run_dir)
    info = {**run_info(state, started), **(extra or {})}
    info["budget"] = {
        **({"max_mae_increase_pct": state.experiment.max_mae_increase} if info["task"] == REGRESSION
           else {"max_accuracy_drop_pp": state.experiment.max_accuracy_drop}),
        "max_latency_ms": state.experiment.max_latency_ms or None,
        "max_size_kb": state.experiment.max_size_kb or None,
    }
    info["best"] = choose_and_copy(run_dir, records, state.experiment)
    results = json_text(records_json(records))
    info["results_sha256"] = hashlib.sha256(results.encode()).hexdigest()  # pairs run.json with its results.json
    write_text(run_dir / "results.json", results)
    write_text(run_dir / "results.csv", csv_text(records))
    write_json(run_dir / "run.json", info)
    removed = remove_stale(run_dir, records, info["best"], {*info["targets"], *earlier_targets})
    if removed:
        state.log(f"[run] removed {len(removed)} file(s) an earlier run left that this run did not make: "
                  f"{', '.join(removed[:6])}{' …' if len(removed) > 6 else ''}")
    write_reports(run_dir, records, info)
    write_json(run_dir / "manifest.json", build_manifest(state))


def summary_text(run_dir: Path, records: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """What a finished run tells a person: the table, the findings, the pick per target.

    Built from results.json and run.json alone, so it always matches the files on disk.
    """
    lines = ["", text_table(records), *[f"· {sentence}" for sentence in findings(records, info)], ""]
    budget = budget_summary(info)
    for target, best in info["best"].items():
        picked = f"{best} (copied to best/{target}/)" if best else "nothing meets the budget"
        lines.append(f"best for {target} ({budget}): {picked}")
    lines.append(f"\nhost CPU: {describe(info['cpu'])}")
    lines.append(f"full model {quality_text(info['baseline'])} · run folder {run_dir} "
                 f"· {info['seconds']:.0f} s · stages reused {info['stages']['reused']}, built {info['stages']['built']}")
    return "\n".join(lines)


def budget_summary(info: Mapping[str, Any]) -> str:
    """The run's whole budget, as `select` words it (a limit of 0 or none is no limit)."""
    from toolkit.selection import budget_words

    budget = info["budget"]
    task = REGRESSION if "max_mae_increase_pct" in budget else CLASSIFICATION
    quality = budget["max_mae_increase_pct"] if task == REGRESSION else budget["max_accuracy_drop_pp"]
    return budget_words(task, quality, budget.get("max_latency_ms") or None, budget.get("max_size_kb") or None)


def write_reports(run_dir: Path, records: list[dict[str, Any]], info: dict[str, Any]) -> None:
    """The human-readable reports, rebuilt from results alone (also used by `edgesmith report`)."""
    from toolkit.report.html import write_report

    write_text(run_dir / "report.md", markdown_report(records, info))
    write_report(run_dir, records, info)


def run_info(state: Run, started: float) -> dict[str, Any]:
    from toolkit.cpu_features import cpu_features
    from toolkit.data_sanity import label_warnings
    from toolkit.devices.local import LOCAL

    exp = state.experiment
    return {
        "name": exp.run_name,
        "dataset": state.data.name,
        "model": exp.model,
        "task": state.data.task,
        "baseline": {
            "task": state.data.task,
            **state.baseline_quality,
            "params": state.baseline_params,
            "test_samples": len(state.data.y_test),
            "path": state.baseline_file,
            **state.baseline_checks,
        },
        "preprocessing": state.data.preprocessing,
        "classes": list(state.data.class_names),
        "data_source": state.data.source,
        "targets": [target.name for target in state.targets],
        "measured_on": {target.name: state.devices.get(target.name, LOCAL).measured_on(target) for target in state.targets},
        "devices": {name: {"url": device.url, "facts": device.facts} for name, device in state.devices.items()},
        "cpu": cpu_features(),
        "data_warnings": [] if state.data.task == REGRESSION else label_warnings(state.data.y_train, state.data.y_test),
        "skipped": state.skipped,
        "variants": state.variant_info,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 1),
        "stages": {"reused": len(state.cache.reused), "built": state.cache.built},
        "phase_seconds": {phase: round(seconds, 2) for phase, seconds in state.phase_seconds.items()},
        "float_fallback": _float_fallback(state),
    }


def _float_fallback(state: Run) -> dict[str, Any] | None:
    """The fallback asked for and the targets that refused it (int8 only), with the reason."""
    from toolkit.quant_debug.mixed import refused_targets

    if not state.experiment.float_fallback:
        return None
    return {"plan": state.experiment.float_fallback, "max_accuracy_drop": state.experiment.max_accuracy_drop,
            "refused": refused_targets(state.targets)}


def data_lines(info: dict[str, Any]) -> list[str]:
    """Preprocessing, class names (a regression's target names) and what the image-folder loader
    skipped or resized."""
    lines = []
    preprocessing = info.get("preprocessing") or {}
    if preprocessing.get("spec"):
        lines.append(f"Preprocessing `{preprocessing['spec']}` ({preprocessing['formula']}; scale {preprocessing['scale']}, "
                     f"offset {preprocessing['offset']}), used for training, calibration, evaluation and benchmarking.")
    if info.get("classes"):
        lines.append(f"Classes ({len(info['classes'])}): {', '.join(info['classes'])}.")
    source = info.get("data_source") or {}
    if source.get("targets"):
        lines.append(f"Targets ({len(source['targets'])}, from {source['layout']}): {', '.join(source['targets'])}.")
    if source.get("skipped_images") or source.get("resized_images"):
        lines.append(f"Image folder: {source['images']} images read, {source['skipped_images']} unreadable skipped, "
                     f"{source['resized_images']} resized to {source['image_size']}.")
    if source.get("ignored_files"):
        from toolkit.data_folder import suffix_counts

        lines.append(f"Image folder: ignored {suffix_counts(source['ignored_files'])} (not a JPEG, PNG, BMP, GIF, WebP or TIFF image).")
    if source.get("streamed"):
        lines.append(f"Samples kept as {preprocessing.get('raw_dtype', 'raw')} and preprocessed a batch at a time "
                     f"(as float32 they would take {source['float32_bytes'] / 2**30:.1f} GiB).")
    return [line for text in lines for line in ("", text)]


def markdown_report(records: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        f"# edgesmith run `{info['name']}`",
        "",
        f"Dataset **{info['dataset']}**, model **{info['model']}**; full Keras model on the test split: "
        f"**{quality_text(info['baseline'])}** ({info['baseline']['params']:,} parameters).",
        "",
        f"Host CPU: {describe(info['cpu'])}." if info.get("cpu") else "",
        *data_lines(info),
        "",
        "Latency: batch 1, p50/p99 in ms. Where each target's latency was measured:",
        "",
        *[f"- `{target}`: {where}" for target, where in info["measured_on"].items()],
        "",
        markdown_table(records),
        "",
        "## Findings",
        "",
        *[f"- {sentence}" for sentence in findings(records, info)],
    ]
    if info.get("skipped"):
        lines += ["", "## Skipped variants", ""] + [f"- `{s['variant']}`: {s['reason']}" for s in info["skipped"]]
    if info.get("search"):
        from toolkit.search.summary import markdown_section

        lines += markdown_section(info["search"])
    return "\n".join(lines) + "\n"
