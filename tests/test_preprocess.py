"""Preprocess specs: parsing, errors, the affine map, and the datasets' unchanged defaults."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.config import Experiment
from toolkit.errors import EdgesmithError
from toolkit.preprocess import parse_preprocess


@pytest.mark.parametrize("spec, raw, expected", [
    ("scale:1/255", 255.0, 1.0),
    ("scale:0.5", 4.0, 2.0),
    ("none", 7.0, 7.0),
    ("mobilenet", 0.0, -1.0),
    ("mobilenet", 255.0, 1.0),
    ("mean_std:127.5,127.5", 255.0, 1.0),
])
def test_specs_map_raw_values(spec, raw, expected):
    preprocess = parse_preprocess(spec)
    assert preprocess.apply(np.array([[raw]]))[0, 0] == pytest.approx(expected)
    scale, offset = preprocess.affine()
    assert raw * scale[0] + offset[0] == pytest.approx(expected)


def test_per_channel_mean_std():
    preprocess = parse_preprocess("mean_std:123.675,116.28,103.53/58.395,57.12,57.375")
    pixel = np.full((1, 1, 1, 3), 200.0)
    expected = (200 - np.array([123.675, 116.28, 103.53])) / np.array([58.395, 57.12, 57.375])
    np.testing.assert_allclose(preprocess.apply(pixel)[0, 0, 0], expected, rtol=1e-6)
    assert preprocess.to_dict()["scale"] == pytest.approx(list(1 / np.array([58.395, 57.12, 57.375])))


@pytest.mark.parametrize("spec, message", [
    ("scale", "is not a number"),
    ("scale:0", "positive factor"),
    ("scale:1/0", "is not a number"),
    ("mobilenet:2", "takes no arguments"),
    ("mean_std:1", "needs a mean and a std"),
    ("mean_std:1,2,3/1,2", "3 means but 2 stds"),
    ("mean_std:0,0", "std that is not positive"),
    ("zscore", "is not understood"),
    ("scale:inf", "not a finite number"),
])
def test_bad_specs_say_how_to_write_them(spec, message):
    with pytest.raises(EdgesmithError, match=message):
        parse_preprocess(spec)


def test_experiment_validates_data_options_up_front():
    with pytest.raises(EdgesmithError, match="is not understood"):
        Experiment(preprocess="imagenet")
    with pytest.raises(EdgesmithError, match="WIDTHxHEIGHT"):
        Experiment(image_size="big")
    with pytest.raises(EdgesmithError, match="needs a folder"):
        Experiment(dataset="folder")
    assert Experiment(model="mobilenet_v2:alpha=0.35").run_name == "digits-mobilenet_v2-alpha-0.35"


def test_existing_datasets_keep_their_scaling(digits):
    assert digits.preprocess.spec == "scale:1/16"
    assert digits.x_train.max() == pytest.approx(1.0)


@pytest.mark.parametrize("spec, how", [
    ("none", "feed the pixel values as float32"),
    ("mobilenet", "feed the pixel values × 0.00784314 − 1 as float32"),
    ("scale:1/255", "feed the pixel values × 0.00392157 as float32"),
])
def test_float_input_advice_is_a_plain_formula(tmp_path, spec, how):
    """An ONNX QDQ file takes floats: the advice is the preprocessing written out, without a
    `× 1` or a `+ -0`."""
    import onnx
    from onnx import TensorProto, helper

    from toolkit.raw_input import raw_input

    tensor = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", tensor[:1], tensor[1:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "model.onnx")
    advice = raw_input(tmp_path / "model.onnx", parse_preprocess(spec), "uint8")
    assert advice["how"] == f"float input: {how} (the model quantizes it itself)" and not advice["raw_bytes_as_is"]
