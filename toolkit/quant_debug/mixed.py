"""The `int8-mixed` precision of a run: a variant's int8 export with its worst layers kept float.

`edgesmith run --float-fallback auto` adds it beside `int8` on every target that can run a
float layer (`fallback.refusal`). The drop that `auto` tries to bring within the budget is the
one quantization adds to the variant itself (its float model against the file), so a pruned
or distilled variant is not made to make up for what its own pass cost. What the export found
(the per-layer error of the plain int8 file, each fallback step) goes into its record.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.data_stream import predict_in_chunks
from toolkit.files import write_bytes
from toolkit.quant_debug.analysis import debugger_for, file_accuracy
from toolkit.quant_debug.fallback import FallbackPlan, parse_fallback, refusal, run_fallback
from toolkit.quant_debug.layers import rank
from toolkit.quant_debug.result import finite
from toolkit.top1 import top1

MIXED = "int8-mixed"
DEBUG_SAMPLES = 200  # test samples the per-layer statistics are taken on (as `edgesmith explain`)
TOP_LAYERS = 20  # rows of the per-layer table a record keeps


def can_mix(target: Any) -> bool:
    """Whether `target` exports int8 and can keep a layer in float."""
    return "int8" in target.precisions and refusal(target) is None


def refused_targets(targets: list[Any]) -> dict[str, str]:
    """Targets with int8 exports that cannot keep a layer float, and why (for run.json)."""
    return {target.name: refusal(target) for target in targets if "int8" in target.precisions and refusal(target)}


def export_mixed(model: Any, target: Any, calibration: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 path: Path, plan_text: str, max_drop_pp: float, max_size_kb: float = 0.0) -> dict[str, Any]:
    """Write the int8-mixed file to `path`; return what its record shows: the layers kept
    float, every measured step, the per-layer error of the plain int8 file, and notes. `auto`
    keeps the file within `max_size_kb` (0: no limit)."""
    with tempfile.TemporaryDirectory(prefix="edgesmith-mixed-") as scratch:
        folder = Path(scratch)
        debugger, suffix = debugger_for(model, target, calibration, x_test[:DEBUG_SAMPLES], folder)
        layers = rank(debugger.layer_errors())
        plan, notes = _known_layers(parse_fallback(plan_text), layers)
        float_accuracy = float(np.mean(top1(predict_in_chunks(lambda x: model.predict(x, verbose=0), x_test)) == y_test))
        steps = run_fallback(plan, layers, debugger.write, lambda file: file_accuracy(file, x_test, y_test),
                             folder, float_accuracy, max_drop_pp, suffix, round(max_size_kb * 1024))
        chosen = steps[-1]
        write_bytes(path, Path(chosen.path).read_bytes())
    return {
        "float_layers": list(chosen.float_layers),
        "fallback": {
            "plan": plan_text, "max_accuracy_drop": max_drop_pp, "float_accuracy": float_accuracy,
            "steps": [{"float_layers": list(step.float_layers), "accuracy": step.accuracy,
                       "size_bytes": step.size_bytes} for step in steps],
            "layers": [finite(error.to_dict()) for error in layers[:TOP_LAYERS]],
            "samples": min(DEBUG_SAMPLES, len(x_test)),
        },
        "notes": notes,
    }


def _known_layers(plan: FallbackPlan, layers: list[Any]) -> tuple[FallbackPlan, list[str]]:
    """A list of layer names applies to every variant of a run, and a distilled student has
    other layers: keep the names this model has and say which it lacks."""
    if plan.auto:
        return plan, []
    known = {name for error in layers for name in (error.layer, error.tensor)}
    missing = [name for name in plan.layers if name not in known]
    notes = [f"float fallback: this variant has no quantized layer named {', '.join(missing)}"] if missing else []
    return replace(plan, layers=tuple(name for name in plan.layers if name in known)), notes
