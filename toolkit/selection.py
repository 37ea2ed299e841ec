"""Pick the artifact to ship on one target under an accuracy / latency / size budget.

A person acts on this answer, so every artifact that did not win gets the plain reason it lost,
and latency ties are judged by confidence intervals, not by noise in the third decimal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Mapping

from toolkit.errors import EdgesmithError
from toolkit.records import latency_on_device
from toolkit.task import CLASSIFICATION, REGRESSION, budget_text, is_regression, less_good, loss, loss_text, loss_unit, merit, quality_text, task_of

KB = 1024  # bytes per KB everywhere in reports and budgets
# Without a confidence interval two timings are only called different when they differ by more
# than this fraction: run-to-run noise on a busy machine is easily a few percent.
_NO_CI_TOLERANCE = 0.05


def artifact_name(record: dict) -> str:
    """The file a person would ship, e.g. "prune80+qat__int8.tflite" (unique within a target)."""
    if record.get("path"):
        return PurePosixPath(record["path"]).name
    return f"{record['variant']}__{record['precision']}.{record['format']}"


def format_ms(value: float) -> str:
    """Three significant digits, trailing zeros kept so a column of timings lines up (0.0700)."""
    return f"{value:.0f}" if value >= 100 else f"{value:#.3g}"


def compare_p50(a: dict | None, b: dict | None) -> int:
    """-1 if latency `a` is measurably lower than `b`, 1 if measurably higher, 0 if not.

    `a`/`b` are a record's "latency_ms" dict. A difference counts only when the intervals do
    not overlap: the repeat intervals (`repeat95_p50`, which include run-to-run drift) where
    present, else the 95% CIs; without either, only beyond a 5% relative gap. Missing latency
    compares as "no measurable difference".
    """
    if not a or not b or a.get("p50") is None or b.get("p50") is None:
        return 0
    key = "repeat95_p50" if a.get("repeat95_p50") and b.get("repeat95_p50") else "ci95_p50"
    ci_a, ci_b = a.get(key), b.get(key)
    if ci_a and ci_b:
        if ci_a[1] < ci_b[0]:
            return -1
        if ci_b[1] < ci_a[0]:
            return 1
        return 0
    p_a, p_b = float(a["p50"]), float(b["p50"])
    if abs(p_a - p_b) <= _NO_CI_TOLERANCE * max(p_a, p_b):
        return 0
    return -1 if p_a < p_b else 1


def p50(record: dict) -> float | None:
    """Median latency in ms, or None when the artifact was not timed."""
    latency = record.get("latency_ms") or {}
    return latency.get("p50")


@dataclass
class Selection:
    """The winner for one target (None when nothing meets the budget) and why the rest lost."""

    target: str
    max_accuracy_drop_pp: float | None  # classification's budget
    max_latency_ms: float | None
    max_size_kb: float | None
    winner: dict | None
    rejected: list[tuple[dict, str]] = field(default_factory=list)
    max_mae_increase_pct: float | None = None  # regression's budget
    task: str = CLASSIFICATION

    @property
    def quality_budget(self) -> float:
        """The budget on the task's loss (toolkit.task.loss)."""
        budget = self.max_mae_increase_pct if self.task == REGRESSION else self.max_accuracy_drop_pp
        assert budget is not None  # select_best checks it
        return budget

    def quality_failure(self, record: Mapping[str, Any]) -> str | None:
        """Why the record loses too much against the full model, or None."""
        if loss(record) <= self.quality_budget:
            return None
        return f"{loss_text(record)} > budget {self.quality_budget:g}{loss_unit(self.task)}"

    def budget_text(self) -> str:
        return budget_words(self.task, self.quality_budget, self.max_latency_ms, self.max_size_kb)

    def to_dict(self) -> dict:
        """The answer as data (`select --json`): the winning record and why each other one lost."""
        return {
            "target": self.target,
            "budget": {**({"max_mae_increase_pct": self.max_mae_increase_pct} if self.task == REGRESSION
                          else {"max_accuracy_drop_pp": self.max_accuracy_drop_pp}),
                       "max_latency_ms": self.max_latency_ms, "max_size_kb": self.max_size_kb},
            "winner": self.winner,
            "rejected": [{"artifact": artifact_name(record), "path": record.get("path"), "reason": reason}
                         for record, reason in self.rejected],
        }

    def format_text(self) -> str:
        lines = [f"Best for {self.target} (budget: {self.budget_text()}):"]
        if self.winner is None:
            lines.append("  no artifact meets the budget; loosen it or add a variant.")
        else:
            lines.append(f"  {artifact_name(self.winner)} — {describe(self.winner)}")
        if self.rejected:
            lines.append("Not chosen:")
            lines += [f"  {artifact_name(record)}: {reason}" for record, reason in self.rejected]
        return "\n".join(lines)


