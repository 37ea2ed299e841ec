"""What a search found: search.json (every trial and the measured Pareto front), the report's
Search section and the front as a text table.

The front is computed here from the measured values, not taken from Optuna, so it is exactly
the set of feasible trials that no other feasible trial beats on both objectives.
"""
from __future__ import annotations

from typing import Any, Mapping

from toolkit.report.tables import aligned

KB = 1024


def dominates(a: list[float], b: list[float], directions: list[str]) -> bool:
    """Whether values `a` are at least as good as `b` on every objective and better on one."""
    signs = [1.0 if direction == "maximize" else -1.0 for direction in directions]
    better = [s * x > s * y for s, x, y in zip(signs, a, b)]
    worse = [s * x < s * y for s, x, y in zip(signs, a, b)]
    return any(better) and not any(worse)


# A trial fails with a reason when it is measured; without one, its search stopped under it.
INTERRUPTED = "interrupted before it finished (the search was stopped); the trial was asked again"


def search_document(study: Any, objectives: tuple[str, str], directions: list[str], target: str,
                    storage: str) -> dict[str, Any]:
    """search.json: the objectives, every trial (feasible, on the front) and the front itself."""
    trials = [_trial_entry(trial, objectives) for trial in study.get_trials(deepcopy=False)]
    candidates = [t for t in trials if t["state"] == "COMPLETE" and t["feasible"]]
    for entry in candidates:
        values = [entry["values"][name] for name in objectives]
        entry["on_front"] = not any(dominates([other["values"][name] for name in objectives], values, directions)
                                    for other in candidates if other is not entry)
    front, seen = [], set()
    for entry in sorted((t for t in candidates if t["on_front"]), key=lambda t: t["values"][objectives[1]]):
        if entry["path"] not in seen:  # trials that drew the same artifact: listed once
            seen.add(entry["path"])
            front.append(_front_entry(study.trials[entry["number"]], entry))
    return {"study": study.study_name, "storage": storage, "target": target, "objectives": list(objectives),
            "directions": directions, "trials": trials, "front": front}


def _trial_entry(trial: Any, objectives: tuple[str, str]) -> dict[str, Any]:
    attrs = trial.user_attrs
    values = dict(zip(objectives, trial.values)) if trial.values else None
    constraints = attrs.get("constraints")
    return {
        "number": trial.number, "state": trial.state.name, "params": trial.params,
        "chain": attrs.get("chain"), "precision": attrs.get("precision"), "variant": attrs.get("variant"),
        "path": (attrs.get("record") or {}).get("path"), "values": values,
        "latency_kind": (attrs.get("record") or {}).get("latency_kind"),
        "feasible": constraints is not None and all(c <= 0 for c in constraints),
        "on_front": False, "reason": attrs.get("reason") or (INTERRUPTED if trial.state.name == "FAIL" else None),
    }


def _front_entry(trial: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """A front point with the record's figures: p50 with the interval a repeat would fall in."""
    record = trial.user_attrs["record"]
    latency = record.get("latency_ms") or {}
    interval_kind = "repeat95_p50" if latency.get("repeat95_p50") else "ci95_p50" if latency.get("ci95_p50") else None
    return {
        "number": entry["number"], "variant": entry["variant"], "chain": entry["chain"],
        "precision": entry["precision"], "path": entry["path"], "accuracy": record["accuracy"],
        "accuracy_drop_pp": record["accuracy_drop_pp"], "size_bytes": record["size_bytes"],
        "latency_p50_ms": latency.get("p50"),
        "latency_interval_ms": latency.get(interval_kind) if interval_kind else None,
        "latency_interval": interval_kind, "latency_kind": record.get("latency_kind"),
    }


def front_rows(document: Mapping[str, Any]) -> list[list[str]]:
    """Header and one row per front point, for the text, markdown and HTML tables."""
    rows = [["trial", "variant", "precision", "accuracy", "p50 ms", "p50 interval ms", "size KB"]]
    for point in document["front"]:
        interval = point["latency_interval_ms"]
        rows.append([str(point["number"]), point["variant"], point["precision"], f"{point['accuracy'] * 100:.2f}%",
                     f"{point['latency_p50_ms']:.4f}{_estimated(point)}",
                     f"{interval[0]:.4f}–{interval[1]:.4f}" if interval else "—",
                     f"{point['size_bytes'] / KB:.1f}"])
    return rows


def front_text(document: Mapping[str, Any]) -> str:
    """The front as a plain-text table with a one-line summary, for the terminal."""
    trials = document["trials"]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    feasible = [t for t in complete if t["feasible"]]
    header = (f"search {document['study']} on {document['target']}: {len(complete)} complete trial(s), "
              f"{len(feasible)} within the budget; Pareto front ({' vs '.join(document['objectives'])}):")
    if not document["front"]:
        return header + "\n(empty: no complete trial within the budget)"
    return header + "\n" + aligned(front_rows(document))


def markdown_section(document: Mapping[str, Any]) -> list[str]:
    """The report's Search section: every trial, then the front."""
    objectives = document["objectives"]
    lines = ["", "## Search", "",
             f"Study `{document['study']}` on `{document['target']}`, objectives {' and '.join(objectives)} "
             f"({', '.join(document['directions'])}). Feasible: within the run's budget.", "",
             "| trial | state | variant | precision | " + " | ".join(objectives) + " | feasible | on front |",
             "|---|---|---|---|" + "---|" * len(objectives) + "---|---|"]
    for trial in document["trials"]:
        values = [_value_text(name, (trial["values"] or {}).get(name)) + (_estimated(trial) if name == "latency" else "")
                  for name in objectives]
        lines.append(f"| {trial['number']} | {trial['state']} | {trial['variant'] or '—'} | {trial['precision'] or '—'} | "
                     + " | ".join(values) + f" | {'yes' if trial['feasible'] else 'no'} | {'yes' if trial['on_front'] else ''} |")
    rows = front_rows(document)
    measured = "estimated latency, never measured" if any(_estimated(p) for p in document["front"]) else "measured"
    lines += ["", f"Pareto front ({measured}; latency interval: where a repeat's p50 is expected):", "",
              "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return lines


def _estimated(entry: Mapping[str, Any]) -> str:
    """The mark (" est.") of a latency a microcontroller target estimated, as every table shows it."""
    return " est." if entry.get("latency_kind") == "estimated" else ""


def _value_text(objective: str, value: float | None) -> str:
    if value is None:
        return "—"
    return {"accuracy": f"{value * 100:.2f}%", "latency": f"{value:.4f} ms", "size": f"{value / KB:.1f} KB"}[objective]
