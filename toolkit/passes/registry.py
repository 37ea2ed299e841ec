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


PASSES: dict[str, Technique] = {
    "prune": Technique(prune.Params, prune.apply, "magnitude pruning to a sparsity, or m:n structured"),
    "cluster": Technique(cluster.Params, cluster.apply, "weight clustering to N shared values per kernel"),
    "qat": Technique(qat.Params, qat.apply, "quantization-aware training for the int8 export", last_only=True),
    "distill": Technique(
        distill.Params, distill.apply, "train a smaller student on the full model's soft labels", first_only=True
    ),
    "scratch": Technique(
        distill.Params, distill.apply_scratch, "control for distill: the same student from labels only", first_only=True
    ),
}
