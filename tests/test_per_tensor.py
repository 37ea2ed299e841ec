"""`per_channel = false` in a target profile: post-training int8 with one weight scale per tensor."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.targets import derive_profile, load_target, per_channel


def _per_tensor_profile(folder: Path, base: str) -> str:
    return derive_profile(base, f"{base}-per-tensor", folder, per_channel=False)


@pytest.fixture(scope="module")
def model_and_data():
    from toolkit._tf import keras

    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1)).astype(np.float32)
    keras().utils.set_random_seed(0)
    inputs = keras().layers.Input((8, 8, 1))
    hidden = keras().layers.DepthwiseConv2D(3, padding="same", activation="relu")(inputs)
    hidden = keras().layers.Conv2D(16, 3, activation="relu")(hidden)
    model = keras().Model(inputs, keras().layers.Dense(4)(keras().layers.Flatten()(hidden)))
    return model, x


def test_the_profile_key_is_read_and_defaults_to_per_channel(tmp_path):
    assert per_channel(load_target("cpu")) is True
    assert per_channel(load_target(_per_tensor_profile(tmp_path, "cpu"), tmp_path)) is False


def _weight_scale_counts(path: Path) -> list[int]:
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    return [len(tensor.quantization.scale) for tensor in model.subgraphs[0].tensors
            if tensor.type == schema.TensorType.INT8 and model.buffers[tensor.buffer].data is not None]


def _int8_exports(tmp_path: Path, model_and_data, runtime_name: str, base: str, suffix: str) -> dict[str, Path]:
    """{profile name: its int8 file} for the built-in profile `base` and its per-tensor copy."""
    from toolkit.runtimes import runtime_named

    model, x = model_and_data
    runtime = runtime_named(runtime_name)
    exports = {}
    for name in (base, _per_tensor_profile(tmp_path / "profiles", base)):
        target = load_target(name, tmp_path / "profiles")
        exports[name] = runtime.export(model, tmp_path / f"{name}.{suffix}", target, "int8", x, 17, False)
    return exports


def test_tflite_int8_weights_get_one_scale_per_tensor(tmp_path, model_and_data):
    from toolkit.runtimes import runtime_named

    both = _int8_exports(tmp_path, model_and_data, "litert", "cpu", "tflite")
    assert max(_weight_scale_counts(both["cpu"])) == 16  # the Conv2D's 16 output channels
    assert set(_weight_scale_counts(both["cpu-per-tensor"])) == {1}
    assert both["cpu-per-tensor"].stat().st_size < both["cpu"].stat().st_size
    litert = runtime_named("litert")
    assert litert.export_spec(load_target("cpu-per-tensor", tmp_path / "profiles"), "int8", 17)["per_channel"] is False
    assert "per_channel" not in litert.export_spec(load_target("cpu"), "int8", 17)  # cache keys of other targets unchanged


def test_onnx_int8_weights_get_one_scale_per_tensor(tmp_path, model_and_data):
    import onnx
    from onnx import numpy_helper

    shapes = {}
    for name, path in _int8_exports(tmp_path, model_and_data, "onnxruntime", "onnx-cpu", "onnx").items():
        graph = onnx.load(str(path)).graph
        scales = [numpy_helper.to_array(init) for init in graph.initializer if init.name.endswith("_scale")]
        shapes[name] = sorted({value.size for value in scales})
    assert shapes["onnx-cpu"][-1] > 1 and shapes["onnx-cpu-per-tensor"] == [1]
