"""Tiny real TFLite models, built and converted once per session, for the compatibility checks.

Weights stay at their random initialisation: placement depends on the graph, not on accuracy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from toolkit._tf import keras, tf

INPUT_SHAPE = (8, 8, 1)


def build_cnn(middle: Callable | None = None, batch: int | None = 1, head: Callable | None = None):
    """conv(relu) -> max-pool -> [middle] -> flatten -> dense -> softmax (or `head`)."""
    layers = keras().layers
    keras().utils.set_random_seed(0)
    inputs = keras().Input(shape=INPUT_SHAPE, batch_size=batch)
    x = layers.Conv2D(4, 3, activation="relu", bias_initializer="ones")(inputs)
    x = layers.MaxPooling2D()(x)
    if middle is not None:
        x = middle(x)
    x = layers.Flatten()(x)
    x = layers.Dense(10, bias_initializer="ones")(x)  # non-zero: the converter drops zero biases
    outputs = head(x) if head is not None else layers.Softmax()(x)
    return keras().Model(inputs, outputs)


def to_tflite(model, precision: str, io_dtype: str = "uint8") -> bytes:
    """fp32, fp16 or dynamic-range (weights only), or full int8 with integer I/O, as the pipeline exports them."""
    tensorflow = tf()
    converter = tensorflow.lite.TFLiteConverter.from_keras_model(model)
    if precision == "dynamic":
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
    elif precision == "fp16":
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tensorflow.float16]
    elif precision == "int8":
        rng = np.random.default_rng(0)
        converter.optimizations = [tensorflow.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.random((1, *INPUT_SHAPE), dtype=np.float32)] for _ in range(8))
        converter.target_spec.supported_ops = [tensorflow.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tensorflow, io_dtype)
        converter.inference_output_type = getattr(tensorflow, io_dtype)
    return converter.convert()


@pytest.fixture(autouse=True)
def built_in_targets_only(monkeypatch):
    """A user's EDGESMITH_TARGETS_DIR must not change what the shipped profiles are tested as."""
    monkeypatch.delenv("EDGESMITH_TARGETS_DIR", raising=False)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("check-models")


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _gelu(x):
    return keras().layers.Activation("gelu")(x)


def _log_softmax(x):
    return keras().layers.Lambda(lambda t: tf().nn.log_softmax(t))(x)


@pytest.fixture(scope="session")
def int8_model(models_dir) -> Path:
    """conv/relu/pool/dense, full int8 with uint8 I/O, batch fixed to 1: what edgetpu exports."""
    return _write(models_dir, "cnn_int8.tflite", to_tflite(build_cnn(), "int8"))


@pytest.fixture(scope="session")
def float_io_int8_model(models_dir) -> Path:
    """Full int8 inside, float32 I/O: QUANTIZE first and DEQUANTIZE last."""
    return _write(models_dir, "cnn_int8_float_io.tflite", to_tflite(build_cnn(), "int8", io_dtype="float32"))


@pytest.fixture(scope="session")
def gelu_int8_model(models_dir) -> Path:
    """The same model with a GELU (no Edge TPU kernel) between the pool and the dense layer."""
    return _write(models_dir, "cnn_gelu_int8.tflite", to_tflite(build_cnn(middle=_gelu), "int8"))


@pytest.fixture(scope="session")
def float_model(models_dir) -> Path:
    return _write(models_dir, "cnn_fp32.tflite", to_tflite(build_cnn(), "fp32"))


@pytest.fixture(scope="session")
def fp16_model(models_dir) -> Path:
    return _write(models_dir, "cnn_fp16.tflite", to_tflite(build_cnn(), "fp16"))


@pytest.fixture(scope="session")
def dynamic_range_model(models_dir) -> Path:
    """int8 weights, float activations: the CPU's "dynamic" precision."""
    return _write(models_dir, "cnn_dynamic.tflite", to_tflite(build_cnn(), "dynamic"))


@pytest.fixture(scope="session")
def dynamic_batch_int8_model(models_dir) -> Path:
    """Full int8 but with the batch left dynamic (shape signature -1)."""
    return _write(models_dir, "cnn_dynbatch_int8.tflite", to_tflite(build_cnn(batch=None), "int8"))


@pytest.fixture(scope="session")
def log_softmax_model(models_dir) -> Path:
    """fp32 with LOG_SOFTMAX as the head: an op the GPU delegate has no kernel for."""
    return _write(models_dir, "cnn_logsoftmax_fp32.tflite", to_tflite(build_cnn(head=_log_softmax), "fp32"))


@pytest.fixture(scope="session")
def split_by_log_softmax_model(models_dir) -> Path:
    """fp32 with LOG_SOFTMAX right after the conv: splits the graph into a short and a long run."""
    return _write(models_dir, "cnn_mid_logsoftmax_fp32.tflite",
                  to_tflite(build_cnn(middle=_log_softmax), "fp32"))
