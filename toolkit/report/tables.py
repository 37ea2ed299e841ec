"""The results table as terminal text, Markdown and CSV: the same columns everywhere."""
from __future__ import annotations

import csv
import io
from typing import Any

from toolkit.task import is_regression

COLUMNS = (
    ("variant", "variant"),
    ("target", "target"),
    ("format", "fmt"),
    ("precision", "prec"),
    ("accuracy", "acc %"),
    ("accuracy_drop_pp", "drop pp"),
    ("agreement", "agree %"),
    ("sqnr_db", "SQNR dB"),
    ("p50", "p50 ms"),
    ("p99", "p99 ms"),
    ("size_kb", "size KB"),
    ("gzip_kb", "gzip KB"),
    ("on_accelerator", "ops on accel"),
)
# A regression's quality columns, in place of accuracy, drop and agreement.
REGRESSION_COLUMNS = {"accuracy": ("mae", "MAE"), "accuracy_drop_pp": ("mae_increase_pct", "MAE +%"),
                      "agreement": ("rmse", "RMSE")}
REGRESSION_FIELDS = ("task", "mae", "rmse", "mae_increase_pct", "rmse_increase_pct")


def columns(records: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(key, title) of the table's columns: a regression's replace the accuracy ones."""
    if not any(is_regression(record) for record in records):
        return COLUMNS
    return tuple(REGRESSION_COLUMNS.get(key, (key, title)) for key, title in COLUMNS)


def rows(records: list[dict[str, Any]]) -> list[list[str]]:
    """One list of formatted cells per record, in `columns(records)` order."""
    table = []
    for record in records:
        compatibility = record.get("compatibility") or {}
        cells = {
            "variant": record["variant"],
            "target": record["target"],
            "format": record["format"],
            "precision": record["precision"],
            **_quality_cells(record),
            "sqnr_db": _sqnr(record),
            **_latency_cells(record),
            "size_kb": f"{record['size_bytes'] / 1024:.1f}",
            "gzip_kb": f"{record['gzip_bytes'] / 1024:.1f}",
            "on_accelerator": _accelerated(compatibility),
        }
        table.append([cells[key] for key, _ in columns(records)])
    return table


def _quality_cells(record: dict[str, Any]) -> dict[str, str]:
    if is_regression(record):
        return {"mae": f"{record['mae']:.4g}", "mae_increase_pct": f"{record['mae_increase_pct']:+.2f}",
                "rmse": f"{record['rmse']:.4g}"}
    return {"accuracy": f"{record['accuracy'] * 100:.2f}", "accuracy_drop_pp": f"{record['accuracy_drop_pp']:+.2f}",
            "agreement": f"{record['agreement'] * 100:.1f}"}


def _sqnr(record: dict[str, Any]) -> str:
    """'42.1'; 'inf' for outputs identical to the full model's; 'n/a' in results from before it existed."""
    if "sqnr_db" not in record:
        return "n/a"
    return "inf" if record["sqnr_db"] is None else f"{record['sqnr_db']:.1f}"


def _latency_cells(record: dict[str, Any]) -> dict[str, str]:
    """p50/p99 in ms ("—" where not timed: latency_error); an estimate (microcontrollers) is
    marked "est." and has no p99."""
    latency = record.get("latency_ms") or {}
    cells = {key: "—" if latency.get(key) is None else f"{latency[key]:.4f}" for key in ("p50", "p99")}
    if record.get("latency_kind") == "estimated" and latency.get("p50") is not None:
        cells["p50"] += " est."
    return cells


def _accelerated(compatibility: dict[str, Any]) -> str:
    """'12/12', '9/12' or 'blocked': how much of the graph the target's accelerator runs."""
    if not compatibility:
        return "n/a"
    if compatibility.get("blockers"):
        return "blocked"
    return f"{compatibility.get('ops_on_accelerator')}/{compatibility.get('ops_total')}"


def text_table(records: list[dict[str, Any]]) -> str:
    """Aligned plain-text table for the terminal."""
    return aligned([[title for _, title in columns(records)], *rows(records)])


def aligned(table: list[list[str]]) -> str:
    """A header row and body rows as aligned plain text, a rule under the header."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(records: list[dict[str, Any]]) -> str:
    header = [title for _, title in columns(records)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line) + " |" for line in rows(records)]
    return "\n".join(lines)


def csv_text(records: list[dict[str, Any]]) -> str:
    """Flat CSV with raw numbers (latency fields spread into columns) for spreadsheets."""
    fields = [
        "variant", "target", "format", "precision", "path", "accuracy", "accuracy_drop_pp", "agreement", "sqnr_db", "cosine",
        "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "ci95_p50_low_ms", "ci95_p50_high_ms",
        "size_bytes", "gzip_bytes", "params", "threads", "batch", "runs", "compatible", "latency_measured_on",
        "latency_kind", "peak_activation_bytes", "arena_bytes", "flash_bytes", "fits",
    ]
    if any(is_regression(record) for record in records):
        fields[5:7] = REGRESSION_FIELDS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for record in records:
        latency = record.get("latency_ms") or {}
        interval = latency.get("ci95_p50") or (None, None)
        row = {key: record.get(key) for key in fields}
        row.update(
            p50_ms=latency.get("p50"), p90_ms=latency.get("p90"), p99_ms=latency.get("p99"), mean_ms=latency.get("mean"),
            std_ms=latency.get("std"), ci95_p50_low_ms=interval[0], ci95_p50_high_ms=interval[1],
            compatible=(record.get("compatibility") or {}).get("compatible"),
        )
        writer.writerow(row)
    return out.getvalue()
