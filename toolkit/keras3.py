"""Keras 3 models → equivalent tf_keras models.

`pip install tensorflow` has given users Keras 3 since TF 2.16, but tfmot (pruning, clustering,
QAT) only accepts Keras 2 (tf_keras). So a Keras 3 model is rebuilt as a tf_keras functional
graph, layer by layer from each layer's config (keras3_layers.py), its weights are copied, and
the translation is accepted only when both models compute the same outputs on a data sample.
"""
from __future__ import annotations

import json
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from toolkit._tf import keras
from toolkit.errors import EdgesmithError, first_line
from toolkit.keras3_layers import INFERENCE_IDENTITIES, OPERATIONS, activation_name, arithmetic, make_layer

# Max |difference| of the outputs, relative to max(1, max |output|). Float rounding of two kernel
# implementations adds up over tens of layers: 1.7e-5 on a MobileNetV2 with preprocess_input
# inside; a wrong translation differs by orders of magnitude more.
TOLERANCE = 1e-4
LAYER_TOLERANCE = 1e-4  # the same for every inner layer, which locates a wrong translation
VERIFY_SAMPLES = 64
LAYER_SAMPLES = 2  # every layer's output is held at once: keep the batch small
NESTED_MODELS = ("Functional", "Sequential", "Model")
PTQ_ONLY = "the compression passes need a tf_keras model, so only the full model's post-training precisions run"
# Keras 3 models kept as they are, with why they could not be translated.
_UNTRANSLATED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def is_keras3_file(path: Path) -> bool:
    """A .keras zip or .h5 file whose metadata says Keras 3 wrote it."""
    path = Path(path)
    try:
        if path.suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                version = json.loads(archive.read("metadata.json")).get("keras_version", "")
        elif path.suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as handle:
                version = handle.attrs.get("keras_version", "")
        else:
            return False
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False  # unreadable: the tf_keras loader reports it as corrupt
    version = version.decode() if isinstance(version, bytes) else str(version)
    return version.startswith("3.")


def is_keras3_model(model: Any) -> bool:
    """True for model objects from Keras 3 (`import keras`), false for tf_keras ones."""
    return type(model).__module__.startswith("keras.")


def load_keras3_file(path: Path, allow_unsafe: bool, sample: np.ndarray | None = None) -> Any:
    """Load with Keras 3 itself (safe mode unless allowed), then translate and verify."""
    import keras as keras3

    try:
        model = keras3.saving.load_model(path, compile=False, safe_mode=not allow_unsafe)
    except Exception as exc:  # noqa: BLE001 - every loader failure becomes one user-facing line
        text = str(exc)
        if "safe_mode" in text or "lambda" in text.lower():
            raise EdgesmithError(
                f"{path} contains a Lambda layer, which would run code stored in the file",
                "if you trust the file, pass --allow-unsafe (allow_unsafe = true) to load it",
            ) from None
        raise EdgesmithError(f"{path} could not be loaded by Keras 3 ({first_line(exc, 120)})", "re-export the model file") from None
    from toolkit.model_inputs import with_static_input

    return translated_or_kept(with_static_input(model, sample), sample)


def translated_or_kept(model: Any, sample: np.ndarray | None = None) -> Any:
    """The tf_keras translation; or, where a layer has none (or it is not exact), the Keras 3
    model itself: the TFLite and ONNX converters take it as it is, so every post-training
    precision still runs, while the compression passes (tfmot: tf_keras only) cannot."""
    try:
        return to_tf_keras(model, sample)
    except EdgesmithError as exc:
        _UNTRANSLATED[model] = exc.problem
        return model


def untranslated_reason(model: Any) -> str | None:
    """Why a Keras 3 model was kept as it is (None for a translated or tf_keras model)."""
    return _UNTRANSLATED.get(model) if is_keras3_model(model) else None


