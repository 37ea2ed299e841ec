"""Datasets with a deterministic split and recorded preprocessing.

The same preprocessing (see preprocess.py) is applied to training, calibration and benchmark
inputs, and is stored in the run so a deployed model can be fed exactly what it was calibrated on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from toolkit.data_files import NPZ_KEYS, read_idx_pair, read_npz
from toolkit.data_sanity import check_labels
from toolkit.data_stream import StreamedSplit, chunk_size, should_stream
from toolkit.errors import EdgesmithError
from toolkit.preprocess import Preprocess, channels_of, parse_preprocess
from toolkit.task import CLASSIFICATION, REGRESSION

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DIGITS_FILE = Path(__file__).with_name("datasets") / "digits.npz"
VALIDATION_FRACTION = 0.1
DIGITS_TEST_FRACTION = 0.2
FOLDER_TEST_FRACTION = 0.2
DEFAULT_PREPROCESS = {"digits": "scale:1/16", "fashion-mnist": "scale:1/255", "mnist": "scale:1/255", "folder": "scale:1/255"}


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits, already preprocessed, plus what is needed to reproduce them.

    `raw_dtype` is the dtype of the samples before preprocessing (uint8 for images), `source`
    what the loader found (image folders: layout, skipped and resized images). A regression's
    targets are float32 (n, outputs) and `num_classes` is its number of outputs."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    preprocess: Preprocess
    class_names: tuple[str, ...] = ()
    raw_dtype: str = "float32"
    source: dict[str, Any] = field(default_factory=dict)
    task: str = CLASSIFICATION

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def preprocessing(self) -> dict[str, object]:
        """How raw values become model inputs (spec, affine scale/offset, dtypes)."""
        return {**self.preprocess.to_dict(), "raw_dtype": self.raw_dtype}

    @property
    def streamed(self) -> bool:
        """Whether the samples are kept raw and preprocessed a batch at a time (data_stream.py)."""
        return isinstance(self.x_train, StreamedSplit)

    @cached_property
    def fingerprint(self) -> str:
        """Hash of every split's model-input bytes: a cache key and the manifest's record of the
        data (a streamed split hashes the same float32 bytes, a chunk at a time)."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            digest.update(str(tuple(array.shape)).encode())
            step = chunk_size(array)
            for start in range(0, len(array), step):
                digest.update(np.ascontiguousarray(array[start : start + step]).tobytes())
        return digest.hexdigest()[:16]

    def calibration_sample(self, count: int, seed: int) -> np.ndarray:
        """A fixed random sample of the training split for int8 calibration."""
        if len(self.x_train) < min(count, 10):
            raise EdgesmithError(
                f"only {len(self.x_train)} training samples, too few to calibrate int8",
                "provide at least 10 training samples",
            )
        rng = np.random.default_rng(seed)
        index = rng.choice(len(self.x_train), size=min(count, len(self.x_train)), replace=False)
        return self.x_train[np.sort(index)]


def load_dataset(
    name: str,
    data: str = "",
    seed: int = 0,
    preprocess: str = "",
    image_size: str = "",
    color: str = "",
    skip_bad_images: bool = False,
    task: str = CLASSIFICATION,
) -> Dataset:
    """Load a dataset by name; `data` is a directory (IDX, image folder) or a file (npz).

    `preprocess` '' means the dataset's own default (digits x/16, images x/255, float npz as-is).
    """
    if task == REGRESSION and name not in ("npz", "folder"):
        raise EdgesmithError(f"task 'regression' needs float targets, and dataset '{name}' has class labels",
                             "store x_train, y_train, x_test, y_test (float targets) in an .npz and pass --dataset npz "
                             "--data FILE, or list images and targets in DIR/targets.csv and pass --dataset folder --data DIR")
    spec = lambda default: parse_preprocess(preprocess or default)  # noqa: E731
    if name == "digits":
        x, y = digits()
        x_rest, y_rest, x_test, y_test = _split(x, y, DIGITS_TEST_FRACTION, seed + 1)
        return _finish(name, x_rest, y_rest, x_test, y_test, spec(DEFAULT_PREPROCESS[name]), seed)
    if name in ("fashion-mnist", "mnist"):
        folder = _idx_folder(name, data)
        x_train, y_train = read_idx_pair(folder, "train")
        x_test, y_test = read_idx_pair(folder, "t10k")
        return _finish(name, x_train[..., None], y_train, x_test[..., None], y_test, spec(DEFAULT_PREPROCESS[name]), seed)
    if name == "npz":
        return from_arrays(read_npz(Path(data)), seed, name, preprocess, task)
    if name == "folder":
        return _folder(Path(data), seed, spec(DEFAULT_PREPROCESS[name]), image_size, color, skip_bad_images, task)
    if name == "arrays":
        raise EdgesmithError("dataset 'arrays' has no files to load",
                             "pass the arrays to toolkit.run(..., data={'x_train': ..., ...}), or use npz")
    raise EdgesmithError(f"unknown dataset '{name}'", "choose digits, fashion-mnist, mnist, npz or folder")


