"""Choosing the artifact for a microcontroller target, where latency is an estimate.

An estimate (MACs × cycles per MAC, or Vela's performance model) is a model of the device, not
a timing, so it never meets measured latency and has no confidence interval to call ties
with. What decides on a microcontroller comes first: the artifact must fit the board (a model
that does not fit does not run at all) and have a TFLite Micro kernel for every op it needs;
among those, the most accurate wins, and the estimate only breaks accuracy ties.
"""
from __future__ import annotations

from typing import Any, Mapping

from toolkit.selection import KB, Selection, artifact_name, format_ms, p50
from toolkit.task import less_good, merit

_UNKNOWN = float("inf")  # no estimate (e.g. Vela not installed) ranks after every estimate


def describe_estimated(record: Mapping[str, Any]) -> str:
    """The latency part of `describe` for an estimated record, labelled as an estimate."""
    latency = p50(record)
    fit = {True: ", fits the board", False: ", does NOT fit the board"}.get(record.get("fits"), "")
    if latency is None:
        return f"{fit}, no latency estimate"
    return f"{fit}, estimated {format_ms(latency)} ms ({record.get('latency_measured_on') or 'not measured'})"


def select_estimated(records: list[Mapping[str, Any]], selection: Selection) -> Selection:
    """Fill `selection` for a target whose records all carry estimated latency."""
    rejected, qualifiers = [], []
    for record in (r for r in records if r["target"] == selection.target):
        reasons = _failures(record, selection)
        if reasons:
            rejected.append((record, "; ".join(reasons)))
        else:
            qualifiers.append(record)
    ranked = sorted(qualifiers, key=_rank)
    if ranked:
        selection.winner = ranked[0]
    selection.rejected = [(record, _why_not(record, ranked[0])) for record in ranked[1:]] + rejected
    return selection


def _rank(record: Mapping[str, Any]) -> tuple:
    estimate = p50(record)
    return (-merit(record), _UNKNOWN if estimate is None else estimate, record["size_bytes"], artifact_name(record))


def _failures(record: Mapping[str, Any], selection: Selection) -> list[str]:
    compatibility = record.get("compatibility") or {}
    reasons = list(compatibility.get("blockers") or [])  # a missing TFLM kernel; not fitting the board
    unrunnable = [op["op"] for op in compatibility.get("ops") or [] if op.get("runs_on") == "none"]
    if unrunnable and not reasons:
        reasons.append(f"no kernel for {', '.join(dict.fromkeys(unrunnable))}")
    if record.get("fits") is False and not any("does not fit" in reason for reason in reasons):
        reasons.append("does not fit the board")
    reason = selection.quality_failure(record)
    if reason:
        reasons.append(reason)
    estimate = p50(record)
    if selection.max_latency_ms is not None and (estimate is None or estimate > selection.max_latency_ms):
        shown = "no estimate" if estimate is None else f"estimated {format_ms(estimate)} ms"
        reasons.append(f"{shown} > {selection.max_latency_ms:g} ms")
    size_kb = record["size_bytes"] / KB
    if selection.max_size_kb is not None and size_kb > selection.max_size_kb:
        reasons.append(f"size {size_kb:.1f} KB > {selection.max_size_kb:g} KB")
    return reasons


def _why_not(record: Mapping[str, Any], winner: Mapping[str, Any]) -> str:
    if merit(record) != merit(winner):
        return f"fits and meets the budget, but {less_good(record, winner)}"
    mine, theirs = p50(record), p50(winner)
    if mine != theirs:
        shown = "no estimate" if mine is None else format_ms(mine)
        return f"fits, equally accurate, but a slower estimate ({shown} vs {format_ms(theirs)} ms, estimated)"
    if record["size_bytes"] != winner["size_bytes"]:
        return (f"fits, equally accurate and estimated as fast, but larger ({record['size_bytes'] / KB:.1f} vs "
                f"{winner['size_bytes'] / KB:.1f} KB)")
    return "fits and equals the winner; the winner comes first by name"