def describe(record: dict) -> str:
    """One line with the numbers a person decides on."""
    latency = record.get("latency_ms") or {}
    change = (f"{record['mae_increase_pct']:+.2f}%" if is_regression(record)
              else f"drop {record['accuracy_drop_pp']:.2f} pp")
    text = (f"{quality_text(record)} ({change})"
            f", size {record['size_bytes'] / KB:.1f} KB (gzip {record['gzip_bytes'] / KB:.1f} KB)")
    if estimated(record):
        from toolkit.mcu_selection import describe_estimated

        return text + describe_estimated(record)
    if latency.get("p50") is not None:
        text += f", p50 {format_ms(latency['p50'])} ms"
        if latency.get("ci95_p50"):
            low, high = latency["ci95_p50"]
            text += f" (95% CI {format_ms(low)}–{format_ms(high)})"
        text += f" on {record.get('latency_measured_on', 'this machine')}"
    return text


def estimated(record: Mapping[str, Any]) -> bool:
    """True when the record's latency is a model of the device (MCU, NPU), not a timing."""
    return record.get("latency_kind") == "estimated"


def measured_off_device(record: dict) -> bool:
    """True when the target's latency was timed on a stand-in, not on the device itself
    (`latency_on_device = false` in its profile, e.g. gpu and edgetpu timed on the host CPU)."""
    return not latency_on_device(record)


def _compatibility_failure(record: dict, target: str) -> str | None:
    """Why the artifact cannot be shipped to `target`, or None.

    A blocker (e.g. a float model for the Edge TPU) or an op with no kernel at all rules it out.
    Ops falling back to the CPU are fine where latency is measured on the device itself (the
    cost is in the figure), but not where it is measured off-device: there the fallback's real
    cost is unknown, so only fully mapped artifacts compete.
    """
    compatibility = record.get("compatibility") or {}
    if not compatibility or compatibility.get("compatible", True):
        return None
    summary = compatibility.get("summary") or "see `edgesmith check`"
    unrunnable = [op["op"] for op in compatibility.get("ops", []) if op.get("runs_on") == "none"]
    off_device = measured_off_device(record)
    if compatibility.get("blockers") or unrunnable or off_device:
        return summary if summary.startswith("not compatible") else f"not compatible with {target}: {summary}"
    return None


def _budget_failures(record: dict, selection: Selection) -> list[str]:
    reasons = []
    reason = _compatibility_failure(record, selection.target)
    if reason:
        reasons.append(reason)
    reason = selection.quality_failure(record)
    if reason:
        reasons.append(reason)
    latency = p50(record)
    if latency is None:
        reasons.append("no latency measurement")
    elif selection.max_latency_ms is not None and latency > selection.max_latency_ms:
        reasons.append(f"p50 {format_ms(latency)} ms > {selection.max_latency_ms:g} ms")
    size_kb = record["size_bytes"] / KB
    if selection.max_size_kb is not None and size_kb > selection.max_size_kb:
        reasons.append(f"size {size_kb:.1f} KB > {selection.max_size_kb:g} KB")
    return reasons


def select_best(records: list[Mapping[str, Any]], target: str, max_accuracy_drop_pp: float | None,
                max_latency_ms: float | None = None,
                max_size_kb: float | None = None, max_mae_increase_pct: float | None = None) -> Selection:
    """Choose the artifact to ship on `target`.

    An artifact qualifies when it is not marked incompatible with the target, its accuracy drop
    is within `max_accuracy_drop_pp` (a regression: its MAE increase within
    `max_mae_increase_pct` percent of the full model's MAE), it was timed, its p50 is within
    `max_latency_ms` and its file size (on-device bytes, 1 KB = 1024 B) is within `max_size_kb`.

    Ranking among qualifiers: lowest p50 latency. Every qualifier whose 95% CI on p50 overlaps
    the fastest one's is tied with it (a gap inside the noise is no reason to choose); ties are
    broken by smaller gzip size (download cost), then higher accuracy (lower MAE), then name.
    Targets whose latency is estimated (microcontrollers) are ranked by fit, accuracy, then the
    estimate (toolkit.mcu_selection); measured and estimated latency are never compared.
    """
    present = sorted({record["target"] for record in records})
    if target not in present:
        raise EdgesmithError(f"no results for target '{target}'",
                             f"choose one of: {', '.join(present) or '(no results at all)'}")
    selection = Selection(target, max_accuracy_drop_pp, max_latency_ms, max_size_kb, None,
                          max_mae_increase_pct=max_mae_increase_pct, task=_task_of(records, target))
    _check_quality_budget(selection)
    kinds = {estimated(record) for record in records if record["target"] == target}
    if kinds == {True, False}:
        raise EdgesmithError(f"the results for '{target}' mix measured and estimated latency",
                             "rebuild them with one edgesmith version (`edgesmith run --force`)")
    if kinds == {True}:
        from toolkit.mcu_selection import select_estimated

        return select_estimated(records, selection)
    rejected: list[tuple[dict, str]] = []
    qualifiers = []
    for record in (r for r in records if r["target"] == target):
        reasons = _budget_failures(record, selection)
        if reasons:
            rejected.append((record, "; ".join(reasons)))
        else:
            qualifiers.append(record)
    if not qualifiers:
        selection.rejected = rejected
        return selection
    if all(measured_off_device(record) for record in qualifiers):
        return _select_by_size(selection, qualifiers, rejected)
    fastest = min(qualifiers, key=lambda r: (p50(r), artifact_name(r)))
    tied = [r for r in qualifiers if compare_p50(r["latency_ms"], fastest["latency_ms"]) == 0]
    winner = min(tied, key=lambda r: (r["gzip_bytes"], -merit(r), artifact_name(r)))
    selection.winner = winner
    tied_ids = {id(r) for r in tied}
    losers = [(r, _why_not_winner(r, winner, fastest, id(r) in tied_ids))
              for r in qualifiers if r is not winner]
    selection.rejected = sorted(losers, key=lambda item: p50(item[0])) + rejected
    return selection


