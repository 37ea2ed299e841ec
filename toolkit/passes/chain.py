"""Run a chain of passes on a model and record what each step did."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.models import count_params
from toolkit.passes.context import PassContext, validation_score
from toolkit.passes.registry import PASSES
from toolkit.passes.sparsity import keras_sparsity, unique_weight_counts
from toolkit.passes.steps import Step, is_qat_chain


@dataclass(frozen=True)
class ChainResult:
    """`model` is export-ready: wrappers stripped, or quantize-wrapped when `is_qat` (convert it
    with `Optimize.DEFAULT` for int8). `float_model` is the model before QAT wrapping (the same
    as `model` otherwise). `params` counts the weights a deployed model stores."""

    model: Any
    float_model: Any
    is_qat: bool
    params: int
    info: dict[str, Any]


def apply_chain(model: Any, steps: tuple[Step, ...], ctx: PassContext, applied: tuple[str, ...] = (),
                earlier: tuple[dict[str, Any], ...] = ()) -> ChainResult:
    """Apply `steps` in order to a copy of `model` (which is left untouched). `model` may be the
    result of earlier passes (a chain's cached prefix): `applied` names them, `earlier` is what
    they recorded."""
    current = model
    record = list(earlier)
    deployed = model
    for step in steps:
        started = time.time()
        ctx.log(f"  {step.text}: {PASSES[step.name].summary}")
        notes: dict[str, Any] = {}
        result = PASSES[step.name].apply(current, step.params, dataclasses.replace(ctx, applied=applied, notes=notes))
        if not PASSES[step.name].quantization_aware:
            deployed = result
        current, applied = result, (*applied, step.name)
        metric, value = validation_score(current, ctx)
        record.append({"step": step.text, f"val_{metric}": round(value, 4), "seconds": round(time.time() - started, 1),
                       **notes})
        ctx.log(f"  {step.text}: validation {metric if metric == 'accuracy' else metric.upper()} {value:.4f}")
    info = {
        "steps": record,
        "sparsity": keras_sparsity(current),
        "unique_weights": unique_weight_counts(current),
    }
    return ChainResult(current, deployed, is_qat_chain(steps), count_params(deployed), info)



def save_variant_model(result: ChainResult, path: Path) -> list[Path]:
    """Save the chain's model to `path` (.h5); a QAT model also keeps its float model beside it,
    which `load_variant_model` needs to rebuild the wrappers. Returns the files written."""
    from toolkit.model_files import save_model

    save_model(result.model, path)
    if not result.is_qat:
        return [Path(path)]
    save_model(result.float_model, _float_path(path))
    return [Path(path), _float_path(path)]


def load_variant_model(path: Path, steps: tuple[Step, ...]) -> Any:
    """Reload a model saved by `save_variant_model` for the same `steps`."""
    from toolkit.model_files import load_saved

    if not is_qat_chain(steps):
        return load_saved(path)
    rewrap = PASSES[steps[-1].name].rewrap
    model = rewrap(load_saved(_float_path(path)), tuple(step.name for step in steps[:-1]))
    model.load_weights(path)
    return model


def _float_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.stem}.float{path.suffix}")