def load_configured(options: Mapping[str, Any]) -> Dataset:
    """The dataset an experiment names: its to_dict(), or a finished run's manifest config."""
    return load_dataset(
        options["dataset"], options.get("data", ""), options.get("seed", 0), options.get("preprocess", ""),
        options.get("image_size", ""), options.get("color", ""), options.get("skip_bad_images", False),
        options.get("task", CLASSIFICATION),
    )


def _folder(root: Path, seed: int, preprocess: Preprocess, image_size: str, color: str, skip_bad_images: bool,
            task: str = CLASSIFICATION) -> Dataset:
    """An image folder (a regression's: its targets.csv): its own test split, or one cut from
    the seed like digits."""
    from toolkit.data_folder import read_folder
    from toolkit.data_manifest import read_manifest

    images = (read_manifest if task == REGRESSION else read_folder)(root, image_size, color, skip_bad_images)
    x_train, y_train, x_test, y_test = images.x_train, images.y_train, images.x_test, images.y_test
    if x_test is None:
        x_train, y_train, x_test, y_test = _split(x_train, y_train, FOLDER_TEST_FRACTION, seed + 1)
    if task == REGRESSION:
        return _finish_regression("folder", x_train, y_train, x_test, y_test, preprocess, seed, images.info)
    return _finish("folder", x_train, y_train, x_test, y_test, preprocess, seed, images.class_names, images.info)


def from_arrays(arrays: Mapping[str, np.ndarray], seed: int = 0, name: str = "arrays", preprocess: str = "",
                task: str = CLASSIFICATION) -> Dataset:
    """A dataset from x_train, y_train, x_test, y_test arrays; `preprocess` '' means uint8
    images are scaled by 1/255 and other dtypes used as they are. A regression's y arrays hold
    float targets, one or several per sample."""
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise EdgesmithError(f"{name} lacks {', '.join(missing)}", "pass x_train, y_train, x_test and y_test arrays")
    x_train, y_train, x_test, y_test = (np.asarray(arrays[key]) for key in NPZ_KEYS)
    default = "scale:1/255" if x_train.dtype == np.uint8 else "none"
    if task == REGRESSION:
        return _finish_regression(name, x_train, y_train, x_test, y_test, parse_preprocess(preprocess or default), seed)
    return _finish(name, x_train, y_train, x_test, y_test, parse_preprocess(preprocess or default), seed)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The embedded 8×8 digits (1797 images, values 0..16, labels 0..9): UCI's Optical
    Recognition of Handwritten Digits test set (CC BY 4.0), as scikit-learn's load_digits gives
    it, stored here so the default run needs no scikit-learn (whose import alone took 1.9 s)."""
    with np.load(DIGITS_FILE) as stored:
        return stored["images"].astype(np.float32)[..., None], stored["target"].astype(np.int64)


def _idx_folder(name: str, data: str) -> Path:
    if data:
        folder = Path(data)
    elif name == "fashion-mnist":
        folder = FASHION_MNIST_DIR
    else:
        raise EdgesmithError(
            "the mnist dataset needs its IDX files",
            "pass --data DIR with train-images-idx3-ubyte[.gz] and the other three MNIST files",
        )
    if not folder.is_dir():
        fix = (
            "install Debian's package: apt-get install dataset-fashion-mnist, or pass --data DIR"
            if name == "fashion-mnist" and not data
            else "pass --data DIR pointing at the folder with the four IDX files"
        )
        raise EdgesmithError(f"{name} folder {folder} does not exist", fix)
    return folder


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Shuffle with `seed` and cut off `fraction` as the second part (deterministic)."""
    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) - max(1, int(round(len(x) * fraction)))
    first, second = order[:cut], order[cut:]
    return x[first], y[first], x[second], y[second]


def _finish(name, x_train, y_train, x_test, y_test, preprocess: Preprocess, seed: int,
            class_names: tuple[str, ...] = (), source: dict[str, Any] | None = None) -> Dataset:
    """Validate class labels, then assemble the splits (`_assemble`)."""
    _validate(name, x_train, y_train, "train")
    _validate(name, x_test, y_test, "test")
    _validate_labels(name, y_train, "train")
    _validate_labels(name, y_test, "test")
    labels = np.concatenate([y_train, y_test]).astype(np.int64)
    num_classes = int(labels.max()) + 1
    if num_classes < 2:
        raise EdgesmithError(f"{name}: labels hold a single class", "provide labels of at least two classes")
    check_labels(name, y_train)
    return _assemble(name, x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64),
                     max(num_classes, len(class_names)), preprocess, seed, class_names, source)


