"""Magnitude pruning: unstructured to a sparsity, or structured m:n (e.g. 2:4) along input channels.

Unstructured pruning ramps sparsity up with a polynomial schedule during the first 70% of the
fine-tune and lets the remaining steps recover accuracy. m:n pruning keeps the m smallest of
every n consecutive input-channel weights at zero, the pattern sparse kernels accelerate; only
layers whose input-channel count is a multiple of n can hold that pattern, the rest stay dense.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit._tf import keras, tfmot
from toolkit.errors import EdgesmithError
from toolkit.passes.context import PassContext, PassNotApplicable, clone_with_weights, fine_tune

RAMP_FRACTION = 0.7  # share of fine-tune steps spent raising sparsity; the rest recovers accuracy
MASK_UPDATES = 20  # how many times the mask is recomputed while sparsity ramps up
_PATTERN = re.compile(r"^(\d+)(?::|of)(\d+)$")


@dataclass(frozen=True)
class Params:
    """`sparsity`: fraction of weights set to zero; `pattern`: structured "m:n" instead."""

    sparsity: float | None = None
    pattern: str | None = None

    POSITIONAL: ClassVar[tuple[str, ...]] = ("sparsity",)
    EXAMPLE: ClassVar[str] = "prune:0.8 or prune:2:4"

    def __post_init__(self) -> None:
        if self.pattern is not None:
            if self.sparsity is not None:
                raise EdgesmithError("prune takes a sparsity or an m:n pattern, not both", "write prune:0.8 or prune:2:4")
            m, n = self.m_by_n()
            if not 0 < m < n:
                raise EdgesmithError(f"prune pattern {self.pattern} needs 0 < m < n", "use a pattern like 2:4")
            return
        if self.sparsity is None:
            object.__setattr__(self, "sparsity", 0.5)
        if not 0.0 <= self.sparsity < 1.0:
            raise EdgesmithError(f"prune sparsity {self.sparsity:g} is out of range", "use a fraction like 0.8")

    @classmethod
    def positional_field(cls, value: str) -> str:
        """`prune:2:4` names a pattern, `prune:0.8` a sparsity."""
        return "pattern" if _PATTERN.match(value) else "sparsity"

    def m_by_n(self) -> tuple[int, int]:
        match = _PATTERN.match(self.pattern or "")
        if not match:
            raise EdgesmithError(f"prune pattern '{self.pattern}' is not of the form m:n", "use a pattern like 2:4")
        return int(match.group(1)), int(match.group(2))

    def suffix(self) -> str:
        if self.pattern is not None:
            m, n = self.m_by_n()
            return f"{m}of{n}"
        return f"{self.sparsity * 100:.4g}"


def apply(model: Any, params: Params, ctx: PassContext) -> Any:
    """Fine-tune a pruned copy of `model`; return it with the pruning wrappers stripped."""
    sparsity = tfmot().sparsity.keras
    base = clone_with_weights(model)
    m_by_n = params.m_by_n() if params.pattern is not None else None
    wrapper_args = {"pruning_schedule": _schedule(params, ctx), "sparsity_m_by_n": m_by_n}
    dense: list[str] = []

    def wrap(layer: Any) -> Any:
        if isinstance(layer, keras().layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        if not _prunable(layer):
            return layer
        if m_by_n and not _fits_pattern(layer, m_by_n[1]):
            dense.append(layer.name)
            return layer
        return sparsity.prune_low_magnitude(layer, **wrapper_args)

    wrapped = keras().models.clone_model(base, clone_function=wrap)
    if dense:
        ctx.log(f"  prune {params.pattern}: left dense (input channels not a multiple of {m_by_n[1]}): {', '.join(dense)}")
    fine_tune(wrapped, ctx, callbacks=(sparsity.UpdatePruningStep(),))
    return sparsity.strip_pruning(wrapped)


def _schedule(params: Params, ctx: PassContext) -> Any:
    """Sparsity over fine-tune steps; `end_step` is a multiple of the frequency so it is reached."""
    sparsity = tfmot().sparsity.keras
    total = ctx.steps_per_epoch() * ctx.epochs
    frequency = max(1, int(total * RAMP_FRACTION) // MASK_UPDATES)
    if params.pattern is not None:
        return sparsity.ConstantSparsity(0.5, begin_step=0, frequency=frequency)
    end_step = max(frequency, int(total * RAMP_FRACTION) // frequency * frequency)
    return sparsity.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=params.sparsity, begin_step=0, end_step=end_step, frequency=frequency
    )


def _prunable(layer: Any) -> bool:
    """Whether tfmot can prune this layer; raise if it has weights tfmot knows nothing about."""
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    sparsity = tfmot().sparsity.keras
    if isinstance(layer, sparsity.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
        return True
    if PruneRegistry.supports(layer):
        weights = PruneRegistry._LAYERS_WEIGHTS_MAP.get(type(layer), True)  # noqa: SLF001 - RNNs: True
        return bool(weights)
    if not layer.weights:
        return False
    raise PassNotApplicable(
        f"prune cannot prune layer '{layer.name}' ({type(layer).__name__}): tfmot has no pruning rule for it",
        "drop prune from this chain or rebuild the layer from standard Keras layers",
    )


def _fits_pattern(layer: Any, n: int) -> bool:
    """m:n groups run along input channels: Dense/Conv2D kernels whose input axis divides by n."""
    k = keras()
    if type(layer) not in (k.layers.Dense, k.layers.Conv2D):
        return False
    return layer.kernel.shape[-2] % n == 0
