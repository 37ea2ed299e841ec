"""The class a model's outputs predict, for class-score outputs and for single-output binary
classifiers (Keras' image-classification tutorial ends in `Dense(1)` for two classes).

A single output is read as a probability (class 1 above 0.5) when every value lies in [0, 1],
as a sigmoid gives, else as a logit (class 1 above 0). A logit model whose outputs all fall in
[0, 1] would be read as a probability; such a model predicts about 0.5 everywhere.
"""
from __future__ import annotations

import numpy as np


def top1(outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row: argmax of class scores, or the thresholded single output."""
    outputs = np.asarray(outputs)
    if not is_single_output(outputs.shape):
        return outputs.argmax(axis=-1)
    scores = outputs.reshape(len(outputs))
    probabilities = scores.size > 0 and scores.min() >= 0.0 and scores.max() <= 1.0
    return (scores > (0.5 if probabilities else 0.0)).astype(np.int64)


def is_single_output(shape: tuple[int | None, ...]) -> bool:
    """One score per sample: (N,) or (N, 1)."""
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)
