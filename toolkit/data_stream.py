"""Splits too large to hold as float32: raw uint8 samples, preprocessed a batch at a time.

A 50,000-image folder at 96×96 RGB is 1.4 GB as uint8 and 5.5 GB as float32. When the float32
splits would not fit comfortably, the dataset keeps the decoded uint8 arrays and hands out
`StreamedSplit`s instead: array-like enough for tf_keras' fit/predict (its array-like adapter
slices batches), for the runtimes' per-batch scoring and for calibration samples, while only
one batch is ever float32.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from toolkit.host_memory import available_memory
from toolkit.preprocess import Preprocess

# Stream when the float32 splits would take more than this share of the memory available:
# training, the passes' copies of the model and the runtimes need the rest.
STREAM_ABOVE_SHARE = 0.25
PREDICT_CHUNK_BYTES = 64 * 2**20  # float32 input preprocessed at once by predict_in_chunks


class StreamedSplit:
    """Raw samples that become float32 model inputs when indexed (a slice, an index array or
    one index), the same values `Preprocess.apply` gives the whole split at once."""

    def __init__(self, raw: np.ndarray, preprocess: Preprocess) -> None:
        self.raw = raw
        self.preprocess = preprocess
        self.shape = raw.shape
        self.dtype = np.dtype(np.float32)
        self.ndim = raw.ndim

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.preprocess.apply(self.raw[key : key + 1 if key != -1 else None])[0]
        return self.preprocess.apply(self.raw[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole split as float32: for the few consumers that need it at once (a small
        test split sent to a device); large training splits are never materialized this way."""
        whole = self.preprocess.apply(self.raw)
        return whole if dtype is None else whole.astype(dtype)


def should_stream(float_bytes: int, available: Callable[[], int | None] = available_memory) -> bool:
    """Whether float32 splits of `float_bytes` are too large to hold next to the work."""
    free = available()
    return free is not None and float_bytes > STREAM_ABOVE_SHARE * free


def chunk_size(x: Any) -> int:
    """Samples of `x` in about PREDICT_CHUNK_BYTES of float32 input."""
    return max(1, PREDICT_CHUNK_BYTES // max(1, 4 * int(np.prod(x.shape[1:]))))


def predict_in_chunks(predict: Callable[[np.ndarray], np.ndarray], x: Any) -> np.ndarray:
    """`predict` over `x` a chunk at a time: a streamed split is never float32 whole, and an
    in-memory array gives the same result in one chunk."""
    if isinstance(x, np.ndarray):
        return predict(x)
    step = chunk_size(x)
    return np.concatenate([predict(x[start : start + step]) for start in range(0, len(x), step)])