def to_tf_keras(model: Any, sample: np.ndarray | None = None) -> Any:
    """The tf_keras equivalent of a built Keras 3 model, checked on `sample` (random inputs in
    [0, 1] when the sample does not fit the model; the caller then reports the shape)."""
    from toolkit.model_inputs import fits

    translated = _translate(model)
    _copy_weights(model, translated)
    for name in _batchnorm_called_in_inference(model):
        if name in {layer.name for layer in translated.layers}:  # inlined: its `training=False` is gone
            translated.get_layer(name).trainable = False  # tf_keras runs it in inference mode, as the call asked
    expected = tuple(model.inputs[0].shape[1:])
    if sample is None or not fits(tuple(sample.shape[1:]), expected):
        sample = np.random.default_rng(0).random((8, *(d or 32 for d in expected)), dtype=np.float32)
    verify(model, translated, sample[:VERIFY_SAMPLES])
    return translated


def verify(original: Any, translated: Any, sample: np.ndarray) -> float:
    """Largest relative output difference; refuses a translation beyond TOLERANCE, naming the
    first layer whose output differs. Every layer is compared (on a few samples) because the
    final outputs of an untrained model can be constant and would hide a wrong translation."""
    sample = sample.astype(np.float32)
    worst = _difference(original(sample, training=False), translated(sample, training=False))
    layer, layer_worst = _first_divergence(original, translated, sample[:LAYER_SAMPLES])
    if not worst <= TOLERANCE or layer is not None:
        where = f"; first at layer '{layer}' ({layer_worst:.2e} > {LAYER_TOLERANCE:g})" if layer else ""
        raise EdgesmithError(
            f"the tf_keras translation of Keras 3 model '{original.name}' differs from it on {len(sample)} samples: "
            f"outputs by {worst:.2e} (tolerance {TOLERANCE:g}){where}",
            "please report it with the model; meanwhile save the model with tf_keras",
        )
    return max(worst, layer_worst)


def _difference(expected: Any, got: Any) -> float:
    expected, got = _as_list(expected), _as_list(got)
    if len(expected) != len(got):
        return float("inf")
    worst = 0.0
    for a, b in zip(expected, got):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return float("inf")
        worst = max(worst, float(np.abs(a - b).max()) / max(1.0, float(np.abs(a).max())))
    return worst


def _first_divergence(original: Any, translated: Any, sample: np.ndarray) -> tuple[str | None, float]:
    """The first top-level layer (in graph order) whose output differs beyond LAYER_TOLERANCE."""
    import keras as keras3

    twins = {layer.name: layer for layer in translated.layers}
    pairs = []
    for layer in original.layers:
        twin = twins.get(layer.name)
        if twin is None or hasattr(layer, "layers") or type(layer).__name__ == "InputLayer":
            continue  # nested models are compared through the layers after them
        if activation_name(_activation(layer), layer.name) != _activation(twin):
            continue  # its activation became separate layers: compared through the layers after it
        if len(layer._inbound_nodes) == 1 and len(twin._inbound_nodes) == 1:
            pairs.append((layer.name, layer.output, twin.output))
    if not pairs:
        return None, 0.0
    single = lambda inputs: inputs[0] if len(inputs) == 1 else inputs  # noqa: E731
    ours = keras().Model(single(translated.inputs), [pair[2] for pair in pairs])(sample, training=False)
    theirs = keras3.Model(single(original.inputs), [pair[1] for pair in pairs])(sample, training=False)
    worst = 0.0
    for (name, _, _), expected, got in zip(pairs, _as_list(theirs), _as_list(ours)):
        difference = _difference(expected, got)
        worst = max(worst, difference)
        if not difference <= LAYER_TOLERANCE:
            return name, difference
    return None, worst


def _translate(model: Any, inline: bool | None = None) -> Any:
    """A Keras 3 Functional or Sequential model (nested ones included) as a tf_keras Model.

    Nested models used once (an augmentation block, a keras.applications base inside a
    transfer-learning model) are inlined: their layers join the outer graph, because tfmot
    cannot wrap a model inside a model (QAT and pruning would refuse the whole chain). They
    stay nested where inlining would repeat a layer name (a shared or reused sub-model)."""
    config = model.get_config()
    inline = _names_unique(model) if inline is None else inline
    if type(model).__name__ == "Sequential":
        return _sequential(model, config, inline)
    if "layers" not in config or "input_layers" not in config:
        raise EdgesmithError(
            f"Keras 3 model '{model.name}' is a subclassed {type(model).__name__}, whose graph is Python code",
            "build it with the functional API (keras.Model(inputs, outputs)) or keras.Sequential",
        )
    return _Graph(model, config, inline).build()


