"""What `explain` works on: a Keras model (object, file, or a finished run's full model) and
the data, so the CLI and the API resolve them the same way."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from toolkit.errors import EdgesmithError
from toolkit.task import REGRESSION


@dataclass(frozen=True)
class Subject:
    """The float model, its data, the calibration settings and where files go by default."""

    model: Any
    data: Any
    calibration_samples: int
    seed: int
    default_output: Path


def resolve(model: Any, data: Any = None, dataset: Mapping[str, Any] | None = None, allow_unsafe: bool = False,
            calibration_samples: int = 256, seed: int = 0, log: Callable[[str], None] = lambda line: None) -> Subject:
    """`model`: a tf_keras model, a model file, or a run folder (its baseline/model.h5 and, unless
    `data` is given, the run's dataset and calibration settings). `data`: a Dataset or arrays
    x_train, y_train, x_test, y_test; else `dataset` options as for `run` (default digits), whose
    image size, color and preprocessing left unset follow a model file as in `run` (said to `log`)."""
    from toolkit.data import Dataset, from_arrays, load_configured
    from toolkit.model_inputs import data_defaults

    options = {"dataset": "digits", "seed": seed, **(dataset or {})}
    if isinstance(model, (str, Path)) and (Path(model) / "manifest.json").is_file():
        run_dir = Path(model)
        config = json.loads((run_dir / "manifest.json").read_text())["config"]
        if data is None and config.get("dataset") == "arrays":
            raise EdgesmithError(f"the run in {run_dir} was made from arrays, which it does not store",
                                 "pass the same arrays with data=... (or the dataset options)")
        if dataset is None:
            options = config
        calibration_samples, seed = config.get("calibration_samples", calibration_samples), config.get("seed", seed)
        keras_model, output = _load(run_dir / "baseline" / "model.h5", trusted=True), run_dir / "explain"
    elif isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise EdgesmithError(f"model file {path} does not exist", "check the path, or pass a run folder")
        keras_model, output = _load(path, trusted=False, allow_unsafe=allow_unsafe), Path(f"{path.stem}-explain")
        if data is None:
            options = {**options, **data_defaults(path, options, log)}
    else:
        keras_model, output = model, Path(f"{getattr(model, 'name', 'model')}-explain")
    if isinstance(data, Dataset):
        loaded = data
    elif data is not None:
        loaded = from_arrays(data, seed)
    else:
        loaded = load_configured(options)
    if loaded.task == REGRESSION:
        raise EdgesmithError("explain ranks int8 layers by what they cost a classifier's accuracy; "
                             "a regression run is not supported yet", "compare its int8 and fp32 MAE in the run's report")
    expected = tuple(keras_model.input_shape[1:])
    if tuple(loaded.input_shape) != expected:
        raise EdgesmithError(f"the data's samples are shaped {loaded.input_shape} but the model takes {expected}",
                             "pass the dataset (and --preprocess/--image-size/--color) the model was trained on")
    return Subject(keras_model, loaded, calibration_samples, seed, output)


def _load(path: Path, trusted: bool, allow_unsafe: bool = False) -> Any:
    from toolkit.model_files import load_saved, load_user_model

    if trusted:
        if not path.exists():
            raise EdgesmithError(f"the run folder has no full model at {path}", "run `edgesmith run` to finish it first")
        return load_saved(path)
    return load_user_model(path, allow_unsafe)
