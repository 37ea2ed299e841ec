"""The student for distillation: the teacher's own graph at a smaller width, sized by width or by
a fraction of the teacher's parameters.

A user's model has no zoo recipe to shrink, and an unrelated zoo student can end up larger than
the teacher (an MLP on 96×96×3 images). So the functional graph is cloned with every conv's
filters and every Dense's units scaled; layers whose channels follow their input (depthwise,
batch norm, pooling, Add …) follow by themselves. Tensors joined by Add/Multiply keep equal
channels because the scaled count depends only on the original count, and a group joined with
the input or the classifier's output keeps its original count. New weights: the pass trains it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from toolkit._tf import keras
from toolkit.errors import EdgesmithError, first_line
from toolkit.models import build, count_params, is_zoo
from toolkit.task import CLASSIFICATION
from toolkit.zoo_mobile import spec_from_label

SCALED = {"Conv1D": "filters", "Conv2D": "filters", "Conv3D": "filters", "Conv2DTranspose": "filters",
          "SeparableConv1D": "filters", "SeparableConv2D": "filters", "Dense": "units"}
FOLLOWERS = {  # output channels follow the input, nothing in the config counts them
    "DepthwiseConv2D", "DepthwiseConv1D", "BatchNormalization", "LayerNormalization", "Activation", "ReLU",
    "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Flatten", "ZeroPadding1D",
    "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
}
JOINS = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}  # inputs need equal channels
TOLERANCE = 0.15  # a params target is met within ±15%
_CLOSE_ENOUGH = 0.05  # the search stops early this close to the target
_PROBES = 12
_SMALLEST_WIDTH = 1 / 64


class Unscalable(EdgesmithError):
    """The graph has a layer whose channel count cannot be scaled with the rest."""


@dataclass(frozen=True)
class Student:
    """`how`: one line for the log and run.json saying which architecture and why."""

    model: Any
    width: float
    how: str


def scaled_count(count: int, width: float) -> int:
    """Deterministic in (count, width), so tensors of equal channels stay equal. Multiples of 8
    stay multiples of 8 (SIMD lanes) from 32 channels on, where a step of 8 is at most a quarter;
    smaller counts round to the nearest whole channel (at least 1) so small models can be sized."""
    exact = count * width
    if count % 8 == 0 and exact >= 32:
        return int(exact / 8 + 0.5) * 8
    return max(1, int(exact + 0.5))


def scaled_graph(teacher: Any, width: float) -> Any:
    """The teacher's graph with conv filters and Dense units scaled by `width`, new weights."""
    plan = _plan(teacher)

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in plan:
            config[plan[layer.name]] = scaled_count(config[plan[layer.name]], width)
        return type(layer).from_config(config)

    try:
        clone_model = keras().models.clone_model(teacher, clone_function=clone)
    except (ValueError, TypeError) as exc:
        raise Unscalable(f"the graph of {teacher.name} cannot be rebuilt at width {width:g}: "
                         f"{first_line(exc)}") from None
    return keras().Model(clone_model.inputs, clone_model.outputs, name=f"{teacher.name}_w{width:g}")


def choose_student(teacher: Any, input_shape: tuple[int, ...], num_classes: int, name: str | None,
                   width: float, fraction: float | None, task: str = CLASSIFICATION) -> Student:
    """The named zoo student, else the teacher's zoo architecture, else its own graph scaled, else
    the zoo model of the same family; at `width`, or the width that meets `fraction` of the
    teacher's parameters."""
    zoo = name or spec_from_label(teacher.name)
    if name or is_zoo(zoo):
        made = _sized(lambda w: build(zoo, tuple(input_shape), num_classes, width=w, task=task), zoo, teacher, width, fraction)
        return Student(made[0], made[1], f"{zoo} (zoo) at width {made[1]:.3g}")
    try:
        model, chosen = _sized(lambda w: scaled_graph(teacher, w), teacher.name, teacher, width, fraction)
        return Student(model, chosen, f"{teacher.name}'s own graph at width {chosen:.3g}")
    except Unscalable as exc:
        reason = exc
    for family in _families(teacher):
        try:
            model, chosen = _sized(lambda w: build(family, tuple(input_shape), num_classes, width=w, task=task), family, teacher,
                                   width, fraction)
        except EdgesmithError:
            continue
        if count_params(model) < count_params(teacher):
            how = f"{family} (zoo, same family) at width {chosen:.3g}, because {reason.problem}"
            return Student(model, chosen, how)
    raise EdgesmithError(f"no student for {teacher.name}: {reason.problem}, and no zoo model of its family fits",
                         "name one, e.g. distill:student=cnn,params=0.25, or replace that layer with a standard one")


