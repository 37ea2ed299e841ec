"""One row of the per-layer table: how much error a quantized layer adds, with its Keras name.

Both backends reduce their library's statistics to the same figures so one ranking serves
both: `noise_ratio` (error power over signal power that the layer adds) orders the rows, and
`share` is the layer's part of the summed ratios, i.e. "N% of the error comes from it".
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Sequence

_SEPARATORS = re.compile(r"[;/:]")


@dataclass(frozen=True)
class LayerError:
    """Error of one quantized tensor on the evaluation sample."""

    tensor: str  # the tensor's name in the artifact (what a fallback list may also name)
    layer: str | None  # the Keras layer it comes from, where the name maps
    op: str
    sqnr_db: float  # signal-to-quantization-noise ratio of the tensor (higher is better)
    rmse_per_scale: float | None  # RMS error in quantization steps of the tensor
    noise_ratio: float  # error power / signal power this layer adds
    share: float = 0.0  # noise_ratio / sum over layers

    @property
    def name(self) -> str:
        return self.layer or self.tensor

    def to_dict(self) -> dict:
        return {**asdict(self), "name": self.name}


def keras_layer(tensor: str, layer_names: Iterable[str]) -> str | None:
    """The Keras layer a converter named `tensor` after: TFLite and tf2onnx both keep the
    `model/layer/op` path, so the layer is a path component."""
    parts = set(_SEPARATORS.split(tensor))
    return next((name for name in layer_names if name in parts), None)


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """10·log10(signal/noise); +inf for an exact tensor."""
    if noise_power <= 0:
        return math.inf
    return 10 * math.log10(max(signal_power, 1e-30) / noise_power)


def noise_ratio(sqnr: float) -> float:
    """Noise over signal power from an SQNR in dB."""
    return 0.0 if math.isinf(sqnr) else 10 ** (-sqnr / 10)


def rank(errors: Sequence[LayerError]) -> list[LayerError]:
    """Worst first, each with its share of the summed noise ratios."""
    total = sum(error.noise_ratio for error in errors)
    shared = [replace(error, share=error.noise_ratio / total if total > 0 else 0.0) for error in errors]
    return sorted(shared, key=lambda error: error.noise_ratio, reverse=True)


def select(errors: Sequence[LayerError], names: Sequence[str]) -> list[LayerError]:
    """The rows a user named (Keras layer or tensor names), in the user's order."""
    from toolkit.errors import EdgesmithError

    chosen = []
    for name in names:
        match = [error for error in errors if name in (error.layer, error.tensor)]
        if not match:
            known = ", ".join(dict.fromkeys(error.name for error in errors))
            raise EdgesmithError(f"no quantized layer is named '{name}'", f"name one of: {known}")
        chosen.extend(error for error in match if error not in chosen)
    return chosen
