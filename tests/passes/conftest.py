"""Fixtures for the pass tests: a slice of digits, a tiny trained CNN teacher, a context, a converter.

The teacher's layers are chosen so every pass has something to do: the first conv has one
input channel (too few for 2:4, stays dense), the rest have input channels divisible by 4.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from toolkit.passes import PassContext


@pytest.fixture(scope="session")
def small_digits():
    from toolkit.data import digits

    images, target = digits()
    order = np.random.default_rng(0).permutation(len(target))
    x, y = images[order] / np.float32(16.0), target[order]
    return SimpleNamespace(x_train=x[:480], y_train=y[:480], x_val=x[480:640], y_val=y[480:640], x_test=x[640:800], y_test=y[640:800])


def _tiny_cnn(name: str = "tiny_cnn"):
    from toolkit._tf import keras

    layers = keras().layers
    inputs = layers.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    x = layers.Conv2D(8, 3, activation="relu", name="conv_b")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    x = layers.Dense(10, name="logits")(x)
    outputs = layers.Activation("softmax", name="probabilities")(x)
    return keras().Model(inputs, outputs, name=name)


@pytest.fixture(scope="session")
def teacher(small_digits):
    """Trained for a few epochs: good enough that accuracy after a pass means something."""
    from toolkit._tf import keras

    keras().utils.set_random_seed(0)
    model = _tiny_cnn()
    model.compile(optimizer=keras().optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(small_digits.x_train, small_digits.y_train, epochs=12, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def make_context(small_digits, teacher):
    def make(**overrides) -> PassContext:
        settings = dict(
            x_train=small_digits.x_train, y_train=small_digits.y_train,
            x_val=small_digits.x_val, y_val=small_digits.y_val,
            num_classes=10, input_shape=(8, 8, 1), epochs=2, batch_size=32, learning_rate=2e-3,
            seed=0, teacher=teacher, log=lambda line: None,
        )
        settings.update(overrides)
        return PassContext(**settings)

    return make


@pytest.fixture(scope="session")
def to_tflite(small_digits, tmp_path_factory):
    """The bytes a run writes: the toolkit's own TFLite export (fp32, fp16, dynamic, or int8
    calibrated on a training sample, with int8 I/O)."""
    from toolkit.converters.tflite import convert_to_file

    folder = tmp_path_factory.mktemp("tflite")

    def convert(model, precision: str) -> bytes:
        path = convert_to_file(model, folder / f"{len(list(folder.iterdir()))}.tflite", precision,
                               calibration_x=small_digits.x_train[:64])
        return path.read_bytes()

    return convert


@pytest.fixture(scope="session")
def tflite_accuracy(tmp_path_factory):
    """Top-1 accuracy of TFLite bytes, scored the way a run scores them (the toolkit's runner:
    int8 inputs quantized with the file's own scale and zero point)."""
    from toolkit.benchmark.runners import open_runner, predict

    folder = tmp_path_factory.mktemp("scored")

    def accuracy(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
        path = folder / f"{len(list(folder.iterdir()))}.tflite"
        path.write_bytes(model_bytes)
        return float((predict(open_runner(path), x).argmax(axis=1) == y).mean())

    return accuracy
