"""The baseline zoo.

Zoo models are tf_keras functional models ending in a separate softmax layer, so the logits
(the layer before it) are available to distillation and every layer is one tfmot supports.
"""
from __future__ import annotations

from typing import Any, Callable

from toolkit._tf import keras
from toolkit.errors import EdgesmithError
from toolkit.task import CLASSIFICATION, REGRESSION
from toolkit.zoo_mobile import MOBILE_MODELS, build_mobile, check_input, head

ZOO_NAMES = ("mlp", "cnn", "dscnn", *MOBILE_MODELS)


def is_zoo(model: str) -> bool:
    """A zoo name, possibly with settings ('mobilenet_v2:alpha=0.35'), rather than a file."""
    return model.partition(":")[0] in ZOO_NAMES


def check_zoo_spec(model: str, input_shape: tuple[int, ...]) -> None:
    """Validate a zoo model's settings against the data before anything is written."""
    name, colon, _ = model.partition(":")
    if name in MOBILE_MODELS:
        check_input(model, input_shape)
    elif colon:
        raise EdgesmithError(f"model '{model}': {name} takes no settings", f"write --model {name}")
    elif name == "cnn" and len(input_shape) in (2, 3) and min(input_shape[:2]) < 4:
        raise EdgesmithError(f"cnn needs images of at least 4x4 pixels (it pools twice by 2), the data's samples are "
                             f"{tuple(input_shape)}", "use --model dscnn or mlp for images this small")


def build(name: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0,
          task: str = CLASSIFICATION) -> Any:
    """Build a zoo model; `width` scales every layer's units/filters (for smaller students). A
    regression model ends in the linear layer, one unit per target (`num_classes`)."""
    if name.partition(":")[0] in MOBILE_MODELS:
        return build_mobile(name, input_shape, num_classes, width, task)
    builders: dict[str, Callable[..., Any]] = {"mlp": _mlp, "cnn": _cnn, "dscnn": _dscnn}
    if name not in builders:
        raise EdgesmithError(f"unknown model '{name}'", f"choose {', '.join(ZOO_NAMES)} or pass a model file")
    layers = keras().layers
    inputs = layers.Input(shape=input_shape, name="input")
    logits = builders[name](layers, inputs, num_classes, lambda units: max(2, int(round(units * width))))
    return keras().Model(inputs, head(layers, logits, task), name=name if width == 1.0 else f"{name}_w{width:g}")



def _mlp(layers, inputs, num_classes, scaled):
    """The classic dense net (784→64→10 on MNIST-sized input)."""
    x = layers.Flatten()(inputs)
    x = layers.Dense(scaled(64), activation="relu")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _cnn(layers, inputs, num_classes, scaled):
    """Two conv blocks (32, 64 filters) and a 128-unit head: the classic small-image convnet."""
    x = _as_image(layers, inputs)
    for filters in (32, 64):
        x = layers.Conv2D(scaled(filters), 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(scaled(128), activation="relu")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _dscnn(layers, inputs, num_classes, scaled):
    """Depthwise-separable blocks (MobileNet style): few MACs, mobile-friendly ops."""
    x = _as_image(layers, inputs)
    x = layers.Conv2D(scaled(16), 3, padding="same", activation="relu")(x)
    for filters, stride in ((32, 2), (64, 2)):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu")(x)
        x = layers.Conv2D(scaled(filters), 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(num_classes, name="logits")(x)


def _as_image(layers, inputs):
    """Convolutions need (h, w, c): add a channel axis to (h, w) input, refuse flat input."""
    if len(inputs.shape) == 4:
        return inputs
    if len(inputs.shape) == 3:
        return layers.Reshape((*inputs.shape[1:], 1))(inputs)
    raise EdgesmithError(
        f"convolutional models need image input, this dataset has samples of shape {tuple(inputs.shape[1:])}",
        "use --model mlp for flat feature vectors",
    )


def compile_for_training(model: Any, learning_rate: float, task: str = CLASSIFICATION) -> None:
    """Adam + sparse categorical cross-entropy on the softmax output, or mean squared error
    (with MAE shown) for a regression."""
    k = keras()
    if task == REGRESSION:
        loss, metric = k.losses.MeanSquaredError(), k.metrics.MeanAbsoluteError(name="mae")
    else:
        loss, metric = k.losses.SparseCategoricalCrossentropy(), "accuracy"
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss, metrics=[metric])


def count_params(model: Any) -> int:
    """Parameters a deployed model stores (trainable and not)."""
    return int(sum(int(w.shape.num_elements()) for w in model.weights))
