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
from toolkit.passes.context import PassContext, PassNotApplicable, clone_with_weights, fine_tune, output_is_softmax

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
    quantization = tfmot().quantization.keras
    base = clone_with_weights(model)
    for layer in base.layers:
        _check_quantizable(layer)
    from_logits = not output_is_softmax(base)
    scheme = _scheme(ctx.applied)
    try:
        with quantization.quantize_scope():
            wrapped = quantization.quantize_apply(quantization.quantize_annotate_model(base), scheme)
    except RuntimeError as exc:
        match = _UNSUPPORTED.match(str(exc))
        if not match:
            raise
        raise PassNotApplicable(
            f"qat cannot quantize layer '{match['name']}' ({match['cls']}): the int8 scheme has no rule for it",
            "drop qat from this chain (post-training int8 export still applies) or replace the layer",
        ) from None
    ctx.log(f"  qat scheme: {type(scheme).__name__}")
    fine_tune(wrapped, ctx, from_logits=from_logits)
    return wrapped


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
    """tfmot leaves Lambda and nested models in float (or fails cloning them): refuse upfront."""
    k = keras()
    if isinstance(layer, k.layers.Lambda) or isinstance(layer, k.Model):
        raise PassNotApplicable(
            f"qat cannot quantize layer '{layer.name}' ({type(layer).__name__}): tfmot cannot see inside it",
            "drop qat from this chain (post-training int8 export still applies) or replace the layer",
        )


def custom_objects() -> dict[str, Any]:
    """Classes a saved QAT model refers to, beyond `quantize_scope` (the collaborative quantizers)."""
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        cluster_preserve_quantize_registry as cqat,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as pqat,
    )

    classes = [
        pqat.PrunePreserveDefaultWeightsQuantizer,
        cqat.ClusterPreserveDefaultWeightsQuantizer,
        cqat.ClusterPreserveDefault8BitWeightsQuantizer,
        cqat.ClusterPreserveDefault8BitConvWeightsQuantizer,
    ]
    return {cls.__name__: cls for cls in classes}
