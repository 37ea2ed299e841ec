"""What compression leaves in the exported TFLite flatbuffer, measured on the file itself."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.passes import apply_chain, parse_chain
from toolkit.passes.sparsity import m_by_n_report, tflite_sparsity, tflite_weights

PRUNED_2_OF_4 = {"conv_b", "hidden", "logits"}  # conv_a has 1 input channel and stays dense


@pytest.fixture(scope="module")
def two_of_four(teacher, make_context):
    return apply_chain(teacher, parse_chain(["prune:2:4"]), make_context()).model


@pytest.fixture(scope="module")
def prune80_qat(teacher, make_context):
    return apply_chain(teacher, parse_chain(["prune:0.8", "qat"]), make_context()).model


def _layer_of(tensor_name: str) -> str:
    return next(layer for layer in ("conv_a", "conv_b", "hidden", "logits") if f"/{layer}/" in tensor_name)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_two_of_four_survives_conversion(precision, two_of_four, to_tflite):
    report = m_by_n_report(to_tflite(two_of_four, precision), m=2, n=4)
    assert {_layer_of(entry["tensor"]) for entry in report} == PRUNED_2_OF_4
    assert all(entry["groups"] > 0 and entry["violations"] == 0 for entry in report), report


def test_two_of_four_check_flags_a_dense_model(teacher, to_tflite):
    report = m_by_n_report(to_tflite(teacher, "fp32"), m=2, n=4)
    assert len(report) == len(PRUNED_2_OF_4)
    assert all(entry["violations"] > entry["groups"] // 2 for entry in report)


def test_pruned_qat_int8_keeps_sparsity_and_accuracy(prune80_qat, to_tflite, tflite_accuracy, small_digits):
    model_bytes = to_tflite(prune80_qat, "int8")
    weights = tflite_sparsity(model_bytes)
    assert len(weights) == 4
    assert all(entry["sparsity"] >= 0.78 for entry in weights), weights
    assert all(weight.values.dtype == np.int8 for weight in tflite_weights(model_bytes))
    keras_top1 = prune80_qat.predict(small_digits.x_test, verbose=0).argmax(axis=1)
    keras_accuracy = float((keras_top1 == small_digits.y_test).mean())
    assert tflite_accuracy(model_bytes, small_digits.x_test, small_digits.y_test) >= keras_accuracy - 0.03


def test_fp16_weights_are_read_behind_their_dequantize(two_of_four, to_tflite):
    weights = tflite_weights(to_tflite(two_of_four, "fp16"))
    assert len(weights) == 4 and all(weight.values.dtype == np.float16 for weight in weights)
    sparsity = {_layer_of(weight.name): float(weight.is_zero().mean()) for weight in weights}
    assert sparsity == pytest.approx({"conv_a": 0.0, "conv_b": 0.5, "hidden": 0.5, "logits": 0.5}, abs=0.01)


def test_clustered_export_has_at_most_that_many_values(teacher, make_context, to_tflite):
    model = apply_chain(teacher, parse_chain(["cluster:8"]), make_context(epochs=1)).model
    weights = tflite_weights(to_tflite(model, "fp32"))
    assert len(weights) == 4
    assert all(np.unique(weight.values).size <= 8 for weight in weights)


def _scaling_inside_model(small_digits):
    """The digits CNN fed raw pixel values (0–16), with its input scaling as layers: Keras'
    tutorial style (Rescaling) followed by a Normalization, as EfficientNet has."""
    from toolkit._tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1))
    x = k.layers.Rescaling(1 / 16, name="to_unit")(inputs)
    x = k.layers.Normalization(mean=0.3, variance=0.1, name="standardize")(x)
    x = k.layers.Conv2D(8, 3, activation="relu")(x)
    x = k.layers.Flatten()(x)
    model = k.Model(inputs, k.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=k.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(small_digits.x_train * 16, small_digits.y_train, epochs=8, batch_size=32, verbose=0)
    return model


@pytest.mark.parametrize("chain", [["qat"], ["prune:0.5", "qat"]])
def test_qat_quantizes_input_scaling_layers_and_the_int8_file_follows_it(chain, small_digits, make_context, tmp_path):
    """Rescaling and Normalization inside the model become frozen 1×1 depthwise convolutions:
    QAT runs, the int8 file computes what the QAT model computes, and the variant reloads."""
    from toolkit.benchmark.device_runners import LiteRTRunner, predict
    from toolkit.converters.tflite import convert_to_file
    from toolkit.passes import load_variant_model, save_variant_model

    model = _scaling_inside_model(small_digits)
    raw = dict(x_train=small_digits.x_train * 16, x_val=small_digits.x_val * 16)
    result = apply_chain(model, parse_chain(chain), make_context(epochs=1, teacher=model, **raw))
    path = convert_to_file(result.model, tmp_path / "qat.tflite", "int8", calibration_x=raw["x_train"][:64])
    raw_test = small_digits.x_test * 16
    keras_qat = result.model.predict(raw_test, verbose=0)
    int8 = predict(LiteRTRunner(path, reference_kernels=True), raw_test)  # portable integer math: the same on every CPU
    assert (int8.argmax(axis=1) == keras_qat.argmax(axis=1)).mean() >= 0.97
    assert np.abs(int8 - keras_qat).max() < 0.05
    assert (int8.argmax(axis=1) == small_digits.y_test).mean() > 0.8
    save_variant_model(result, tmp_path / "model.h5")
    reloaded = load_variant_model(tmp_path / "model.h5", parse_chain(chain))
    np.testing.assert_allclose(reloaded.predict(raw_test, verbose=0), keras_qat, atol=1e-6)
