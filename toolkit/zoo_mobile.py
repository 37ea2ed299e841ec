"""Mobile-size zoo models, trained from scratch (no pretrained weights can be downloaded).

`mobilenet_v2` and `mobilenet_v3_small` come from tf_keras.applications (`weights=None`);
`minimalistic` MobileNetV3 drops hard-swish and squeeze-excite, which many accelerators and
tfmot's pruning lack. `resnet8` is the MLPerf Tiny image-classification reference. Settings
use the pass syntax: `mobilenet_v2:alpha=0.35`, `mobilenet_v3_small:minimalistic=true`.
The input size is the dataset's (for image folders: `image_size`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from toolkit._tf import keras
from toolkit.errors import EdgesmithError
from toolkit.task import CLASSIFICATION, REGRESSION

MIN_SIDE = 32  # the MobileNets downsample 32×


@dataclass(frozen=True)
class MobileNetParams:
    """`alpha`: width multiplier of every layer."""

    alpha: float = 1.0
    minimalistic: bool = False

    POSITIONAL: ClassVar[tuple[str, ...]] = ("alpha",)
    EXAMPLE: ClassVar[str] = "mobilenet_v2:alpha=0.35"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 4.0:
            raise EdgesmithError(f"alpha {self.alpha:g} is out of range", "use a width multiplier like alpha=0.35")


@dataclass(frozen=True)
class ResNetParams:
    POSITIONAL: ClassVar[tuple[str, ...]] = ()
    EXAMPLE: ClassVar[str] = "resnet8"


MOBILE_MODELS: dict[str, type] = {"mobilenet_v2": MobileNetParams, "mobilenet_v3_small": MobileNetParams, "resnet8": ResNetParams}


def parse_model(spec: str) -> tuple[str, Any]:
    """'mobilenet_v2:alpha=0.35' → ('mobilenet_v2', MobileNetParams(alpha=0.35)), validated."""
    from toolkit.passes.steps import parse_settings

    name, _, args = spec.partition(":")
    if name not in MOBILE_MODELS:
        raise EdgesmithError(f"unknown model '{name}'", f"choose one of {', '.join(MOBILE_MODELS)}")
    try:
        params = parse_settings(MOBILE_MODELS[name], args, spec)
    except EdgesmithError as exc:
        raise EdgesmithError(exc.problem.replace(f"step '{spec}'", f"model '{spec}'"), exc.fix) from None
    if name == "mobilenet_v2" and params.minimalistic:
        raise EdgesmithError(f"model '{spec}': minimalistic applies to mobilenet_v3_small", "drop minimalistic=true")
    return name, params


def check_input(spec: str, input_shape: tuple[int, ...]) -> tuple[str, Any]:
    """Parse the spec and check the samples suit it (images; MobileNets need ≥ 32×32)."""
    name, params = parse_model(spec)
    if len(input_shape) not in (2, 3):
        raise EdgesmithError(f"{name} needs image input, this dataset has samples of shape {input_shape}", "use --model mlp")
    if name != "resnet8" and min(input_shape[:2]) < MIN_SIDE:
        raise EdgesmithError(
            f"{name} needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, this dataset's are "
            f"{input_shape[1]}x{input_shape[0]}",
            'use resnet8, or an image folder with image_size = "96x96"',
        )
    return name, params


# keras.applications' MobileNets keep 0.999 of their BatchNorm statistics per step, made for
# ImageNet's long epochs. Trained from scratch on a few thousand images, the inference-mode
# statistics lag weights that still change fast, and validation sits at chance while training
# accuracy climbs (Fashion-MNIST as 96×96 PNGs, MobileNetV2-0.35: 88% train, 10% validation
# after 7 epochs at 0.999; 1500 images, 4 epochs: 10% at 0.99, 66% at 0.9 against 67% in train
# mode). 0.9 is PyTorch's default (its momentum 0.1).
BATCHNORM_MOMENTUM = 0.9


def build_mobile(spec: str, input_shape: tuple[int, ...], num_classes: int, width: float = 1.0,
                 task: str = CLASSIFICATION) -> Any:
    """The zoo model with a separate softmax layer (logits stay available to distillation), or a
    linear output for a regression;
    `width` scales alpha (MobileNets) or the filters (ResNet-8) for smaller students."""
    name, params = check_input(spec, input_shape)
    layers = keras().layers
    inputs = layers.Input(shape=input_shape, name="input")
    x = inputs if len(input_shape) == 3 else layers.Reshape((*input_shape, 1))(inputs)
    if name == "resnet8":
        features = _resnet8(layers, x, width)
    else:
        application = {"mobilenet_v2": _mobilenet_v2, "mobilenet_v3_small": _mobilenet_v3_small}[name]
        features = application(keras().applications, x, params, params.alpha * width)
    outputs = head(layers, layers.Dense(num_classes, name="logits")(features), task)
    label = model_label(spec)
    model = keras().Model(inputs, outputs, name=label if width == 1.0 else f"{label}_w{width:g}")
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    return model


def head(layers: Any, logits: Any, task: str) -> Any:
    """A classifier's separate softmax layer; a regression's outputs are the last Dense's."""
    return logits if task == REGRESSION else layers.Activation("softmax", name="probabilities")(logits)


def model_label(spec: str) -> str:
    """The model's name for a spec: TensorFlow makes it a name scope, which takes no ':' or '='
    ('mobilenet_v2:alpha=0.35' → 'mobilenet_v2__alpha-0.35'); `spec_from_label` reads it back
    (a saved model's name is how distillation finds the teacher's zoo architecture)."""
    name, _, settings = spec.partition(":")
    return "__".join([name, *(item.replace("=", "-", 1) for item in settings.split(",") if item)])


def spec_from_label(label: str) -> str:
    """The spec `model_label` was made from (a plain name is its own spec)."""
    name, *settings = label.split("__")
    return f"{name}:{','.join(item.replace('-', '=', 1) for item in settings)}" if settings else name


def _mobilenet_v2(applications: Any, x: Any, params: MobileNetParams, alpha: float) -> Any:
    base = applications.MobileNetV2(input_tensor=x, alpha=alpha, include_top=False, weights=None, pooling="avg")
    return base.output  # the tensor, not the model: one flat graph, which tfmot can wrap


def _mobilenet_v3_small(applications: Any, x: Any, params: MobileNetParams, alpha: float) -> Any:
    base = applications.MobileNetV3Small(
        input_tensor=x, alpha=alpha, minimalistic=params.minimalistic, include_top=False, weights=None,
        pooling="avg", include_preprocessing=False,  # edgesmith's preprocess setting does this
    )
    return base.output


def _resnet8(layers: Any, x: Any, width: float) -> Any:
    """MLPerf Tiny's ResNet-8 (resnet_v1_eembc): a 16-filter stem and three residual stacks of
    16, 32, 64 filters (stride 2 from the second on), L2 1e-4, He-normal initialization."""
    regularizer = keras().regularizers.l2(1e-4)

    def conv(filters: int, kernel: int, strides: int = 1) -> Any:
        return layers.Conv2D(max(2, round(filters * width)), kernel, strides=strides, padding="same",
                             kernel_initializer="he_normal", kernel_regularizer=regularizer)

    x = layers.Activation("relu")(layers.BatchNormalization()(conv(16, 3)(x)))
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        y = layers.Activation("relu")(layers.BatchNormalization()(conv(filters, 3, strides)(x)))
        y = layers.BatchNormalization()(conv(filters, 3)(y))
        shortcut = x if strides == 1 else conv(filters, 1, strides)(x)
        x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    return layers.GlobalAveragePooling2D()(x)
