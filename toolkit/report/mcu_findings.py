"""Findings for microcontroller targets: estimated latency said as such, and what fits the board."""
from __future__ import annotations

from collections import defaultdict

from toolkit.selection import artifact_name, estimated

KIB = 1024


def mcu_findings(records: list[dict]) -> list[str]:
    """One sentence per estimated-latency target on where its latency comes from, then one per
    board on which artifacts fit and by how much the others miss."""
    by_target: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if estimated(record):
            by_target[record["target"]].append(record)
    sentences = []
    for target, rows in by_target.items():
        source = (rows[0].get("latency_measured_on") or "").removeprefix("not measured: ")
        sentences.append(f"latency for {target} is estimated, never measured here ({source}): "
                         f"compare it only within {target}")
        sentences += _fit(target, rows)
    return sentences


def _fit(target: str, rows: list[dict]) -> list[str]:
    checked = [row for row in rows if row.get("fits") is not None]
    misses = [row for row in checked if not row["fits"]]
    if not checked:
        return []
    board = ((checked[0].get("compatibility") or {}).get("memory") or {}).get("board", "board")
    lead = f"{target}: {len(checked) - len(misses)} of {len(checked)} artifacts fit the {board}"
    if not misses:
        return [lead]
    return [f"{lead}; {', '.join(_miss(row) for row in misses[:3])}" + (" …" if len(misses) > 3 else "")]


def _miss(row: dict) -> str:
    memory = (row.get("compatibility") or {}).get("memory") or {}
    parts = [f"{kind} by {(memory[f'{kind}_needed_bytes'] - memory[f'{kind}_budget_bytes']) / KIB:.1f} KiB"
             for kind in ("ram", "flash") if memory.get(f"{kind}_needed_bytes", 0) > memory.get(f"{kind}_budget_bytes", 0)]
    return f"{artifact_name(row)} misses {' and '.join(parts) or 'its budget'}"
