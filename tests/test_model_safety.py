"""Model files as programs and archives: SavedModels that touch files, zip bombs, large archives,
and paths with spaces and non-ASCII names."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from toolkit import model_safety
from toolkit.errors import EdgesmithError
from toolkit.model_files import load_user_model

SAMPLE = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)


def _model():
    from toolkit._tf import keras

    k = keras()
    return k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A plain SavedModel, and one that also carries a function reading a file."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("saved models ü")
    _model().save(folder / "plain model", save_format="tf")
    leaky = _model()
    leaky.leak = tf.function(lambda: tf.io.read_file("/etc/hostname"), input_signature=[])
    leaky.save(folder / "leaky", save_format="tf")
    return folder


def test_a_plain_savedmodel_in_a_non_ascii_path_with_spaces_loads(saved_models):
    assert not model_safety.saved_model_ops(saved_models / "plain model") & model_safety.HOSTILE_OPS.keys()
    model = load_user_model(saved_models / "plain model")
    assert model.predict(SAMPLE, verbose=0).shape == (4, 10)


def test_a_savedmodel_that_reads_files_is_refused_naming_the_op(saved_models):
    with pytest.raises(EdgesmithError) as refused:
        load_user_model(saved_models / "leaky")
    assert "holds TensorFlow ops that reads files (ReadFile)" in refused.value.problem
    assert "--allow-unsafe" in refused.value.fix
    assert load_user_model(saved_models / "leaky", allow_unsafe=True).predict(SAMPLE, verbose=0).shape == (4, 10)


def test_a_zip_bomb_keras_file_is_refused_before_unpacking(tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("model.weights.h5", "w") as member:
        chunk = bytes(1 << 20)
        for _ in range(model_safety.BOMB_MIN_BYTES >> 20):
            member.write(chunk)
    assert bomb.stat().st_size < model_safety.BOMB_MIN_BYTES // model_safety.BOMB_RATIO
    with pytest.raises(EdgesmithError, match=r"bomb.keras looks like a zip bomb: model.weights.h5 unpacks \d+× to 64 MB"):
        load_user_model(bomb)


def test_a_keras_file_larger_than_the_free_memory_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    _model().save(path)
    monkeypatch.setattr(model_safety, "available_memory", lambda: 1000)
    with pytest.raises(EdgesmithError, match=r"model.keras unpacks to 0.0 MB, more than the 0.0 MB of memory available"):
        load_user_model(path)
    monkeypatch.setattr(model_safety, "available_memory", lambda: None)
    assert load_user_model(path).predict(SAMPLE, verbose=0).shape == (4, 10)


@pytest.mark.slow
def test_a_run_with_spaces_and_non_ascii_in_every_path(tmp_path):
    import json
    import subprocess
    import sys

    folder = tmp_path / "mödel dir ü"
    folder.mkdir()
    _model().save(folder / "my model é.h5")
    output = tmp_path / "out dir ß"
    result = subprocess.run([sys.executable, "-m", "toolkit", "run", "--model", str(folder / "my model é.h5"), "--no-variants",
                             "--targets", "cpu", "--precisions", "fp32,int8", "--bench-runs", "20", "--output", str(output),
                             "--name", "naïve run"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads((output / "naïve run" / "results.json").read_text())
    assert {(r["precision"], (output / "naïve run" / r["path"]).is_file()) for r in records} == {("fp32", True), ("int8", True)}


@pytest.mark.parametrize("kind", [".keras", "SavedModel"])
def test_a_lambda_layer_is_refused_in_keras_and_savedmodel_files(kind, tmp_path):
    from toolkit._tf import keras

    k = keras()
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Lambda(lambda x: x * 2), k.layers.Dense(10)])
    path = tmp_path / ("lambda.keras" if kind == ".keras" else "lambda saved")
    model.save(path) if kind == ".keras" else model.save(path, save_format="tf")
    with pytest.raises(EdgesmithError, match="contains a Lambda layer, which would run code stored in the file"):
        load_user_model(path)
