"""What `explain` found: the ranked layers, the fallback steps, and the findings sentence."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from toolkit.quant_debug.fallback import FallbackStep
from toolkit.quant_debug.layers import LayerError


def int8_change(drop_pp: float) -> str:
    """'int8 lost 3.10 pp', or 'int8 gained 6.67 pp' where it scored higher (a small test split)."""
    return f"int8 lost {drop_pp:.2f} pp" if drop_pp >= 0 else f"int8 gained {-drop_pp:.2f} pp"


@dataclass(frozen=True)
class Explanation:
    """Per-layer int8 error of one model on one target, worst layer first.

    `int8` is the plain int8 file, `top_float` the same file with the worst layer kept float
    (None where the target refuses fallback), `steps` the requested fallback, int8 first."""

    target: str
    format: str
    samples: int
    float_accuracy: float
    layers: list[LayerError]
    int8: FallbackStep
    top_float: FallbackStep | None
    steps: list[FallbackStep]
    refused: str | None
    max_accuracy_drop: float

    @property
    def int8_drop_pp(self) -> float:
        return _pp(self.float_accuracy - self.int8.accuracy)

    def findings(self) -> str:
        """"int8 lost X pp; N% of the error comes from `layer`; keeping it in float recovers
        Y pp at +Z% size" (or why the target cannot keep it float)."""
        if not self.layers:
            return f"{int8_change(self.int8_drop_pp)}; no quantized layer was found"
        worst = self.layers[0]
        text = f"{int8_change(self.int8_drop_pp)}; {worst.share * 100:.0f}% of the error comes from `{worst.name}`"
        if self.top_float is None:
            return f"{text}; {self.refused}: make the model int8-friendly with QAT (--variant qat) instead"
        recovered = _pp(self.top_float.accuracy - self.int8.accuracy)
        growth = (self.top_float.size_bytes / self.int8.size_bytes - 1) * 100
        return f"{text}; keeping it in float recovers {recovered:.2f} pp at {growth:+.0f}% size"

    def format_text(self, top: int = 10) -> str:
        lines = [f"{self.target} ({self.format}): float {self.float_accuracy * 100:.2f}%, int8 "
                 f"{self.int8.accuracy * 100:.2f}% ({self.int8.size_bytes / 1024:.1f} KB); per-layer error on "
                 f"{self.samples} test samples, worst first:",
                 f"{'#':>3}  {'layer':24} {'op':16} {'SQNR dB':>8} {'RMSE/scale':>10} {'share %':>8}"]
        for index, error in enumerate(self.layers[:top], 1):
            rmse = "-" if error.rmse_per_scale is None else f"{error.rmse_per_scale:.2f}"
            sqnr = "exact" if math.isinf(error.sqnr_db) else f"{error.sqnr_db:.1f}"
            lines.append(f"{index:>3}  {error.name[:24]:24} {error.op[:16]:16} {sqnr:>8} {rmse:>10} {error.share * 100:>8.1f}")
        if self.steps:
            lines.append(f"fallback (budget: drop ≤ {self.max_accuracy_drop:g} pp):")
            for step in self.steps:
                kept = ", ".join(step.float_layers) or "none (int8)"
                drop = _pp(self.float_accuracy - step.accuracy)
                lines.append(f"  float: {kept:30} acc {step.accuracy * 100:6.2f}%  drop {drop:+6.2f} pp  "
                             f"size {step.size_bytes / 1024:7.1f} KB  {step.path}")
        elif self.refused and self.top_float is None:
            lines.append(f"fallback refused: {self.refused}")
        lines.append(self.findings())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "format": self.format, "samples": self.samples,
            "float_accuracy": self.float_accuracy, "int8": self.int8.to_dict(), "int8_drop_pp": self.int8_drop_pp,
            "layers": [finite(error.to_dict()) for error in self.layers],
            "top_float": self.top_float.to_dict() if self.top_float else None,
            "fallback": [step.to_dict() for step in self.steps], "fallback_refused": self.refused,
            "max_accuracy_drop": self.max_accuracy_drop, "findings": self.findings(),
        }


def _pp(fraction: float) -> float:
    return fraction * 100


def finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: an exact tensor's SQNR is null."""
    return {key: None if isinstance(value, float) and math.isinf(value) else value for key, value in row.items()}
