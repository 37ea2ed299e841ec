"""The registry: pass name → technique (a Params dataclass and an apply function).

Adding a technique means writing one module with `Params` and `apply` and adding a line here;
parsing, chain ids and the registry-parametrized tests pick it up from this dict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from toolkit.passes import cluster, distill, prune, qat


@dataclass(frozen=True)
class Technique:
    """`params`: frozen dataclass with `POSITIONAL`, `EXAMPLE` and `suffix()`;
    `apply(model, params, ctx) -> keras.Model` never modifies `model`."""

    params: type
    apply: Callable[..., Any]
    summary: str
    first_only: bool = False  # replaces the model outright, so earlier steps would be lost
    last_only: bool = False  # its output is for conversion only, nothing can follow it
    quantization_aware: bool = False  # its model is fake-quantized: exported as int8 only
    sparsifying: bool = False  # its gain is in gzip size (zeros, shared values), not dense kernels
    control: str = ""  # a pass trained the same way without the technique, added to show its gain
    not_after: tuple[str, ...] = ()  # passes it must not follow (it would undo their effect)
    rewrap: Callable[..., Any] | None = None  # quantization-aware: rebuild its wrappers on a reload


PASSES: dict[str, Technique] = {
    "prune": Technique(prune.Params, prune.apply, "magnitude pruning to a sparsity, or m:n structured",
                       sparsifying=True, not_after=("cluster",)),
    "cluster": Technique(cluster.Params, cluster.apply, "weight clustering to N shared values per kernel",
                         sparsifying=True),
    "qat": Technique(qat.Params, qat.apply, "quantization-aware training for the int8 export", last_only=True,
                     quantization_aware=True, rewrap=qat.quantize),
    "distill": Technique(
        distill.Params, distill.apply, "train a smaller student on the full model's soft labels", first_only=True,
        control="scratch",
    ),
    "scratch": Technique(
        distill.Params, distill.apply_scratch, "control for distill: the same student from labels only", first_only=True
    ),
}