def _batchnorm_called_in_inference(model: Any) -> set[str]:
    """BatchNormalization layers inside nested models the graph calls with `training=False`
    (transfer learning's frozen base): the passes' fine-tunes must not update their statistics."""
    names: set[str] = set()
    for entry in model.get_config().get("layers", []):
        if entry["class_name"] not in NESTED_MODELS:
            continue
        nested = model.get_layer(entry.get("name") or entry["config"]["name"])  # a Sequential's entries name it in config
        nodes = [node for node in entry.get("inbound_nodes") or () if isinstance(node, dict)]
        if any((node.get("kwargs") or {}).get("training") is False for node in nodes):
            names |= {layer.name for layer in _flat_operations(nested) if type(layer).__name__ == "BatchNormalization"}
        names |= _batchnorm_called_in_inference(nested)
    return names


def _flat_operations(model: Any) -> list[Any]:
    """Every layer and Keras 3 operation of `model`, nested models opened up."""
    return [inner for operation in getattr(model, "operations", model.layers)
            for inner in (_flat_operations(operation) if hasattr(operation, "layers") else [operation])]


def _names_unique(model: Any) -> bool:
    """Whether every layer and operation name stays unique once nested models are inlined."""
    names = [operation.name for operation in _flat_operations(model) if type(operation).__name__ != "InputLayer"]
    return len(names) == len(set(names))


def _sequential(model: Any, config: dict[str, Any], inline: bool) -> Any:
    k = keras()
    layers = list(config["layers"])
    if layers and layers[0]["class_name"] == "InputLayer":
        first = layers.pop(0)["config"]
        x = inputs = k.Input(batch_shape=first["batch_shape"], dtype=first.get("dtype"), name=first.get("name"))
    else:
        x = inputs = k.Input(batch_shape=tuple(model.inputs[0].shape))
    return k.Model(inputs, _sequential_layers(model, layers, x, inline), name=model.name)


def _sequential_layers(model: Any, layers: list[dict[str, Any]], x: Any, inline: bool) -> Any:
    for entry in layers:
        if entry["class_name"] != "InputLayer":
            x = _call_layer(model, entry, [x], {}, inline)
    return x


def _inlined(model: Any, args: list[Any]) -> Any:
    """A nested model's layers applied to the outer graph's tensors `args`."""
    config = model.get_config()
    if type(model).__name__ == "Sequential":
        return _sequential_layers(model, list(config["layers"]), args[0], inline=True)
    inputs = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    return _Graph(model, config, inline=True).replay(inputs)


