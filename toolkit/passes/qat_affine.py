"""Input scaling inside the model (Rescaling, Normalization) made quantizable for QAT.

tfmot has no QAT rule for these layers, and Keras' own image tutorial, MobileNetV3 and
EfficientNet all carry one. Each is a per-channel affine map y = a·x + b, which is exactly a
1×1 depthwise convolution with kernel a and bias b: tfmot quantizes that layer, and TFLite
runs it as one int8 DEPTHWISE_CONV_2D whose output range is the one QAT trained. (Annotating
the layer with an output-only quantize config would also wrap it, but TFLite then splits it
into MUL and ADD with an uncalibrated range in between, and the int8 file drifts from the
QAT model it came from.) The depthwise stand-in is frozen so the fine-tune cannot change the
model's input scaling.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from toolkit._tf import keras

AFFINE_LAYERS = ("Rescaling", "Normalization")
_EXACT = 1e-5  # relative: the stand-in must compute what the layer computes, to float rounding


def affine_as_depthwise(model: Any) -> Any:
    """`model` with each per-channel affine input layer replaced by a frozen 1×1 depthwise
    convolution computing the same values; `model` itself when it has none to replace."""
    k = keras()
    stand_ins = {layer.name: _depthwise_stand_in(layer) for layer in model.layers
                 if type(layer).__name__ in AFFINE_LAYERS}
    stand_ins = {name: layer for name, layer in stand_ins.items() if layer is not None}
    if not stand_ins:
        return model

    def clone(layer: Any) -> Any:
        return stand_ins.get(layer.name) or layer.__class__.from_config(layer.get_config())

    replaced = k.models.clone_model(model, clone_function=clone)
    for layer in replaced.layers:
        if layer.name not in stand_ins:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return replaced


def _depthwise_stand_in(layer: Any) -> Any | None:
    """A frozen DepthwiseConv2D equal to `layer`, or None where the layer is not a per-channel
    affine map on an image (NHWC with known sizes): such a layer keeps tfmot's refusal."""
    shape = tuple(layer.input_shape) if isinstance(layer.input_shape, tuple) else ()
    if len(shape) != 4 or None in shape[1:]:
        return None
    offset_map = np.asarray(layer(np.zeros((1, *shape[1:]), np.float32)))
    scale_map = np.asarray(layer(np.ones((1, *shape[1:]), np.float32))) - offset_map
    offset, scale = offset_map[0, 0, 0], scale_map[0, 0, 0]
    probe = np.random.default_rng(0).uniform(-255.0, 255.0, (1, *shape[1:])).astype(np.float32)
    expected = np.asarray(layer(probe))
    if not np.allclose(probe * scale + offset, expected, rtol=_EXACT, atol=_EXACT * float(np.abs(expected).max() + 1e-12)):
        return None
    k = keras()
    return k.layers.DepthwiseConv2D(
        1, name=layer.name, trainable=False,
        depthwise_initializer=k.initializers.Constant(scale.reshape(1, 1, -1, 1).tolist()),
        bias_initializer=k.initializers.Constant(offset.tolist()),
    )
