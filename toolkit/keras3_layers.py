"""One Keras 3 layer config → the equivalent tf_keras layer (or small subgraph).

Most configs carry over once the dtype policy is reduced to its name and Keras-3-only options
that are off are dropped. Activations tf_keras lacks (relu6, hard_sigmoid, hard_swish,
leaky_relu) become the same layers tf_keras' own MobileNetV3 uses, so tfmot and the TFLite
converter see familiar graphs. Layers that only act while training (data augmentation, noise)
become identities. Anything else is refused by name rather than guessed.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from toolkit._tf import keras
from toolkit.errors import EdgesmithError

LAYERS = (
    "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense",
    "BatchNormalization", "LayerNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Reshape", "Flatten", "Permute",
    "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Dropout", "SpatialDropout2D", "Rescaling", "Normalization",
    "SeparableConv1D", "Conv1DTranspose", "ZeroPadding1D", "Cropping1D", "UpSampling1D", "SpatialDropout1D",
    "GroupNormalization", "UnitNormalization", "Resizing", "CenterCrop", "RepeatVector",
)
# Identities at inference: augmentation and regularizing noise. They become a Dropout(0), which
# tfmot and the converters know, so fine-tuning runs without the augmentation (the user's training
# had it); a wrong guess would still be caught by the numeric check of the whole translation.
INFERENCE_IDENTITIES = (
    "Identity", "ActivityRegularization", "GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout3D",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
    "RandomHue", "RandomSaturation", "RandomColorJitter", "RandomColorDegeneration", "RandomSharpness",
    "RandomGrayscale", "RandomShear", "RandomPerspective", "RandomErasing", "RandomGaussianBlur", "RandomInvert",
    "RandomPosterization", "RandomElasticTransform", "AugMix", "CutMix", "MixUp", "RandAugment", "Solarization",
    "AutoContrast", "Equalization",
)
# Keras 3 arithmetic on tensors (`x + 3.0` in MobileNetV3) is stored as an operation, not a layer.
OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda a, b: a + b, "Subtract": lambda a, b: a - b,
    "Multiply": lambda a, b: a * b, "Divide": lambda a, b: a / b, "TrueDivide": lambda a, b: a / b,
}
MERGE_LAYERS = {"Add": "Add", "Subtract": "Subtract", "Multiply": "Multiply"}
NATIVE_ACTIVATIONS = {
    "linear", "relu", "sigmoid", "tanh", "softmax", "softplus", "softsign", "elu", "selu", "exponential",
    "swish", "gelu", "mish",
}
BASE_KWARGS = {"name", "trainable", "dtype", "dynamic", "input_shape", "batch_input_shape", "batch_size", "weights"}
RENAMED_KEYS = {"LeakyReLU": {"negative_slope": "alpha"}}
LAYER_HINT = "rebuild the model from the standard layers listed in the README, or load it in tf_keras yourself"


def make_layer(class_name: str, config: dict[str, Any]) -> tuple[Any, Callable[[Any], Any] | None]:
    """The tf_keras layer for a Keras 3 layer config, plus the activation to apply after it when
    tf_keras has no equivalent of the layer's own `activation`."""
    name = config.get("name", "?")
    if class_name in INFERENCE_IDENTITIES:
        return keras().layers.Dropout(0.0, name=name), None
    if class_name not in LAYERS:
        raise EdgesmithError(f"layer '{name}' ({class_name}) has no tf_keras translation", LAYER_HINT)
    cls = getattr(keras().layers, class_name)
    config = {RENAMED_KEYS.get(class_name, {}).get(key, key): value for key, value in config.items()}
    config["dtype"] = _dtype_name(config.get("dtype"), name)
    after = None
    if "activation" in config:
        activation = activation_name(config["activation"], name)
        if class_name == "Activation" and activation not in NATIVE_ACTIVATIONS:
            return None, activation_function(activation, name)
        if activation not in NATIVE_ACTIVATIONS:
            after, activation = activation_function(activation, name), "linear"
        config["activation"] = activation
    accepted = _accepted_options(cls)
    defaults = _keras3_defaults(class_name)
    cleaned = {}
    for key, value in config.items():
        if key.endswith("_initializer"):
            continue  # weights are copied from the Keras 3 model: initializers never run on them
        if key.endswith(("_regularizer", "_constraint")) and value is not None:
            value = _regularizer_or_constraint(key, value, name)
        if key not in accepted:
            if value in (None, False, 0, [], {}, "linear", "channels_last") or (key in defaults and defaults[key] == value):
                continue  # a Keras-3-only option that is off or at its default
            raise EdgesmithError(f"layer '{name}' ({class_name}) sets {key}={value!r}, which tf_keras has no option for", LAYER_HINT)
        cleaned[key] = value
    return cls.from_config(cleaned), after


def _accepted_options(cls: type) -> set[str]:
    """Constructor options of the class and its bases (tf_keras forwards many via **kwargs)."""
    options = set(BASE_KWARGS)
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            options |= set(inspect.signature(klass.__init__).parameters)
    return options - {"self", "kwargs", "args"}