class _Graph:
    """Replays a Keras 3 functional config with tf_keras layers, node by node."""

    def __init__(self, model: Any, config: dict[str, Any], inline: bool) -> None:
        self.model, self.config, self.inline = model, config, inline
        self.tensors: dict[tuple[str, int], list[Any]] = {}
        self.shared: dict[str, Any] = {}  # nested model name → its one translation, called at every node
        for entry in config["layers"]:
            calls = len(entry.get("inbound_nodes") or ())
            if calls > 1 and entry["class_name"] not in NESTED_MODELS and entry["class_name"] != "InputLayer":
                raise EdgesmithError(f"layer '{entry['name']}' ({entry['class_name']}) is called {calls} times (a shared "
                                     "layer); the translation rebuilds each layer for one call",
                                     "share a sub-model (keras.Model) instead of a layer, or load the model in tf_keras yourself")

    def build(self) -> Any:
        """A tf_keras Model with inputs of its own."""
        k = keras()
        for entry in self.config["layers"]:
            if entry["class_name"] == "InputLayer":
                cfg = entry["config"]
                self.tensors[(entry["name"], 0)] = [k.Input(batch_shape=cfg["batch_shape"], dtype=cfg.get("dtype"), name=entry["name"])]
        outputs = self._outputs()
        inputs = [self._tensor(ref) for ref in _refs(self.config["input_layers"])]
        return k.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=self.model.name)

    def replay(self, inputs: list[Any]) -> Any:
        """The graph's outputs computed from the outer graph's tensors `inputs`."""
        for ref, tensor in zip(_refs(self.config["input_layers"]), inputs):
            self.tensors[(ref[0], ref[1])] = [tensor]
        return self._outputs()

    def _outputs(self) -> Any:
        pending = [(entry, index, node) for entry in self.config["layers"] if entry["class_name"] != "InputLayer"
                   for index, node in enumerate(entry["inbound_nodes"])]
        while pending:  # configs are topologically ordered; the loop only guards against surprises
            waiting = [item for item in pending if not self._run(*item)]
            if len(waiting) == len(pending):
                raise EdgesmithError(f"Keras 3 model '{self.model.name}' has a graph that cannot be replayed", "re-save it")
            pending = waiting
        outputs = [self._tensor(ref) for ref in _refs(self.config["output_layers"])]
        return outputs if len(outputs) > 1 else outputs[0]

    def _run(self, entry: dict[str, Any], index: int, node: dict[str, Any]) -> bool:
        try:
            args = self._resolve(list(node.get("args", ())))
            kwargs = {key: value for key, value in self._resolve(dict(node.get("kwargs") or {})).items() if value is not None}
        except KeyError:
            return False
        if entry["class_name"] in NESTED_MODELS and len(entry["inbound_nodes"]) > 1:  # a shared sub-model stays one
            if entry["name"] not in self.shared:
                self.shared[entry["name"]] = _translate(self.model.get_layer(entry["name"]), inline=False)
            outputs = self.shared[entry["name"]](*args, **kwargs)
        else:
            outputs = _call_layer(self.model, entry, args, kwargs, self.inline)
        self.tensors[(entry["name"], index)] = _as_list(outputs)
        return True

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return self._tensor(value["config"]["keras_history"])
        if isinstance(value, (list, tuple)):
            return [self._resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: self._resolve(item) for key, item in value.items()}
        return value

    def _tensor(self, history: Any) -> Any:
        name, node, index = history
        return self.tensors[(name, node)][index]


def _call_layer(model: Any, entry: dict[str, Any], args: list[Any], kwargs: dict[str, Any], inline: bool) -> Any:
    """Apply one translated layer (or Keras 3 operation, or nested model: inlined if `inline`)."""
    class_name, name = entry["class_name"], entry.get("name") or entry["config"].get("name")
    module = entry.get("module") or ""
    if module.startswith("keras.src.ops"):
        if class_name not in OPERATIONS or len(args) != 2:
            raise EdgesmithError(f"operation '{name}' ({module}.{class_name}) has no tf_keras translation",
                                 "use layers (keras.layers.Add, Multiply, …) instead of keras.ops in the model")
        return arithmetic(class_name, *args, name)
    if class_name in NESTED_MODELS:
        nested = model.get_layer(name)
        return _inlined(nested, args) if inline else _translate(nested, inline=False)(*args, **kwargs)
    layer, after = make_layer(class_name, entry["config"])
    outputs = after(*args) if layer is None else layer(*args, **kwargs)
    return outputs if layer is None or after is None else after(outputs)


def _copy_weights(source: Any, target: Any) -> None:
    """Copy every layer's weights by name (nested models recursively); shapes must agree."""
    for layer in source.layers:
        if not layer.weights or type(layer).__name__ in INFERENCE_IDENTITIES:
            continue  # an augmentation layer's weights are its random generator's state
        if hasattr(layer, "layers"):  # a nested model: kept nested, or inlined into `target`
            _copy_weights(layer, target.get_layer(layer.name) if layer.name in {t.name for t in target.layers} else target)
            continue
        twin = target.get_layer(layer.name)
        try:
            twin.set_weights(layer.get_weights())
        except ValueError as exc:
            raise EdgesmithError(f"layer '{layer.name}' ({type(layer).__name__}) has weights tf_keras lays out differently "
                                 f"({first_line(exc, 100)})", "please report it with the model") from None


def _activation(layer: Any) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "")


def _refs(value: Any) -> list[Any]:
    """`input_layers`/`output_layers` hold one [name, node, index] or a list of them."""
    return [value] if value and isinstance(value[0], str) else list(value)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
