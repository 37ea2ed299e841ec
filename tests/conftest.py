"""Shared fixtures: the digits data and a tiny trained model, built once per session."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def tiny_model(digits):
    """A small trained MLP: enough accuracy that quantization errors would show."""
    from toolkit.models import build
    from toolkit.train import fit

    model = build("mlp", digits.input_shape, digits.num_classes, width=0.5)
    fit(model, digits, epochs=8, batch_size=64, learning_rate=5e-3, patience=3, seed=0, log=lambda line: None)
    return model


@pytest.fixture(scope="session")
def tiny_reference(tiny_model, digits) -> np.ndarray:
    """Raw outputs of the Keras model on the test split."""
    return tiny_model.predict(digits.x_test, verbose=0)