def _keras3_defaults(class_name: str) -> dict[str, Any]:
    """The Keras 3 constructor's default for each option of the layer class."""
    import keras as keras3

    cls = getattr(keras3.layers, class_name, None)
    if cls is None:
        return {}
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {item.name: item.default for item in parameters if item.default is not inspect.Parameter.empty}


def activation_name(value: Any, layer: str) -> str:
    """Activations are stored as names, or as a serialized builtin function."""
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        value = value["config"]
    if not isinstance(value, str):
        raise EdgesmithError(f"layer '{layer}' uses a custom activation {value!r}", LAYER_HINT)
    return {"silu": "swish"}.get(value, value)


def activation_function(activation: str, layer: str) -> Callable[[Any], Any]:
    """A Keras 3 activation tf_keras lacks, as tf_keras layers named after `layer` (tf_keras'
    hard_sigmoid is a different function, 0.2·x + 0.5, so names alone cannot be mapped)."""
    layers = keras().layers

    def hard_sigmoid(x: Any) -> Any:
        shifted = layers.Rescaling(1.0, offset=3.0, name=f"{layer}_plus3")(x)
        return layers.Rescaling(1.0 / 6.0, name=f"{layer}_div6")(layers.ReLU(6.0, name=f"{layer}_relu6")(shifted))

    functions: dict[str, Callable[[Any], Any]] = {
        "relu6": lambda x: layers.ReLU(6.0, name=f"{layer}_relu6")(x),
        "hard_sigmoid": hard_sigmoid,
        "hard_silu": lambda x: layers.Multiply(name=f"{layer}_hard_swish")([x, hard_sigmoid(x)]),
        "hard_swish": lambda x: layers.Multiply(name=f"{layer}_hard_swish")([x, hard_sigmoid(x)]),
        "leaky_relu": lambda x: layers.LeakyReLU(alpha=0.2, name=f"{layer}_leaky_relu")(x),
    }
    if activation in NATIVE_ACTIVATIONS:
        return lambda x: layers.Activation(activation, name=f"{layer}_{activation}")(x)
    if activation not in functions:
        raise EdgesmithError(f"layer '{layer}' uses the activation '{activation}', which has no tf_keras translation", LAYER_HINT)
    return functions[activation]


def _dtype_name(dtype: Any, layer: str) -> str | None:
    """Keras 3 stores a DTypePolicy object; tf_keras takes the policy's name."""
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if dtype is not None and not isinstance(dtype, str):
        raise EdgesmithError(f"layer '{layer}' has an unreadable dtype policy {dtype!r}", LAYER_HINT)
    if dtype and not dtype.startswith(("float", "mixed_", "bfloat")):
        raise EdgesmithError(f"layer '{layer}' uses the dtype policy '{dtype}' (a quantized Keras 3 layer)", "save the float model")
    return dtype


def _regularizer_or_constraint(key: str, value: Any, layer: str) -> Any:
    """L1/L2 regularizers and the standard constraints shape fine-tuning, so they are kept."""
    k = keras()
    module = k.regularizers if key.endswith("_regularizer") else k.constraints
    if not isinstance(value, dict) or "class_name" not in value:
        raise EdgesmithError(f"layer '{layer}' has an unreadable {key} {value!r}", LAYER_HINT)
    try:
        return module.get({"class_name": value["class_name"], "config": value.get("config") or {}})
    except (ValueError, TypeError) as exc:
        raise EdgesmithError(f"layer '{layer}' uses the {key} {value['class_name']} ({exc})", LAYER_HINT) from None


def arithmetic(operation: str, a: Any, b: Any, name: str) -> Any:
    """A Keras 3 arithmetic operation as tf_keras layers where it can be one, so tfmot can wrap it
    (it cannot clone the TFOpLambda that Python arithmetic on tf_keras tensors makes): a tensor
    scaled or shifted by a number is a Rescaling (the TFLite converter folds its ×1 or +0 away and
    still fuses hard-swish), two tensors an Add/Subtract/Multiply. Anything else stays arithmetic."""
    layers = keras().layers
    a_number, b_number = isinstance(a, (int, float)), isinstance(b, (int, float))
    if not a_number and not b_number and operation in MERGE_LAYERS:
        return getattr(layers, MERGE_LAYERS[operation])(name=name)([a, b])
    if a_number == b_number:
        return OPERATIONS[operation](a, b)
    tensor, number = (b, float(a)) if a_number else (a, float(b))
    scale_offset = affine_of(operation, number, number_first=a_number)
    if scale_offset is None:
        return OPERATIONS[operation](a, b)
    return layers.Rescaling(scale_offset[0], offset=scale_offset[1], name=name)(tensor)


def affine_of(operation: str, number: float, number_first: bool = False) -> tuple[float, float] | None:
    """(scale, offset) of the Rescaling that computes `x operation number` (`number operation x`
    when `number_first`), or None when no Rescaling does (number / x, division by zero)."""
    if operation in ("Divide", "TrueDivide"):
        return None if number_first or number == 0.0 else (1.0 / number, 0.0)
    return {
        "Add": (1.0, number),
        "Subtract": (-1.0, number) if number_first else (1.0, -number),
        "Multiply": (number, 0.0),
    }.get(operation)
