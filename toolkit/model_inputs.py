"""The input a model declares, and fitting it to the data: edge converters and runtimes need
static shapes, and an image folder should be read at the size and channels the model expects.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

from toolkit._tf import keras


def with_static_input(model: Any, sample: Any = None) -> Any:
    """A model whose input leaves sizes open (`Input((None, None, 3))`) rebuilt with the sizes of
    `sample`, weights included: the converters and edge runtimes need static shapes. Other models
    (and samples that do not fit the open shape) are returned as they are."""
    declared = tuple(model.input_shape[1:]) if len(getattr(model, "inputs", ())) == 1 else ()
    if sample is None or None not in declared or not fits(tuple(sample.shape[1:]), declared):
        return model
    from toolkit.keras3 import is_keras3_model

    if is_keras3_model(model):
        import keras as module
    else:
        module = keras()
    fixed = module.models.clone_model(model, input_tensors=module.Input(batch_shape=(None, *sample.shape[1:])))
    fixed.set_weights(model.get_weights())
    return fixed


def fits(shape: tuple[int, ...], declared: tuple[int | None, ...]) -> bool:
    """Whether a sample of `shape` fits an input declared as `declared` (None: any size)."""
    return len(shape) == len(declared) and all(want is None or want == got for got, want in zip(shape, declared))


def declared_input_shape(path: Path) -> tuple[int | None, ...] | None:
    """The input shape (without batch) a .keras or .h5 file's stored config declares, read
    without building the model; None when the file, or its single input, cannot be read so."""
    config = _stored_config(Path(path))
    return None if config is None else _top_input_shape(config)


def own_input_scaling(path: Path) -> str | None:
    """The Rescaling or Normalization layer (or Keras 3 arithmetic, as `preprocess_input` makes)
    a .keras or .h5 file applies to its input first, as "'name' (Class)", read from the stored
    config; None when it has none (or cannot be read).
    Augmentation layers before it (identities at inference) are looked through, and so is a
    nested model (a keras.applications model inside a Sequential)."""
    config = _stored_config(Path(path))
    return None if config is None else _first_scaling(config)


def data_defaults(path: Path, options: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, str]:
    """The data options left unset in `options` that follow the model file, each choice said to
    `log`. An image folder's `image_size` and `color` follow the input the model declares,
    so the images come out the size and channels it expects. `preprocess` is "none" for a model
    that scales its own input (a Rescaling or Normalization layer first, as Keras' tutorials,
    MobileNetV3 and EfficientNet do): the dataset's default scaling on top would score near chance."""
    chosen: dict[str, str] = {}
    shape = declared_input_shape(path) if options.get("dataset") == "folder" else None
    if shape is not None and len(shape) == 3 and shape[2] in (1, 3):
        height, width, channels = shape
        folder = {}
        if not options.get("image_size") and isinstance(height, int) and isinstance(width, int):
            folder["image_size"] = f"{width}x{height}"
        if not options.get("color"):
            folder["color"] = "grayscale" if channels == 1 else "rgb"
        if folder:
            log(f"[data] {', '.join(f'{key} = {value}' for key, value in folder.items())}: the model's "
                f"input ({path}); set them to read the folder otherwise")
        chosen.update(folder)
    layer = None if options.get("preprocess") else own_input_scaling(path)
    if layer is not None:
        chosen["preprocess"] = "none"
        log(f"[data] preprocess = none: the model scales its own input (layer {layer}); set preprocess otherwise")
    return chosen


def _stored_config(path: Path) -> Any | None:
    try:
        if path.suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        if path.suffix in (".h5", ".hdf5") and path.is_file():
            import h5py

            with h5py.File(path, "r") as handle:
                text = handle.attrs.get("model_config", "")
            return json.loads(text.decode() if isinstance(text, bytes) else text)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return None


def _first_scaling(config: Any) -> str | None:
    from toolkit.keras3_layers import INFERENCE_IDENTITIES

    for entry in _layer_entries(config):
        class_name = entry.get("class_name")
        if class_name in ("Rescaling", "Normalization") or _arithmetic(entry):
            return f"'{(entry.get('config') or {}).get('name') or entry.get('name', '?')}' ({class_name})"
        if class_name == "InputLayer" or class_name in INFERENCE_IDENTITIES:
            continue
        inner = _layer_entries(entry)
        if inner and all(layer.get("class_name") in ("InputLayer", *INFERENCE_IDENTITIES) for layer in inner):
            continue  # a nested augmentation block
        return _first_scaling(entry) if inner else None
    return None


def _arithmetic(entry: dict[str, Any]) -> bool:
    """Keras 3 arithmetic on the input (`preprocess_input` of keras.applications: x / 127.5 − 1)."""
    from toolkit.keras3_layers import OPERATIONS

    return str(entry.get("module") or "").startswith("keras.src.ops") and entry.get("class_name") in OPERATIONS


def _layer_entries(config: Any) -> list[dict[str, Any]]:
    layers = (config.get("config") or {}).get("layers") if isinstance(config, dict) else None
    return [entry for entry in layers if isinstance(entry, dict)] if isinstance(layers, list) else []


def _top_input_shape(config: Any) -> tuple[int | None, ...] | None:
    """The single input's shape from the top-level model's InputLayer (Keras 3: batch_shape,
    tf_keras: batch_input_shape, also on a Sequential's first layer when it has no InputLayer)."""
    entries = _layer_entries(config)
    if not entries:
        return None
    inputs = [entry for entry in entries if entry.get("class_name") == "InputLayer"] or entries[:1]
    shapes = [(entry.get("config") or {}).get("batch_shape") or (entry.get("config") or {}).get("batch_input_shape")
              for entry in inputs]
    if len(shapes) != 1 or not isinstance(shapes[0], list):
        return None
    return tuple(shapes[0][1:])
