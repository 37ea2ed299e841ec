"""Quantization-aware training: fine-tune with int8 fake-quantization so the int8 export keeps accuracy.

The result is the quantize-wrapped Keras model; converting it with `Optimize.DEFAULT` yields a
fully int8 model using the trained ranges. After pruning or clustering, tfmot's collaborative
schemes keep the zeros (PQAT) or the shared centroids (CQAT) through the fine-tune; without them
QAT would silently re-densify the weights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit._tf import keras, tfmot
from toolkit.errors import first_line
from toolkit.passes.context import PassContext, PassNotApplicable, fine_tune, outputs_probabilities, unwrap
from toolkit.passes.qat_layers import AFFINE_LAYERS, quantizable

_UNSUPPORTED = re.compile(r"^Layer (?P<name>[^:]+):<class '(?:[\w.]+\.)?(?P<cls>\w+)'> is not supported")


@dataclass(frozen=True)
class Params:
    """QAT has no knobs: 8-bit weights and activations, the scheme follows the chain."""

    POSITIONAL: ClassVar[tuple[str, ...]] = ()
    EXAMPLE: ClassVar[str] = "qat"

    def suffix(self) -> str:
        return ""


def apply(model: Any, params: Params, ctx: PassContext) -> Any:
    """Return a fine-tuned quantize-wrapped copy of `model`."""
    from_logits = not outputs_probabilities(model)
    wrapped = quantize(model, ctx.applied)
    ctx.log(f"  qat scheme: {_scheme(ctx.applied).__class__.__name__}")
    fine_tune(wrapped, ctx, from_logits=from_logits, gentle=True)
    return wrapped


def quantize(model: Any, applied: tuple[str, ...]) -> Any:
    """Wrap a copy of `model` for QAT with the scheme that fits the passes `applied` before.

    Deterministic given the weights, which is how a saved QAT variant is rebuilt: the cluster-
    preserving scheme creates its variables from the clustered kernel, so a QAT model cannot be
    reloaded from its own config, only re-wrapped from the float model and given its weights.
    """
    quantization = tfmot().quantization.keras
    base = quantizable(model)
    for layer in base.layers:
        _check_quantizable(unwrap(layer))
    fix = "drop qat from this chain (post-training int8 export still applies) or replace the layer"
    try:
        with quantization.quantize_scope():
            return quantization.quantize_apply(quantization.quantize_annotate_model(base), _scheme(applied))
    except (AttributeError, TypeError, ValueError) as exc:  # tfmot failing inside its own model cloning
        raise PassNotApplicable(f"qat could not wrap '{model.name}' for fake quantization: {first_line(exc)}", fix) from None
    except RuntimeError as exc:
        match = _UNSUPPORTED.match(str(exc))
        if not match:
            raise
        if match["cls"] in AFFINE_LAYERS:  # one that is not a per-channel map on an image
            fix = ("move the input scaling out of the model and into `preprocess` (Rescaling(1/255) is preprocess = "
                   "\"scale:1/255\"), or drop qat from this chain (post-training int8 export still applies)")
        raise PassNotApplicable(
            f"qat cannot quantize layer '{match['name']}' ({match['cls']}): the int8 scheme has no rule for it", fix,
        ) from None


def _scheme(applied: tuple[str, ...]) -> Any:
    """Pick the quantize scheme that preserves what earlier passes achieved."""
    quantization = tfmot().quantization.keras
    if "cluster" in applied:
        return tfmot().experimental.combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity="prune" in applied
        )
    if "prune" in applied:
        return quantization.collab_opts.Default8BitPrunePreserveQuantizeScheme()
    return quantization.default_8bit.Default8BitQuantizeScheme()


def _check_quantizable(layer: Any) -> None:
    """Refuse upfront what tfmot cannot wrap: it leaves Lambda in float and cannot clone nested
    models or custom layers without a hand-written QuantizeConfig."""
    k = keras()
    custom = not type(layer).__module__.startswith(("tf_keras.", "keras."))
    if isinstance(layer, (k.layers.Lambda, k.Model)) or custom:
        raise PassNotApplicable(
            f"qat cannot quantize layer '{layer.name}' ({type(layer).__name__}): tfmot has no int8 rule for it",
            "drop qat from this chain (post-training int8 export still applies) or replace the layer",
        )