def _sized(make: Callable[[float], Any], label: str, teacher: Any, width: float, fraction: float | None
           ) -> tuple[Any, float]:
    """At `width`, or the width whose parameter count is `fraction` of the teacher's within
    TOLERANCE: params ~ width^e, so each probe steps by (target/params)^(1/e) with e measured from
    the last two probes, falling back to bisection on a log scale; no training needed."""
    if fraction is None:
        return make(width), width
    target = fraction * count_params(teacher)
    low, high, width, exponent = _SMALLEST_WIDTH, 1.0, math.sqrt(fraction), 2.0  # conv params grow ~ width²
    best: tuple[float, Any, float] | None = None
    previous: tuple[float, int] | None = None
    for _ in range(_PROBES):
        model = make(width)
        count = count_params(model)
        miss = count / target - 1
        if best is None or abs(miss) < abs(best[0]):
            best = (miss, model, width)
        if abs(miss) <= _CLOSE_ENOUGH:
            break
        low, high = (low, width) if miss > 0 else (width, high)
        if previous and previous[0] != width and previous[1] != count:
            exponent = min(3.0, max(0.5, math.log(count / previous[1]) / math.log(width / previous[0])))
        previous = (width, count)
        guess = width * (target / count) ** (1 / exponent)
        width = guess if low < guess < high else math.sqrt(low * high)
    miss, model, width = best
    if abs(miss) > TOLERANCE:
        raise EdgesmithError(
            f"no width of {label} gives {fraction:g} of the teacher's parameters: the closest, "
            f"width {width:.3g}, has {count_params(model):,} ({count_params(model) / count_params(teacher):.2f}×)",
            "ask for a larger fraction, or give width=… instead",
        )
    return model, width


def _plan(teacher: Any) -> dict[str, str]:
    """Layer name → config key to scale, for every conv/Dense not tied to the input's or the
    output's channel count. Raises Unscalable naming a layer it has no rule for."""
    config = teacher.get_config()
    entries = {entry["name"]: entry for entry in config["layers"]}
    groups = _Groups()
    source: dict[str, str] = {}  # layer → the group its output channels belong to
    touched: set[str] = set()  # layers downstream of a scaled layer
    for layer in teacher.layers:
        kind, parents = type(layer).__name__, _parents(entries[layer.name], layer.name)
        inputs = [source[parent] for parent in parents]
        if any(parent in touched for parent in parents) or kind in SCALED:
            touched.add(layer.name)
        if kind in SCALED and (kind not in ("Conv1D", "Conv2D", "Conv3D") or layer.groups == 1):
            source[layer.name] = groups.new(layer.name)
        elif kind in FOLLOWERS and len(inputs) == 1:
            source[layer.name] = inputs[0]
        elif kind in JOINS:
            source[layer.name] = groups.join(inputs, layer.name)
        elif kind == "Concatenate":  # channels add up: fine unless the sum must equal another count
            source[layer.name] = groups.new(layer.name, derived=True)
        elif layer.name in touched:
            raise Unscalable(f"layer '{layer.name}' ({kind}) has no rule for scaling its channels")
        else:  # the input, or preprocessing before any scaled layer: its channels stay
            source[layer.name] = groups.new(layer.name, pinned=True)
    for name in _heads(teacher, entries, [name for name, *_ in config["output_layers"]]):
        groups.pin(source[name])
    return {layer.name: SCALED[type(layer).__name__] for layer in teacher.layers
            if type(layer).__name__ in SCALED and not groups.pinned(source[layer.name])}


def _heads(teacher: Any, entries: dict[str, dict], outputs: list[str]) -> set[str]:
    """Layers whose channels reach a model output without passing a conv/Dense: the classifier."""
    heads, stack = set(), list(outputs)
    while stack:
        name = stack.pop()
        if name in heads:
            continue
        heads.add(name)
        if type(teacher.get_layer(name)).__name__ not in SCALED:
            stack.extend(_parents(entries[name], name))
    return heads


def _parents(entry: dict[str, Any], name: str) -> list[str]:
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise Unscalable(f"layer '{name}' is shared by {len(nodes)} calls")
    return [item[0] for item in (nodes[0] if nodes else []) if isinstance(item, list) and isinstance(item[0], str)]


class _Groups:
    """Union-find over channel groups: joined tensors share one; a pinned group keeps its count."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.fixed: set[str] = set()
        self.derived: set[str] = set()

    def new(self, name: str, pinned: bool = False, derived: bool = False) -> str:
        self.parent[name] = name
        if pinned:
            self.fixed.add(name)
        if derived:
            self.derived.add(name)
        return name

    def root(self, name: str) -> str:
        while self.parent[name] != name:
            name = self.parent[name]
        return name

    def join(self, names: list[str], layer: str) -> str:
        roots = list(dict.fromkeys(self.root(name) for name in names))
        if len(roots) > 1 and self.derived & set(roots):
            raise Unscalable(f"layer '{layer}' joins a concatenation with a tensor of its own channel count")
        for other in roots[1:]:
            self.parent[other] = roots[0]
            if other in self.fixed:
                self.fixed.add(roots[0])
        return roots[0]

    def pin(self, name: str) -> None:
        self.fixed.add(self.root(name))

    def pinned(self, name: str) -> bool:
        return self.root(name) in self.fixed


def _families(teacher: Any) -> list[str]:
    """Zoo models most like the teacher, most alike first: depthwise → MobileNet, residual → ResNet."""
    kinds = {type(layer).__name__ for layer in teacher.layers}
    convolutional = bool(kinds & {"Conv2D", "DepthwiseConv2D", "SeparableConv2D"})
    families = (["mobilenet_v2", "dscnn"] if kinds & {"DepthwiseConv2D", "SeparableConv2D"} else [])
    families += (["resnet8"] if convolutional and "Add" in kinds else []) + (["cnn"] if convolutional else ["mlp"])
    return families
