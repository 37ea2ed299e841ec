"""The compatibility report: per-op placement, the verdict, and two renderings (JSON, text)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ACCELERATOR, CPU, NOWHERE = "accelerator", "cpu", "none"


@dataclass(frozen=True)
class CompileResult:
    """What a target's own compiler said (Edge TPU compiler, Vela): the fields the report's
    verdict reads; each compiler's result adds its own."""

    status: str  # "compiled" | "failed" | "skipped"
    reason: str = ""
    compiler: str = ""
    version: str = ""
    output: str | None = None  # the compiled file
    ops_total: int | None = None
    ops_on_accelerator: int | None = None
    ops_on_cpu: int | None = None


@dataclass(frozen=True)
class OpPlacement:
    """One op: where it runs ("accelerator", "cpu", or "none" when no kernel exists at all)."""

    index: int
    op: str
    version: int | None
    runs_on: str
    supported: bool  # the accelerator can run this op (it may still land on the CPU: partitioning)
    reason: str | None = None  # why it is not on the accelerator
    macs: int | None = None
    note: str = ""  # the target's known limit for this op


@dataclass(frozen=True)
class CompatibilityReport:
    """Will `artifact` run fully on `target`'s accelerator, and if not, what falls back and why."""

    artifact: str
    target: str
    accelerator: str
    fallback: str
    format: str  # "tflite" | "onnx"
    ops: tuple[OpPlacement, ...]
    blockers: tuple[str, ...] = ()  # whole-model reasons nothing is accelerated
    partition_at: int | None = None  # Edge TPU: the first unsupported op
    partitions: int = 0  # runs of ops handed to the accelerator
    param_cache: dict[str, int] | None = None  # {"used_bytes", "capacity_bytes"}
    compile: dict[str, Any] | None = None  # the real compiler's result, when the target has one
    memory: dict[str, Any] | None = None  # microcontrollers: RAM and flash needed vs the board's
    notes: tuple[str, ...] = ()

    @property
    def on_accelerator(self) -> list[OpPlacement]:
        return [op for op in self.ops if op.runs_on == ACCELERATOR]

    @property
    def compatible(self) -> bool:
        """True only when every op runs on the accelerator (the compiler decides when it ran)."""
        status = (self.compile or {}).get("status")
        if status == "compiled":
            return self.compile.get("ops_on_cpu") == 0
        if status == "failed":
            return False
        return not self.blockers and len(self.on_accelerator) == len(self.ops)

    @property
    def unsupported_ops(self) -> list[str]:
        """Names of ops the accelerator cannot run, first occurrence order."""
        return list(dict.fromkeys(op.op for op in self.ops if not op.supported))

    @property
    def macs_total(self) -> int | None:
        counted = [op.macs for op in self.ops if op.macs is not None]
        return sum(counted) if counted else None

    @property
    def macs_on_accelerator(self) -> int | None:
        if self.macs_total is None:
            return None
        return sum(op.macs or 0 for op in self.on_accelerator)

    @property
    def share_ops(self) -> float:
        return len(self.on_accelerator) / len(self.ops) if self.ops else 0.0

    @property
    def share_macs(self) -> float | None:
        total = self.macs_total
        return self.macs_on_accelerator / total if total else None

    @property
    def summary(self) -> str:
        """One line: the verdict and the main reason."""
        total, fallen = len(self.ops), len(self.ops) - len(self.on_accelerator)
        if self.blockers:
            line = f"not compatible with {self.target}: {self.blockers[0]}"
        elif fallen == 0:
            line = f"all {total} ops run on {self.accelerator} ({self.target})"
        else:
            verb = "falls" if fallen == 1 else "fall"
            line = f"{fallen} of {total} ops {verb} back to {self.fallback} on {self.target}"
            if self.partition_at is not None:
                line += f" (partition at op {self.partition_at} {self.ops[self.partition_at].op})"
            elif self.unsupported_ops:
                line += f" (unsupported: {', '.join(self.unsupported_ops)})"
            if self.share_macs is not None:
                line += f"; {self.share_macs:.0%} of MACs on {self.accelerator}"
        if self.compile and self.compile.get("status") == "compiled":
            line += f"; {self.compile.get('compiler', 'compiler')}: {self.compile.get('ops_on_accelerator')} of " \
                    f"{self.compile.get('ops_total')} ops mapped"
        elif self.compile and self.compile.get("status") == "failed":
            line += f"; {self.compile.get('compiler', 'compiler')} failed"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, the `compatibility` field of results.json."""
        data = asdict(self)
        data["ops"] = [asdict(op) for op in self.ops]
        data.update(
            compatible=self.compatible, summary=self.summary, ops_total=len(self.ops),
            ops_on_accelerator=len(self.on_accelerator), share_ops=round(self.share_ops, 4),
            macs_total=self.macs_total, macs_on_accelerator=self.macs_on_accelerator,
            share_macs=None if self.share_macs is None else round(self.share_macs, 4),
            unsupported_ops=self.unsupported_ops,
        )
        data["blockers"], data["notes"] = list(self.blockers), list(self.notes)
        return data

    def format_text(self) -> str:
        """Readable report: verdict, shares, then one row per op."""
        accel = self.accelerator
        lines = [
            f"{self.artifact} on {self.target} ({accel}; unsupported ops run on: {self.fallback})",
            f"verdict: {'compatible — ' if self.compatible else ''}{self.summary}",
        ]
        shares = f"ops on {accel}: {len(self.on_accelerator)} of {len(self.ops)} ({self.share_ops:.0%})"
        if self.share_macs is not None:
            shares += f" · MACs on {accel}: {_count(self.macs_on_accelerator)} of {_count(self.macs_total)} " \
                      f"({self.share_macs:.0%})"
        lines.append(shares + f" · accelerator partitions: {self.partitions}")
        if self.param_cache:
            used, capacity = self.param_cache["used_bytes"], self.param_cache["capacity_bytes"]
            verdict = "fits" if used <= capacity else "does NOT fit: the rest streams from host memory each run"
            lines.append(f"parameter cache: {_bytes(used)} of {_bytes(capacity)} ({verdict})")
        if self.memory:
            lines.append(_memory_line(self.memory))
        if self.compile:
            detail = self.compile.get("reason") or f"{self.compile.get('ops_on_accelerator')} of " \
                                                   f"{self.compile.get('ops_total')} ops mapped"
            lines.append(f"{self.compile.get('compiler', 'compiler')}: {self.compile['status']} — {detail}")
        lines += [f"blocker: {blocker}" for blocker in self.blockers]
        lines += ["", _op_table(self.ops, accel)]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _memory_line(memory: dict[str, Any]) -> str:
    """'RAM 40.2 KiB of 256.0 KiB, flash 61.7 KiB of 1.0 MiB: fits (board)' or by how much it misses."""
    parts = []
    for kind in ("ram", "flash"):
        needed, budget = memory[f"{kind}_needed_bytes"], memory[f"{kind}_budget_bytes"]
        miss = f" (misses by {_bytes(needed - budget)})" if needed > budget else ""
        parts.append(f"{kind.upper() if kind == 'ram' else kind} {_bytes(needed)} of {_bytes(budget)}{miss}")
    return f"memory on {memory['board']}: {', '.join(parts)}: {'fits' if memory['fits'] else 'does NOT fit'}"


def _op_table(ops: tuple[OpPlacement, ...], accel: str) -> str:
    places = {ACCELERATOR: accel, CPU: "CPU", NOWHERE: "nowhere"}
    rows = [("#", "op", "ver", "runs on", "MACs", "reason / note")]
    for op in ops:
        why = op.reason or (f"({op.note})" if op.note else "")
        rows.append((str(op.index), op.op, "" if op.version is None else str(op.version), places[op.runs_on],
                     "" if op.macs is None else _count(op.macs), why))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    right = {0, 2, 4}
    return "\n".join(
        ("  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
         + "  " + row[5]).rstrip()
        for row in rows
    )


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def _bytes(value: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"