def _finish_regression(name, x_train, y_train, x_test, y_test, preprocess: Preprocess, seed: int,
                       source: dict[str, Any] | None = None) -> Dataset:
    """Float targets, one or several per sample, kept as float32 (n, outputs)."""
    _validate(name, x_train, y_train, "train")
    _validate(name, x_test, y_test, "test")
    targets = [_regression_targets(name, y, split) for y, split in ((y_train, "train"), (y_test, "test"))]
    if targets[0].shape[1] != targets[1].shape[1]:
        raise EdgesmithError(f"{name}: y_train has {targets[0].shape[1]} targets per sample but y_test {targets[1].shape[1]}",
                             "give both splits the same number of targets")
    return _assemble(name, x_train, targets[0], x_test, targets[1], targets[0].shape[1], preprocess, seed,
                     source=source, task=REGRESSION)


def _assemble(name, x_train, y_train, x_test, y_test, num_outputs: int, preprocess: Preprocess, seed: int,
              class_names: tuple[str, ...] = (), source: dict[str, Any] | None = None,
              task: str = CLASSIFICATION) -> Dataset:
    """Carve the validation split out of training and preprocess to float32 (split first, so
    only the raw arrays and one float32 copy are ever in memory)."""
    if x_train.shape[1:] != x_test.shape[1:]:
        raise EdgesmithError(
            f"{name}: train samples have shape {x_train.shape[1:]} but test samples {x_test.shape[1:]}",
            "give both splits the same sample shape",
        )
    preprocess.check_channels(channels_of(x_train.shape))
    x_fit, y_fit, x_val, y_val = _split(x_train, y_train, VALIDATION_FRACTION, seed)
    float_bytes = 4 * (x_train.size + x_test.size)
    stream = x_train.dtype.itemsize < 4 and should_stream(float_bytes)
    inputs = (lambda raw: StreamedSplit(raw, preprocess)) if stream else preprocess.apply
    source = {**(source or {}), **({"streamed": True, "float32_bytes": float_bytes} if stream else {})}
    return Dataset(
        name, inputs(x_fit), y_fit, inputs(x_val), y_val, inputs(x_test),
        y_test, num_outputs, preprocess, class_names, str(x_train.dtype), source, task,
    )


def _validate(name: str, x: np.ndarray, y: np.ndarray, split: str) -> None:
    """Reject samples a model cannot be trained or measured on, saying what is wrong."""
    if len(x) == 0:
        raise EdgesmithError(f"{name}: the {split} split has no samples", "provide a non-empty x_" + split)
    if len(x) != len(y):
        raise EdgesmithError(
            f"{name}: x_{split} has {len(x)} samples but y_{split} has {len(y)} labels",
            "give every sample exactly one label",
        )
    if x.ndim not in (2, 3, 4):
        raise EdgesmithError(
            f"{name}: x_{split} has shape {x.shape}",
            "use (n, features), (n, height, width) or (n, height, width, channels)",
        )
    if not np.issubdtype(x.dtype, np.number):
        raise EdgesmithError(f"{name}: x_{split} has dtype {x.dtype}", "store samples as numbers")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise EdgesmithError(f"{name}: x_{split} contains NaN or inf values", "clean or drop those samples")


def _validate_labels(name: str, y: np.ndarray, split: str) -> None:
    """Class ids 0..K-1, one per sample."""
    if y.ndim != 1:
        raise EdgesmithError(f"{name}: y_{split} has shape {y.shape}", "labels must be a 1-D array of class ids")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise EdgesmithError(f"{name}: y_{split} contains NaN or inf values", "give every sample a class id 0..K-1")
    if np.issubdtype(y.dtype, np.floating) and not np.array_equal(y, np.round(y)):
        raise EdgesmithError(
            f"{name}: y_{split} holds non-integer values (e.g. {y[y != np.round(y)][0]:g}), regression targets",
            "give class ids 0..K-1, or score the model as a regression: --task regression",
        )
    if not np.issubdtype(y.dtype, np.number):
        raise EdgesmithError(
            f"{name}: y_{split} labels must be integer class ids from 0, not {y.dtype} values (e.g. {str(y.flat[0])!r})",
            "encode labels as 0..K-1, e.g. names, ids = np.unique(y, return_inverse=True)")
    if y.min() < 0:  # whole numbers stored as floats are class ids too
        raise EdgesmithError(
            f"{name}: y_{split} labels must be integer class ids from 0 (got dtype {y.dtype}, min {y.min()})",
            "encode labels as 0..K-1",
        )


def _regression_targets(name: str, y: np.ndarray, split: str) -> np.ndarray:
    """Finite numbers, shaped (n,) or (n, outputs), as float32 (n, outputs)."""
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.number):
        raise EdgesmithError(f"{name}: y_{split} has shape {y.shape} and dtype {y.dtype}",
                             "regression targets must be numbers shaped (n,) or (n, outputs)")
    if not np.isfinite(y).all():
        raise EdgesmithError(f"{name}: y_{split} contains NaN or inf values", "clean or drop those samples")
    return np.asarray(y, np.float32).reshape(len(y), -1)
