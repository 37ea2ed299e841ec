"""Layers tfmot has no QAT rule for, made quantizable.

- Input scaling inside the model (Rescaling, Normalization), which Keras' own image tutorial,
  MobileNetV3 and EfficientNet carry, and constant arithmetic (`x + 3.0` in hard-swish, which the
  Keras 3 translation turns into Rescaling). Each is a per-channel affine map y = a·x + b, which
  is exactly a 1×1 depthwise convolution with kernel a and bias b: tfmot quantizes that layer,
  and TFLite runs it as one int8 DEPTHWISE_CONV_2D whose output range is the one QAT trained.
  (An output-only quantize config would also wrap the layer, but TFLite then splits it into MUL
  and ADD with an uncalibrated range in between, and the int8 file drifts from the QAT model it
  came from.) The stand-in is frozen so the fine-tune cannot change the model's input scaling.
- Multiply and Subtract of two tensors (squeeze-excite, hard-swish): weightless like Add, so they
  get Add's rule, a quantized output; TFLite has int8 MUL and SUB kernels.
- tf_keras arithmetic with a number (`x + 3.0`, as tf_keras' own MobileNetV3 writes hard-swish) is
  a TFOpLambda, which tfmot cannot clone: it becomes the Rescaling it is, then the rule above.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from toolkit._tf import keras, tfmot
from toolkit.keras3_layers import affine_of

AFFINE_LAYERS = ("Rescaling", "Normalization")
OUTPUT_QUANTIZED = ("Multiply", "Subtract")
_EXACT = 1e-5  # relative: the stand-in must compute what the layer computes, to float rounding


def quantizable(model: Any) -> Any:
    """A copy of `model` (same weights) where each layer above is replaced by its stand-in or
    annotated with its rule; layers these rules cannot express are left for tfmot to refuse."""
    k = keras()
    quantization = tfmot().quantization.keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_configs import (
        Default8BitOutputQuantizeConfig,
    )

    model = _arithmetic_as_rescaling(model)
    stand_ins = {layer.name: _depthwise_stand_in(layer) for layer in model.layers
                 if type(layer).__name__ in AFFINE_LAYERS}
    stand_ins = {name: layer for name, layer in stand_ins.items() if layer is not None}

    def clone(layer: Any) -> Any:
        if layer.name in stand_ins:
            return stand_ins[layer.name]
        copy = layer.__class__.from_config(layer.get_config())
        if type(layer).__name__ in OUTPUT_QUANTIZED:
            return quantization.quantize_annotate_layer(copy, Default8BitOutputQuantizeConfig())
        return copy

    replaced = k.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights and layer.name not in stand_ins:
            replaced.get_layer(layer.name).set_weights(layer.get_weights())
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


# TFOpLambda function → the Keras operation it computes (see keras3_layers.affine_of).
_OPERATIONS = {
    "__operators__.add": "Add", "math.add": "Add", "math.subtract": "Subtract", "math.multiply": "Multiply",
    "math.truediv": "TrueDivide", "math.divide": "Divide",
}


def _arithmetic_as_rescaling(model: Any) -> Any:
    """`model` with each TFOpLambda computing `x op number` rebuilt as a Rescaling (same name,
    same graph, same weights elsewhere); `model` itself when it has none."""
    config = model.get_config()
    if "input_layers" not in config:  # a Sequential has no TFOpLambda
        return model
    changed = False
    for entry in config["layers"]:
        operation = _OPERATIONS.get(entry["config"].get("function", "")) if entry["class_name"] == "TFOpLambda" else None
        nodes = entry.get("inbound_nodes") or []
        if operation is None or len(nodes) != 1:
            continue
        call = nodes[0][0] if isinstance(nodes[0][0], list) else nodes[0]  # TFOpLambda stores one call flat
        if len(call) != 4 or not isinstance(call[3], dict):
            continue
        source, node, index, kwargs = call
        number = kwargs.get("y")
        affine = affine_of(operation, float(number)) if isinstance(number, (int, float)) and not isinstance(number, bool) else None
        if affine is None:
            continue
        scale, offset = affine
        entry.update(class_name="Rescaling", config={"name": entry["config"]["name"], "scale": scale, "offset": offset,
                                                     "trainable": False, "dtype": entry["config"].get("dtype", "float32")})
        entry["inbound_nodes"] = [[[source, node, index, {}]]]
        changed = True
    if not changed:
        return model
    rebuilt = keras().Model.from_config(config)
    for layer in model.layers:
        if layer.weights:
            rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    return rebuilt
