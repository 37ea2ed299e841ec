"""report.html: one self-contained page a person can decide from, offline and years later.

Everything (styles, SVG plots, a few lines of script for sorting) is inline: the page opens from
a run folder, an archive or an e-mail attachment with no network and no external assets.
"""
from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path

from toolkit.files import write_text
from toolkit.records import as_records
from toolkit.report.fallback import per_layer_section
from toolkit.report.flags import findings
from toolkit.report.html_assets import ERROR_TRAP, SCRIPT, STYLE
from toolkit.report.pareto import Point, frontier, frontier_by, scatter_svg
from toolkit.selection import KB, artifact_name, compare_p50, describe, estimated, format_ms, measured_off_device, p50
from toolkit.task import is_regression, merit, quality_text

_PRECISION_COLORS = {"fp32": "#3b6fb6", "fp16": "#3a9a5b", "dynamic": "#e08a1e", "int8": "#d1495b",
                     "int8-mixed": "#b5651d"}
_OTHER_COLOR = "#7a6fb0"
_DROP_HIGHLIGHT_PP = 1.0  # accuracy drops above this are shown in red in the table
_MAE_HIGHLIGHT_PCT = 5.0  # and MAE increases above this percentage
_COLUMNS = [  # header, sort type, tooltip
    ("Variant", "text", "passes applied to the baseline model"),
    ("Target", "text", "target profile"), ("Format", "text", ""), ("Precision", "text", ""),
    ("Accuracy", "num", "top-1 accuracy of this artifact on the test set"),
    ("Drop pp", "num", "percentage points below the full Keras model (positive = worse)"),
    ("Agreement", "num", "share of test inputs where top-1 matches the full model"),
    ("p50 ms (95% CI)", "num", "median latency per inference, batch 1"),
    ("Size KB", "num", "file size on the device"), ("Gzip KB", "num", "download size"),
    ("Pareto", "text", "on the accuracy/latency or accuracy/size frontier of its target"),
    ("Latency measured on", "text", ""),
]
_REGRESSION_COLUMNS = {  # a regression's quality columns, in place of accuracy, drop and agreement
    "Accuracy": ("MAE", "num", "mean absolute error of this artifact on the test targets"),
    "Drop pp": ("MAE +%", "num", "MAE change against the full Keras model, in percent of its MAE (positive = worse)"),
    "Agreement": ("RMSE", "num", "root mean squared error on the test targets"),
    "Pareto": ("Pareto", "text", "on the MAE/latency or MAE/size frontier of its target"),
}


def write_report(run_dir: Path, records: list[dict], run_info: dict) -> Path:
    """Write run_dir/report.html atomically and return its path."""
    path = Path(run_dir) / "report.html"
    write_text(path, build_html(as_records(records), run_info))
    return path


def build_html(records: list[dict], run_info: dict) -> str:
    """The full page: summary, best per target, findings, plots, table, compatibility, search."""
    fronts = _frontiers(records)
    title = f"edgesmith report — {run_info.get('name', 'run')}"
    body = [f"<header><h1>{escape(title)}</h1>{_summary(records, run_info)}</header>",
            _best_section(records, run_info), _findings_section(records, run_info),
            _plots_section(records, fronts), _table_section(records, run_info, fronts), per_layer_section(records),
            _compatibility_section(records, run_info), _search_section(run_info), _skipped_section(run_info)]
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title>{ERROR_TRAP}<style>{STYLE}</style></head>"
        f"<body data-expected-rows=\"{len(records)}\"><main>{''.join(body)}</main>"
        f"<script>{SCRIPT}</script></body></html>\n")


def _frontiers(records: list[dict]) -> dict[int, set[str]]:
    """Per record index: which of the target's frontiers ("latency", "size") it lies on."""
    on = defaultdict(set)
    for target, indices in _by_target(records).items():
        timed = [i for i in indices if p50(records[i]) is not None]
        for j in frontier_by(len(timed), lambda a, b: _beats_on_latency(records[timed[a]], records[timed[b]])):
            on[timed[j]].add("latency")
        for j in frontier([(records[i]["gzip_bytes"], merit(records[i])) for i in indices]):
            on[indices[j]].add("size")
    return on


def _beats_on_latency(a: dict, b: dict) -> bool:
    """`a` is at least as accurate (as low an MAE) and measurably faster, or more accurate and
    not measurably slower: latency judged by intervals, as `select` judges it, never by p50 alone."""
    speed = compare_p50(a["latency_ms"], b["latency_ms"])
    return (merit(a) >= merit(b) and speed < 0) or (merit(a) > merit(b) and speed <= 0)