def _task_of(records: list[Mapping[str, Any]], target: str) -> str:
    tasks = {task_of(record) for record in records if record["target"] == target}
    if len(tasks) > 1:
        raise EdgesmithError(f"the results for '{target}' mix {' and '.join(sorted(tasks))} records",
                             "select within one run's results")
    return tasks.pop()


def _check_quality_budget(selection: Selection) -> None:
    """The budget the results' task needs was given."""
    if selection.task == REGRESSION and selection.max_mae_increase_pct is None:
        raise EdgesmithError("these are a regression's results, scored by MAE",
                             "give the budget as an MAE increase in percent: --max-mae-increase 5")
    if selection.task == CLASSIFICATION and selection.max_accuracy_drop_pp is None:
        raise EdgesmithError("these are a classifier's results", "give the budget as an accuracy drop: --max-accuracy-drop 1")


def _select_by_size(selection: Selection, qualifiers: list[dict], rejected: list[tuple[dict, str]]) -> Selection:
    """For targets timed off the device (GPU, Edge TPU here), host-CPU latency says nothing
    about the device, so rank by what is known: the file size the device must hold, then
    accuracy."""
    ranked = sorted(qualifiers, key=lambda r: (r["size_bytes"], -merit(r), artifact_name(r)))
    winner = selection.winner = ranked[0]
    losers = []
    for record in ranked[1:]:
        if record["size_bytes"] != winner["size_bytes"]:
            why = f"meets the budget but larger ({record['size_bytes'] / KB:.1f} vs {winner['size_bytes'] / KB:.1f} KB)"
        else:
            why = f"meets the budget, same size, {less_good(record, winner)}"
        losers.append((record, why + "; ranked by size because latency here is not the device's"))
    selection.rejected = losers + rejected
    return selection


def _why_not_winner(record: dict, winner: dict, fastest: dict, tied: bool) -> str:
    if not tied:
        slower_than_winner = compare_p50(record["latency_ms"], winner["latency_ms"]) > 0
        beaten_by = winner if slower_than_winner else fastest
        than = "the winner" if beaten_by is winner else artifact_name(beaten_by)
        return (f"meets the budget but slower than {than} "
                f"({format_ms(p50(record))} vs {format_ms(p50(beaten_by))} ms)")
    if record["gzip_bytes"] != winner["gzip_bytes"]:
        return (f"meets the budget and ties on latency (95% CIs overlap), but larger "
                f"(gzip {record['gzip_bytes'] / KB:.1f} vs {winner['gzip_bytes'] / KB:.1f} KB)")
    if merit(record) != merit(winner):
        return f"meets the budget, ties on latency and gzip size, but {less_good(record, winner)}"
    return "meets the budget and equals the winner; the winner comes first by name"


def budget_words(task: str, quality_budget: float, max_latency_ms: float | None, max_size_kb: float | None) -> str:
    """'accuracy drop ≤ 1 pp, p50 ≤ 0.5 ms, size ≤ 64 KB': the quality budget, then the limits set."""
    parts = [budget_text(task, quality_budget)]
    if max_latency_ms is not None:
        parts.append(f"p50 ≤ {max_latency_ms:g} ms")
    if max_size_kb is not None:
        parts.append(f"size ≤ {max_size_kb:g} KB")
    return ", ".join(parts)
