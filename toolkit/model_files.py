"""Loading and saving Keras model files safely.

A model file can carry code (Lambda layers, custom objects); we never run it unless the user
explicitly allows it, and every way a file can be wrong maps to one clear message.
"""
from __future__ import annotations

import os
import re

import zipfile
from pathlib import Path
from typing import Any

from toolkit._tf import keras
from toolkit.errors import EdgesmithError, first_line
from toolkit.files import atomic_path
from toolkit.model_safety import TRUST_FIX, check_model_file

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_user_model(path: Path, allow_unsafe: bool = False, sample: Any = None) -> Any:
    """Load .keras, .h5 or a SavedModel directory as a tf_keras model, uncompiled; a Keras 3
    file is translated to tf_keras and checked on `sample` (see keras3.py)."""
    path = Path(path)
    if not path.exists():
        raise EdgesmithError(f"model file {path} does not exist", "check the path passed to --model")
    if path.is_file() and path.suffix not in KERAS_SUFFIXES:
        raise EdgesmithError(
            f"{path} is not a Keras model file (expected {', '.join(KERAS_SUFFIXES)} or a SavedModel folder)",
            "export the model with model.save('model.keras')",
        )
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise EdgesmithError(f"{path} is a folder without saved_model.pb", "pass a SavedModel folder or a .keras/.h5 file")
    check_model_file(path, allow_unsafe)
    if not allow_unsafe and _has_lambda_layer(path):
        raise EdgesmithError(f"{path} contains a Lambda layer, which would run code stored in the file", TRUST_FIX)
    from toolkit.keras3 import is_keras3_file, load_keras3_file

    if is_keras3_file(path):
        return load_keras3_file(path, allow_unsafe, sample)
    try:
        model = keras().models.load_model(path, compile=False, safe_mode=not allow_unsafe)
    except Exception as exc:  # noqa: BLE001 - every loader failure becomes one user-facing line
        raise _explain_load_failure(path, exc) from None
    if not isinstance(model, keras().Model):
        raise EdgesmithError(
            f"{path} loaded as {type(model).__name__}, not a Keras model",
            "save a Keras model (model.save) rather than a bare tf.Module SavedModel",
        )
    from toolkit.model_inputs import with_static_input

    return with_static_input(model, sample)


def _has_lambda_layer(path: Path) -> bool:
    """Keras' safe mode only guards the .keras format; HDF5 and SavedModel files would
    deserialize a Lambda's bytecode silently, so look at their stored config first."""
    if path.is_dir():
        metadata = path / "keras_metadata.pb"
        return metadata.is_file() and b'"class_name": "Lambda"' in metadata.read_bytes()
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                config = handle.attrs.get("model_config", "")
        except OSError:
            return False  # unreadable: the loader below reports it as corrupt
        text = config.decode() if isinstance(config, bytes) else str(config)
        return '"class_name": "Lambda"' in text
    return False


def _explain_load_failure(path: Path, exc: Exception) -> EdgesmithError:
    text = first_line(exc, 120)
    if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
        return EdgesmithError(f"{path} contains a Lambda layer, which would run code stored in the file", TRUST_FIX)
    if "Unknown layer" in str(exc) or "custom" in str(exc).lower():
        return EdgesmithError(f"{path} uses a custom layer or object ({text})", "rebuild the model from standard Keras layers")
    if path.suffix == ".keras" and path.is_file() and not zipfile.is_zipfile(path):
        text = "not a zip archive, which every .keras file is"  # Keras then tries HDF5 and says so
    if isinstance(exc, (OSError, zipfile.BadZipFile, ValueError, EOFError)) or "truncated" in str(exc).lower():
        return EdgesmithError(f"{path} is corrupt or truncated ({text})", "re-export the model file")
    return EdgesmithError(f"{path} could not be loaded as a Keras model ({text})", "re-export it with model.save('model.keras')")


def saved_model_name(model: Any) -> str:
    """The file name `save_model` writes `model` to: HDF5 keeps tfmot-stripped tf_keras models
    loadable; a Keras 3 model kept as it is reloads only from its own `.keras` format."""
    from toolkit.keras3 import is_keras3_model

    return "model.keras" if is_keras3_model(model) else "model.h5"


def save_model(model: Any, path: Path) -> None:
    """Save a tf_keras model (or a Keras 3 one, to a .keras path) atomically.

    HDF5 reports a failed write (disk full, file size limit) as a RuntimeError whose text holds
    the errno; it is raised again as the OSError it is, naming the file, so the user gets the
    same one-line "cannot write" message as for any other file."""
    with atomic_path(path) as tmp:
        try:
            model.save(tmp, include_optimizer=False)
        except RuntimeError as error:
            found = re.search(r"errno = (\d+)", str(error))
            if found is None:
                raise
            code = int(found.group(1))
            raise OSError(code, os.strerror(code), str(path)) from error


def load_saved(path: Path) -> Any:
    """Reload a model this tool saved itself (trusted, so no safe-mode restrictions)."""
    from toolkit.keras3 import is_keras3_file

    if is_keras3_file(path):
        import keras as keras3

        return keras3.saving.load_model(path, compile=False, safe_mode=False)
    return keras().models.load_model(path, compile=False)