def _by_target(records: list[dict]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[record["target"]].append(i)
    return groups


def _summary(records: list[dict], run_info: dict) -> str:
    baseline = run_info.get("baseline") or {}
    targets = [t if isinstance(t, str) else t.get("name", "?") for t in run_info.get("targets", [])]
    items = [("Dataset", run_info.get("dataset")), ("Model", run_info.get("model")),
             ("Preprocessing", (run_info.get("preprocessing") or {}).get("spec")),
             ("Classes", ", ".join(run_info.get("classes") or []) or None),
             ("Predicted values", ", ".join((run_info.get("data_source") or {}).get("targets") or []) or None),
             ("Full-model accuracy", _pct(baseline.get("accuracy"))),
             ("Full-model error", quality_text(baseline) if is_regression(baseline) else None),
             ("Parameters", f"{baseline['params']:,}" if baseline.get("params") else None),
             ("Targets", ", ".join(targets) or None), ("Artifacts", str(len(records)))]
    if records:
        batch, threads, runs = (_spread(records, key) for key in ("batch", "threads", "runs"))
        items.append(("Timing", f"batch {batch}, {threads} thread(s), {runs} timed runs per "
                                "artifact"))
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(str(v))}</dd></div>"
                    for k, v in items if v is not None)
    return f'<dl class="summary">{cells}</dl>'


def _spread(records: list[dict], key: str) -> str:
    """"4" when every record agrees, "1–4" when they differ: never let one record speak for all."""
    values = sorted({record[key] for record in records if record.get(key) is not None})
    if not values:
        return "?"
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.2f}%"


def _best_section(records: list[dict], run_info: dict) -> str:
    best = run_info.get("best")
    if not best:
        return ""
    by_path = {(r["target"], r.get("path")): r for r in records}
    cards = []
    for target, path in best.items():
        record = by_path.get((target, path)) if path else None
        if record is None:
            text = "no artifact met the budget" if not path else f"{path} (not in the results)"
            cards.append(f'<div class="card none"><h3>{escape(target)}</h3><p>{escape(text)}</p>'
                         "</div>")
        else:
            cards.append(f'<div class="card"><h3>{escape(target)}</h3><p class="pick">'
                         f"{escape(artifact_name(record))}</p><p>{escape(describe(record))}</p>"
                         "</div>")
    budget = run_info.get("budget")
    note = ("<p class=\"muted\">Budget: " + escape(", ".join(f"{k} {v}" for k, v in budget.items()))
            + "</p>") if isinstance(budget, dict) and budget else ""
    return f'<section id="best"><h2>Best per target</h2>{note}<div class="cards">{"".join(cards)}' \
           "</div></section>"


def _findings_section(records: list[dict], run_info: dict) -> str:
    items = "".join(f"<li>{escape(sentence)}</li>" for sentence in findings(records, run_info))
    return (f'<section id="findings"><h2>Findings</h2><ul class="findings">'
            f"{items or '<li>nothing unusual</li>'}</ul></section>")


def _plots_section(records: list[dict], fronts: dict[int, set[str]]) -> str:
    figures = []
    for target, indices in _by_target(records).items():
        timed = [i for i in indices if p50(records[i]) is not None]
        axis = "p50 latency (ms)"
        if any(estimated(records[i]) for i in timed):
            axis = "estimated latency (ms)"
        elif any(measured_off_device(records[i]) for i in timed):
            axis = "p50 latency on the host CPU, not the device (ms)"
        quality, y_label = ("MAE", "MAE (lower is better)") if any(is_regression(records[i]) for i in indices) \
            else ("accuracy", "accuracy (%)")
        latency = scatter_svg(
            [_point(records[i], p50(records[i]), with_ci=True) for i in timed],
            f"{target}: {quality} vs latency", axis, y_label,
            [j for j, i in enumerate(timed) if "latency" in fronts[i]])
        size = scatter_svg(
            [_point(records[i], records[i]["gzip_bytes"] / KB) for i in indices],
            f"{target}: {quality} vs size", "gzip size (KB)", y_label,
            [j for j, i in enumerate(indices) if "size" in fronts[i]])
        figures.append(f'<figure class="target-plots"><div class="pair">{latency}{size}</div>'
                       f"<figcaption>{escape(target)} — Pareto frontier: larger labelled markers "
                       "joined by the dashed step line; bars show the p50 interval latencies are compared by (the repeat interval)."
                       "</figcaption></figure>")
    legend = "".join(f'<span><i style="background:{color}"></i>{name}</span>'
                     for name, color in _PRECISION_COLORS.items())
    legend += '<span><i class="hollow"></i>onnx (hollow)</span>'
    return (f'<section id="plots"><h2>Trade-offs per target</h2><div class="legend">{legend}</div>'
            f"{''.join(figures)}</section>")


