"""Tiny int8 models exported as the microcontroller targets export them (batch 1, int8 I/O),
built once per session. Weights stay random: memory, ops and agreement depend on the graph."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from toolkit._tf import keras

INPUT_SHAPE = (8, 8, 1)


def build(layers_of: Callable, input_shape: tuple[int, ...] = INPUT_SHAPE):
    """Input -> `layers_of(layers, x)` -> softmax, with a fixed seed."""
    keras().utils.set_random_seed(0)
    layers = keras().layers
    inputs = keras().Input(shape=input_shape, batch_size=1)
    return keras().Model(inputs, layers.Softmax()(layers_of(layers, inputs)))


def export(model, path: Path, input_shape: tuple[int, ...] = INPUT_SHAPE) -> Path:
    """Full int8 with int8 I/O and batch 1, through the pipeline's own converter."""
    from toolkit.converters.tflite import convert_to_file

    calibration = np.random.default_rng(0).random((16, *input_shape), dtype=np.float32)
    return convert_to_file(model, path, "int8", calibration_x=calibration, int8_io_dtype="int8", fixed_batch=True)


def _small_cnn(layers, x):
    x = layers.Conv2D(8, 3, activation="relu", bias_initializer="ones")(x)
    x = layers.MaxPooling2D()(x)
    return layers.Dense(10, bias_initializer="ones")(layers.Flatten()(x))


def _wide_activations(layers, x):
    """A 128×128×16 int8 activation (256 KiB) from a few hundred weights: an arena that a
    256 KB-RAM board cannot hold, in a file of a few kilobytes."""
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(10)(x)


def _gelu(layers, x):
    x = layers.Conv2D(4, 3, bias_initializer="ones")(x)
    x = layers.Activation("gelu")(x)
    return layers.Dense(10, bias_initializer="ones")(layers.Flatten()(x))


@pytest.fixture(scope="session")
def mcu_models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mcu-models")


@pytest.fixture(scope="session")
def small_cnn(mcu_models) -> Path:
    return export(build(_small_cnn), mcu_models / "small_cnn__int8.tflite")


@pytest.fixture(scope="session")
def wide_activations(mcu_models) -> Path:
    return export(build(_wide_activations, (128, 128, 1)), mcu_models / "wide__int8.tflite", (128, 128, 1))


@pytest.fixture(scope="session")
def gelu_model(mcu_models) -> Path:
    return export(build(_gelu), mcu_models / "gelu__int8.tflite")


@pytest.fixture(scope="session")
def samples() -> np.ndarray:
    return np.random.default_rng(1).random((64, *INPUT_SHAPE), dtype=np.float32)
