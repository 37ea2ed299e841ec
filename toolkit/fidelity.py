"""How faithfully an artifact reproduces the full model, and checks of the full model itself.

Top-1 agreement says nothing about a regression, embedding or autoencoder output and little
about how close a quantized classifier's scores are; SQNR and cosine similarity of the raw
outputs against the full model's do, for any output. The full-model checks (chance level,
BatchNorm in train vs inference mode) are what the report needs to tell a real gain from a
broken baseline.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from toolkit.task import CLASSIFICATION, REGRESSION, score_outputs

BATCHNORM_SAMPLES = 512
BATCHNORM_BATCH = 64  # train-mode BatchNorm normalizes with the statistics of each batch


def output_fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """SQNR in dB (signal: the full model's outputs; noise: the difference) and the mean
    per-sample cosine similarity. SQNR is None where it is infinite (identical outputs) or
    undefined (all-zero reference)."""
    outputs = outputs.reshape(len(outputs), -1).astype(np.float64)
    reference = reference.reshape(len(reference), -1).astype(np.float64)
    noise = float(np.sum((outputs - reference) ** 2))
    signal = float(np.sum(reference**2))
    sqnr = round(10 * float(np.log10(signal / noise)), 2) if noise > 0 and signal > 0 else None
    norms = np.linalg.norm(outputs, axis=1) * np.linalg.norm(reference, axis=1)
    both_zero = (np.abs(outputs).sum(axis=1) == 0) & (np.abs(reference).sum(axis=1) == 0)
    cosine = np.divide(np.sum(outputs * reference, axis=1), norms, out=both_zero.astype(np.float64), where=norms > 0)
    return {"sqnr_db": sqnr, "cosine": round(float(cosine.mean()), 6)}


def chance_accuracy(y: np.ndarray) -> float:
    """Accuracy of always answering the most common test label: what "near chance" compares to."""
    return float(np.bincount(y).max() / len(y))


def batchnorm_check(model: Any, x: np.ndarray, y: np.ndarray, seed: int, task: str = CLASSIFICATION) -> dict[str, Any] | None:
    """Accuracy (a regression: MAE) with BatchNorm in inference mode (stored moving statistics)
    and in train mode (each batch's own statistics) on a test sample. A large gap means the
    inputs' statistics differ from those the moving averages hold: stale statistics, or
    different preprocessing.

    Dropout is switched off for the train-mode pass and every weight (including the moving
    averages train mode updates) is restored afterwards. None when the model has no BatchNorm.
    """
    from toolkit._tf import keras

    layers = keras().layers
    if not any(isinstance(layer, layers.BatchNormalization) for layer in _all_layers(model)):
        return None
    index = np.random.default_rng(seed).permutation(len(x))[:BATCHNORM_SAMPLES]
    x, y = x[index], y[index]
    metric = "mae" if task == REGRESSION else "accuracy"
    inference = _score(model, x, y, training=False, task=task)[metric]
    weights = model.get_weights()
    dropouts = [layer for layer in _all_layers(model) if isinstance(layer, layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        train = _score(model, x, y, training=True, task=task)[metric]
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate
        model.set_weights(weights)
    return {"samples": len(x), "batch": BATCHNORM_BATCH, f"inference_mode_{metric}": inference, f"train_mode_{metric}": train}


def _score(model: Any, x: np.ndarray, y: np.ndarray, training: bool, task: str) -> dict[str, float]:
    batches = [np.asarray(model(x[i : i + BATCHNORM_BATCH], training=training)) for i in range(0, len(x), BATCHNORM_BATCH)]
    return score_outputs(np.concatenate(batches), y, task)


def _all_layers(model: Any) -> list[Any]:
    found = []
    for layer in model.layers:
        found += _all_layers(layer) if hasattr(layer, "layers") else [layer]
    return found