def _point(record: dict, x: float, with_ci: bool = False) -> Point:
    latency = record.get("latency_ms") or {}
    interval = latency.get("repeat95_p50") or latency.get("ci95_p50")  # the one compare_p50 judges by
    ci = tuple(interval) if with_ci and interval else None
    tooltip = (f"{artifact_name(record)} ({record['variant']}, {record['format']} "
               f"{record['precision']})\n{quality_text(record)}\n"
               f"p50 {_latency_text(record)} ms{_sampling_text(latency)}\nsize {record['size_bytes'] / KB:.1f} KB, "
               f"gzip {record['gzip_bytes'] / KB:.1f} KB")
    y = record["mae"] if is_regression(record) else record["accuracy"] * 100
    return Point(x, y, f"{record['variant']} {record['precision']}",
                 tooltip, _PRECISION_COLORS.get(record["precision"], _OTHER_COLOR),
                 hollow=record["format"] == "onnx", x_range=ci)


def _latency_cell(record: dict) -> str:
    """p50 with its CI in a quieter font: the number to read first, the noise right beside it."""
    text = _latency_text(record)
    if p50(record) is None:
        return f'<td class="num" data-sort="">{text}</td>'
    value, _, interval = text.partition(" ")
    interval_html = f' <span class="ci">{escape(interval)}</span>' if interval else ""
    return f'<td class="num" data-sort="{p50(record)}">{escape(value)}{interval_html}</td>'


def _sampling_text(latency: dict) -> str:
    """How much timing a p50 took: the adaptive plan's sessions differ from artifact to artifact."""
    if not latency.get("sessions"):
        return ""
    reason = {"width": ", interval narrow", "budget": ", budget spent"}.get(latency.get("stopped_by"), "")
    return f" ({latency['runs']} runs in {latency['sessions']} sessions{reason})"


def _latency_text(record: dict) -> str:
    latency = record.get("latency_ms") or {}
    if latency.get("p50") is None:
        return "—"
    text = format_ms(latency["p50"])
    if latency.get("ci95_p50"):
        low, high = latency["ci95_p50"]
        text += f" [{format_ms(low)}–{format_ms(high)}]"
    return text + (" (estimated)" if estimated(record) else "")


