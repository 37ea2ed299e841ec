"""Run a chain of passes on a model and record what each step did."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.passes.context import PassContext, accuracy
from toolkit.passes.registry import PASSES
from toolkit.passes.sparsity import keras_sparsity, unique_weight_counts
from toolkit.passes.steps import Step, is_qat_chain


@dataclass(frozen=True)
class ChainResult:
    """`model` is export-ready: wrappers stripped, or quantize-wrapped when `is_qat` (convert it
    with `Optimize.DEFAULT` for int8). `params` counts the weights a deployed model stores."""

    model: Any
    is_qat: bool
    params: int
    info: dict[str, Any]


def apply_chain(model: Any, steps: tuple[Step, ...], ctx: PassContext) -> ChainResult:
    """Apply `steps` in order to a copy of `model` (which is left untouched)."""
    current = model
    record = []
    applied: tuple[str, ...] = ()
    deployed = model
    for step in steps:
        started = time.time()
        ctx.log(f"  {step.text}: {PASSES[step.name].summary}")
        result = PASSES[step.name].apply(current, step.params, dataclasses.replace(ctx, applied=applied))
        if step.name != "qat":
            deployed = result
        current, applied = result, (*applied, step.name)
        val_accuracy = accuracy(current, ctx.x_val, ctx.y_val)
        record.append({"step": step.text, "val_accuracy": round(val_accuracy, 4), "seconds": round(time.time() - started, 1)})
        ctx.log(f"  {step.text}: validation accuracy {val_accuracy:.4f}")
    info = {
        "steps": record,
        "sparsity": keras_sparsity(current),
        "unique_weights": unique_weight_counts(current),
    }
    return ChainResult(model=current, is_qat=is_qat_chain(steps), params=_count_params(deployed), info=info)


def _count_params(model: Any) -> int:
    """All weights, trainable or not (QAT counts the model before fake-quant wrappers)."""
    return int(sum(int(weight.shape.num_elements()) for weight in model.weights))


def load_variant_model(path: Path) -> Any:
    """Reload a variant this tool saved, including QAT models and their custom quantizers."""
    from toolkit._tf import keras, tfmot
    from toolkit.passes.qat import custom_objects

    with tfmot().quantization.keras.quantize_scope(custom_objects()):
        return keras().models.load_model(path, compile=False)
