"""Post-training quantization: each precision converts, runs in LiteRT and keeps accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.benchmark.harness import score
from toolkit.benchmark.runners import LiteRTRunner, open_runner, predict
from toolkit.converters.tflite import convert_to_file
from toolkit.errors import EdgesmithError

TENSOR_TYPES = {"fp32": np.float32, "fp16": np.float32, "dynamic": np.float32, "int8": np.int8}


@pytest.fixture(scope="module")
def exported(tiny_model, digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ptq")
    calibration = digits.calibration_sample(64, seed=0)
    return {
        precision: convert_to_file(tiny_model, folder / f"{precision}.tflite", precision, calibration_x=calibration)
        for precision in ("fp32", "fp16", "dynamic", "int8")
    }


@pytest.mark.parametrize("precision", ["fp32", "fp16", "dynamic", "int8"])
def test_each_precision_runs_and_keeps_accuracy(exported, precision, digits, tiny_reference):
    quality = score(exported[precision], digits.x_test, digits.y_test, tiny_reference)
    assert quality["agreement"] >= 0.95
    assert quality["cosine"] >= 0.95 and (quality["sqnr_db"] is None or quality["sqnr_db"] > 10)
    runner = LiteRTRunner(exported[precision])
    assert runner.interpreter.get_input_details()[0]["dtype"] == TENSOR_TYPES[precision]


def test_fp32_matches_keras_logits(exported, tiny_model, digits):
    keras_scores = tiny_model.predict(digits.x_test, verbose=0)
    tflite_scores = predict(open_runner(exported["fp32"]), digits.x_test)
    np.testing.assert_allclose(tflite_scores, keras_scores, atol=1e-5)


def test_sizes_shrink_with_precision(exported):
    sizes = {precision: path.stat().st_size for precision, path in exported.items()}
    assert sizes["fp16"] < sizes["fp32"]
    assert sizes["int8"] < sizes["fp16"]
    assert sizes["dynamic"] < sizes["fp16"]


def test_int8_with_uint8_io_and_fixed_batch(tiny_model, digits, tmp_path):
    path = convert_to_file(
        tiny_model, tmp_path / "edge.tflite", "int8",
        calibration_x=digits.calibration_sample(64, 0), int8_io_dtype="uint8", fixed_batch=True,
    )
    runner = LiteRTRunner(path)
    detail = runner.interpreter.get_input_details()[0]
    assert detail["dtype"] == np.uint8
    assert list(detail["shape_signature"]) == [1, 8, 8, 1] and not runner.batch_dynamic
    assert predict(runner, digits.x_test[:5]).shape == (5, 10)


def test_int8_without_calibration_is_refused(tiny_model, tmp_path):
    with pytest.raises(EdgesmithError, match="needs calibration samples"):
        convert_to_file(tiny_model, tmp_path / "x.tflite", "int8", calibration_x=np.zeros((0, 8, 8, 1)))


def test_corrupt_tflite_is_one_clear_error(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(EdgesmithError, match="not a loadable TFLite model"):
        open_runner(path)


def test_a_graph_the_frozen_route_refuses_converts_through_a_saved_model(tiny_model, digits, tmp_path, monkeypatch):
    """The fast route freezes the inference function; a model it cannot take still converts the
    way TensorFlow converts Keras models by default, and gives the same outputs."""
    from toolkit.converters import tflite

    fast = convert_to_file(tiny_model, tmp_path / "fast.tflite", "fp32")

    def refuses(model, fixed_batch):
        raise ValueError("frozen route refused this graph")

    monkeypatch.setattr(tflite, "_frozen_converter", refuses)
    slow = convert_to_file(tiny_model, tmp_path / "slow.tflite", "fp32")
    np.testing.assert_array_equal(predict(open_runner(slow), digits.x_test), predict(open_runner(fast), digits.x_test))
    monkeypatch.setattr(tflite, "_saved_model_converter", refuses)
    with pytest.raises(EdgesmithError, match="frozen route refused this graph"):
        convert_to_file(tiny_model, tmp_path / "neither.tflite", "fp32")
    assert not (tmp_path / "neither.tflite").exists()