def _table_section(records: list[dict], run_info: dict, fronts: dict[int, set[str]]) -> str:
    regression = any(is_regression(record) for record in records)
    columns = [_REGRESSION_COLUMNS.get(column[0], column) if regression else column for column in _COLUMNS]
    head = "".join(f'<th data-type="{kind}" title="{escape(tip)}">{escape(name)}</th>'
                   for name, kind, tip in columns)
    best = {(t, p) for t, p in (run_info.get("best") or {}).items() if p}
    rows = [_row(record, fronts[i], (record["target"], record.get("path")) in best)
            for i, record in enumerate(records)]
    return (f'<section id="table"><h2>All artifacts</h2><p class="muted">Click a column header to '
            f'sort.</p><div class="scroll"><table id="results" class="sortable"><thead><tr>{head}'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")


def _row(record: dict, on_fronts: set[str], is_best: bool) -> str:
    def cell(text: str, sort_value: object = None, cls: str = "") -> str:
        key = escape(str(text if sort_value is None else sort_value))
        return f'<td class="{cls}" data-sort="{key}">{escape(text)}</td>'

    tag = ' <span class="tag">best</span>' if is_best else ""
    row_class = ' class="best"' if is_best else ""
    variant = (f'<td data-sort="{escape(record["variant"])}">{escape(record["variant"])}{tag}'
               "</td>")
    return (f'<tr data-path="{escape(record.get("path", ""))}" '
            f'data-target="{escape(record["target"])}"{row_class}>'
            + variant + cell(record["target"]) + cell(record["format"])
            + cell(record["precision"])
            + "".join(cell(*args) for args in _quality_cells(record))
            + _latency_cell(record)
            + cell(f"{record['size_bytes'] / KB:.1f}", record["size_bytes"], "num")
            + cell(f"{record['gzip_bytes'] / KB:.1f}", record["gzip_bytes"], "num")
            + cell(", ".join(sorted(on_fronts)))
            + cell(record.get("latency_measured_on", "")) + "</tr>")


def _quality_cells(record: dict) -> list[tuple[str, object, str]]:
    """(text, sort value, class) of the three quality columns: accuracy, drop, agreement, or
    for a regression MAE, its change in percent, RMSE."""
    if is_regression(record):
        change = record["mae_increase_pct"]
        return [(f"{record['mae']:.4g}", record["mae"], "num"),
                (f"{change:+.2f}%", change, "num" + (" bad" if change > _MAE_HIGHLIGHT_PCT else "")),
                (f"{record['rmse']:.4g}", record["rmse"], "num")]
    agreement, drop = record.get("agreement"), record["accuracy_drop_pp"]
    return [(f"{record['accuracy'] * 100:.2f}%", record["accuracy"], "num"),
            (f"{drop:+.2f}", drop, "num" + (" bad" if drop > _DROP_HIGHLIGHT_PP else "")),
            ("—" if agreement is None else f"{agreement * 100:.1f}%", agreement or "", "num")]


def _compatibility_section(records: list[dict], run_info: dict) -> str:
    """Per target, a collapsible list of check verdicts; open where something is not accelerated."""
    reports = run_info.get("compatibility") or _reports_from_records(records)
    if not reports:
        return ""
    blocks = []
    for target, items in reports.items():
        full = sum(1 for item in items if item.get("compatible"))
        accelerator = next((i["accelerator"] for i in items if i.get("accelerator")), "target")
        rows = "".join(_compatibility_item(item) for item in items)
        blocks.append(f'<details class="compat"{"" if full == len(items) else " open"}>'
                      f"<summary><b>{escape(target)}</b> — {full} of {len(items)} artifacts run "
                      f"fully on the {escape(accelerator)}</summary><ul>{rows}</ul></details>")
    return f'<section id="compatibility"><h2>Will it run on the target?</h2>{"".join(blocks)}' \
           "</section>"


def _reports_from_records(records: list[dict]) -> dict[str, list[dict]]:
    reports: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("compatibility"):
            reports[record["target"]].append({**record["compatibility"],
                                              "artifact": artifact_name(record)})
    return reports


_DETAIL_FIELDS = (("blockers", "blocker"), ("unsupported_ops", "unsupported ops"),
                  ("notes", "note"))


def _compatibility_item(report: dict) -> str:
    name = report.get("artifact") or report.get("path") or "artifact"
    badge = {True: '<span class="ok">runs</span>', False: '<span class="no">no</span>'}.get(
        report.get("compatible"), '<span class="muted">unknown</span>')
    details = []
    for key, label in _DETAIL_FIELDS:
        values = [str(value) for value in report.get(key) or []]
        if key == "unsupported_ops" and values:
            values = [", ".join(values)]
        details += [f"<li>{label}: {escape(value)}</li>" for value in values]
    details_html = f'<ul class="details">{"".join(details)}</ul>' if details else ""
    return (f"<li>{badge} <b>{escape(str(name))}</b> — "
            f"{escape(str(report.get('summary', '')))}{details_html}</li>")


def _search_section(run_info: dict) -> str:
    """After `edgesmith search`: the measured front (every trial's file is also in the table above)."""
    document = run_info.get("search")
    if not document:
        return ""
    from toolkit.search.summary import front_rows

    header, *rows = front_rows(document)
    complete = sum(trial["state"] == "COMPLETE" for trial in document["trials"])
    table = ("<table><thead><tr>" + "".join(f"<th>{escape(cell)}</th>" for cell in header) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
             + "</tbody></table>")
    return (f'<section id="search"><h2>Search</h2><p>Study <code>{escape(document["study"])}</code> on '
            f'<code>{escape(document["target"])}</code>: {complete} complete trials of {len(document["trials"])} '
            f'(all in search.json). Measured Pareto front, {escape(" vs ".join(document["objectives"]))}:</p>{table}</section>')


def _skipped_section(run_info: dict) -> str:
    skipped = run_info.get("skipped") or []
    if not skipped:
        return ""
    items = "".join(f"<li><b>{escape(str(s.get('variant', '?')))}</b>: "
                    f"{escape(str(s.get('reason', '')))}</li>" for s in skipped)
    return f'<section id="skipped"><h2>Skipped variants</h2><ul>{items}</ul></section>'
