"""A deterministic quantization-hostile model, for the tests and benchmarks/fallback.py.

One hidden unit is made dead (always 0 after ReLU) and the next layer gets huge weights on
that unit. The float model ignores them (they multiply an exact 0), but int8 weight scales are
set by the largest weight of each output channel, so every real weight of that layer rounds to
0: accuracy collapses, and only that layer is to blame.
"""
from __future__ import annotations

from typing import Any

import numpy as np

HOSTILE = "hostile"
OUTLIER = 1000.0


def build_hostile(data: Any, epochs: int = 3, seed: int = 0) -> Any:
    """Train a small MLP (flatten → dense → `hostile` dense → logits) on `data`, then plant the
    outlier weights. The float accuracy is unchanged by the plant: the outliers meet an exact 0."""
    from toolkit._tf import keras
    from toolkit.train import fit

    layers = keras().layers
    inputs = keras().Input(data.input_shape)
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(32, activation="relu", name="dense")(x)
    x = layers.Dense(32, activation="relu", name=HOSTILE)(x)
    logits = layers.Dense(data.num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(logits)
    model = keras().Model(inputs, outputs, name="mlp")
    fit(model, data, epochs=epochs, batch_size=64, learning_rate=5e-3, patience=epochs, seed=seed, log=lambda line: None)
    plant_outlier(model)
    return model


def plant_outlier(model: Any) -> None:
    """Kill unit 0 of `dense` (zero weights, negative bias) and give `hostile` weights of
    ±OUTLIER on it, one per output channel."""
    kernel, bias = model.get_layer("dense").get_weights()
    kernel[:, 0], bias[0] = 0.0, -1.0
    model.get_layer("dense").set_weights([kernel, bias])
    kernel, bias = model.get_layer(HOSTILE).get_weights()
    kernel[0, :] = OUTLIER * np.where(np.arange(kernel.shape[1]) % 2, 1.0, -1.0)
    model.get_layer(HOSTILE).set_weights([kernel, bias])
