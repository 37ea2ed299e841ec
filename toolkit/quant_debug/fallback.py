"""Selective float fallback: keep the worst layers in float, re-measure, stop within budget.

`auto` grows the float set one layer at a time in the per-layer ranking until the accuracy
drop against the float model is within the budget or N layers are float; a list keeps exactly
those layers. Targets whose accelerator computes int8 only cannot run a float layer there.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from toolkit.errors import EdgesmithError
from toolkit.quant_debug.layers import LayerError, select

AUTO_LIMIT = 3
SYNTAX = "auto, auto:N (N ≥ 1) or comma-separated layer names"


@dataclass(frozen=True)
class FallbackPlan:
    """`auto` with at most `limit` float layers, or the named `layers`."""

    auto: bool
    limit: int = AUTO_LIMIT
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class FallbackStep:
    """One measured file: the layers kept float (none: plain int8), accuracy and size."""

    float_layers: tuple[str, ...]
    accuracy: float
    size_bytes: int
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fallback(value: str | Sequence[str]) -> FallbackPlan:
    """"auto", "auto:2", "conv1,dense" or a list of layer names."""
    if not isinstance(value, str):
        return FallbackPlan(auto=False, layers=tuple(value)) if value else _bad(str(value))
    if value == "auto":
        return FallbackPlan(auto=True)
    if value.startswith("auto:"):
        limit = value.removeprefix("auto:")
        if not limit.isdigit() or int(limit) < 1:
            _bad(value)
        return FallbackPlan(auto=True, limit=int(limit))
    layers = tuple(name.strip() for name in value.split(",") if name.strip())
    return FallbackPlan(auto=False, layers=layers) if layers else _bad(value)


def _bad(value: str) -> FallbackPlan:
    raise EdgesmithError(f"fallback '{value}' is not understood", f"use {SYNTAX}")


def refusal(target: Any) -> str | None:
    """Why `target` cannot keep a layer in float, or None where it can."""
    accelerator = target.accelerator
    float_ok = not accelerator.tensor_types or "float32" in accelerator.tensor_types
    if accelerator.requires_quantized or not float_ok:
        return (f"{target.name} runs int8 only ({accelerator.name}: {', '.join(accelerator.tensor_types)} tensors), "
                f"so a float layer would leave the accelerator")
    return None


def run_fallback(plan: FallbackPlan, ranked: Sequence[LayerError], write: Callable[[Path, Sequence[LayerError]], Path],
                 accuracy: Callable[[Path], float], folder: Path, float_accuracy: float,
                 max_drop_pp: float, suffix: str, max_size_bytes: int = 0) -> list[FallbackStep]:
    """Measured steps, the plain int8 file first. `write(path, rows)` makes a file with `rows`
    float; `accuracy(path)` scores it on the test split. `auto` also stops before a step whose
    file would be larger than `max_size_bytes` (0: no limit)."""
    measure = lambda names, rows=(): _measure(write, accuracy, folder / suffix, names, rows)  # noqa: E731
    int8 = measure(())
    steps = [int8]
    if not plan.auto:
        chosen = select(ranked, plan.layers)
        return steps + [measure(tuple(dict.fromkeys(e.name for e in chosen)), chosen)]
    order = list(dict.fromkeys(error.name for error in ranked))
    for count in range(1, min(plan.limit, len(order)) + 1):
        if _drop_pp(float_accuracy, steps[-1].accuracy) <= max_drop_pp:
            break
        names = tuple(order[:count])
        step = measure(names, select(ranked, names))
        if max_size_bytes and step.size_bytes > max_size_bytes:
            break
        steps.append(step)
    return steps


def _measure(write, accuracy, template: Path, names: tuple[str, ...], rows: Sequence[LayerError]) -> FallbackStep:
    """`template` is folder/suffix: the file is folder/<float layers>.<suffix>."""
    label = "+".join(names) if names else "int8"
    path = write(template.parent / f"{_file_safe(label)}.{template.name}", rows)
    return FallbackStep(names, accuracy(path), path.stat().st_size, str(path))


def _drop_pp(reference: float, accuracy: float) -> float:
    return (reference - accuracy) * 100


def _file_safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "+-_." else "_" for ch in label)[:80]
