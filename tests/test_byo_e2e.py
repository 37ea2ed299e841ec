"""End to end with the user's own things: Keras 3 model files on a PNG folder the test writes,
and each preprocessing mode against Keras' own evaluation of the model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import toolkit._tf  # noqa: F401 - selects tf_keras for TensorFlow before Keras 3 imports it
from toolkit.errors import EdgesmithError

keras3 = pytest.importorskip("keras")

CLASSES = ("circle", "hstripe", "vstripe")
SMALL = ["--epochs", "1", "--finetune-epochs", "1", "--bench-runs", "20", "--calibration-samples", "8"]


def _write_split(write_images, folder, size, train, test):
    write_images(folder / "train", dict.fromkeys(CLASSES, train), size)
    write_images(folder / "test", dict.fromkeys(CLASSES, test), size, seed=1)
    return folder


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory, write_images):
    """train/ and test/ class folders of 16×16 pattern PNGs (train 12, test 6 per class)."""
    return _write_split(write_images, tmp_path_factory.mktemp("pngs"), (16, 16), train=12, test=6)


def _raw_test(folder):
    """The test folder's pixels and labels, read here independently of edgesmith's loader."""
    return _raw_split(folder, "test")


def _raw_split(folder, split):
    x, y = [], []
    for label, name in enumerate(CLASSES):
        for path in sorted((folder / split / name).glob("*.png")):
            x.append(np.asarray(Image.open(path).convert("RGB"), np.float32))
            y.append(label)
    return np.stack(x), np.array(y)


def _train_keras3(folder, preprocess, layers=(), batchnorm=False, epochs=12):
    """A small Keras 3 CNN trained on the train folder under `preprocess` (a numpy function);
    `batchnorm` puts conv → BatchNorm → ReLU, the block QAT folds."""
    k = keras3
    k.utils.set_random_seed(0)
    x, y = [], []
    for label, name in enumerate(CLASSES):
        for path in sorted((folder / "train" / name).glob("*.png")):
            x.append(np.asarray(Image.open(path).convert("RGB"), np.float32))
            y.append(label)
    block = [k.layers.Conv2D(8, 3), k.layers.BatchNormalization(momentum=0.5), k.layers.ReLU()] if batchnorm else [
        k.layers.Conv2D(8, 3, activation="relu")]
    model = k.Sequential([k.Input(x[0].shape), *layers, *block, k.layers.MaxPooling2D(), k.layers.Flatten(),
                          k.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=k.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(preprocess(np.stack(x)), np.array(y), epochs=epochs, batch_size=8, verbose=0)
    return model


def _edgesmith(*args, cwd):
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True, timeout=1200)


def _fp32_matches_keras3(run_dir, model, x):
    from toolkit.benchmark.runners import open_runner, predict

    records = json.loads((run_dir / "results.json").read_text())
    fp32 = next(r for r in records if r["variant"] == "baseline" and r["target"] == "cpu" and r["precision"] == "fp32")
    difference = np.abs(predict(open_runner(run_dir / fp32["path"]), x) - model.predict(x, verbose=0)).max()
    assert difference <= 1e-4, difference
    return records


@pytest.mark.slow
def test_keras3_cnn_file_on_a_png_folder_with_default_chains(png_folder, tmp_path):
    """With augmentation inside the model, as Keras' image-classification tutorial writes it."""
    model = _train_keras3(png_folder, lambda x: x / 255, layers=(keras3.layers.RandomFlip("horizontal"),), batchnorm=True)
    model.save(tmp_path / "cnn.keras")
    result = _edgesmith("run", *SMALL, "--dataset", "folder", "--data", str(png_folder), "--model", str(tmp_path / "cnn.keras"),
                        "--targets", "cpu,edgetpu,onnx-cpu", "--output", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "folder-cnn"
    x, _ = _raw_test(png_folder)
    records = _fp32_matches_keras3(run_dir, model, x / 255)
    assert {"prune80+qat", "qat", "distill", "scratch"} <= {r["variant"] for r in records}
    assert all(r["cosine"] is not None and "sqnr_db" in r for r in records)
    edgetpu = next(r for r in records if r["target"] == "edgetpu" and r["variant"] == "baseline")
    assert edgetpu["raw_input"]["raw_bytes_as_is"] and edgetpu["raw_input"]["input_dtype"] == "uint8"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["classes"] == list(CLASSES) and info["preprocessing"]["spec"] == "scale:1/255"
    assert "Classes (3): circle, hstripe, vstripe" in (run_dir / "report.md").read_text()
    assert "raw pixels into the full model's int8 file on edgetpu: feed raw uint8 pixels as they are" in result.stdout


def test_a_model_that_scales_its_own_input_gets_preprocess_none(png_folder, tmp_path):
    """Keras' tutorial model: augmentation, then Rescaling(1/255), inside the model. With
    preprocess unset the run feeds raw pixels (x/255 on top would score near chance) and says
    so; the scaling is found inside a nested model too, and a model without one keeps the
    dataset's default."""
    from toolkit.config import from_dict
    from toolkit.model_inputs import own_input_scaling
    from toolkit.pipeline import run

    k = keras3
    k.utils.set_random_seed(0)
    augment = k.Sequential([k.layers.RandomFlip("horizontal"), k.layers.RandomRotation(0.1)], name="augment")
    model = k.Sequential([k.Input((16, 16, 3)), augment, k.layers.Rescaling(1 / 255, name="to_unit"),
                          k.layers.Conv2D(8, 3, activation="relu"), k.layers.GlobalAveragePooling2D(),
                          k.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=k.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(*_raw_split(png_folder, "train"), epochs=10, batch_size=8, verbose=0)
    model.save(tmp_path / "tutorial.keras")
    wrapped = k.Sequential([k.Input((16, 16, 3)), model])
    wrapped.save(tmp_path / "wrapped.keras")
    plain = k.Sequential([k.Input((16, 16, 3)), k.layers.Flatten(), k.layers.Dense(3)])
    plain.save(tmp_path / "plain.keras")
    assert own_input_scaling(tmp_path / "tutorial.keras") == own_input_scaling(tmp_path / "wrapped.keras") == "'to_unit' (Rescaling)"
    assert own_input_scaling(tmp_path / "plain.keras") is None
    inputs = k.Input((16, 16, 3))  # keras.applications' preprocess_input inside the model: x / 127.5 - 1
    scaled = k.Model(inputs, k.layers.Dense(3)(k.layers.Flatten()(k.applications.mobilenet_v2.preprocess_input(inputs))))
    scaled.save(tmp_path / "scaled.keras")
    assert own_input_scaling(tmp_path / "scaled.keras").endswith("(TrueDivide)")

    lines: list[str] = []
    settings = {"dataset": "folder", "data": str(png_folder), "model": str(tmp_path / "tutorial.keras"), "variants": [],
                "precisions": ["fp32"], "targets": ["cpu"], "bench_runs": 10, "output": str(tmp_path / "runs")}
    run_dir = run(from_dict(settings), log=lines.append)
    assert any("preprocess = none: the model scales its own input (layer 'to_unit' (Rescaling))" in line for line in lines)
    info = json.loads((run_dir / "run.json").read_text())
    x_test, y_test = _raw_test(png_folder)
    keras_accuracy = float((model.predict(x_test, verbose=0).argmax(axis=1) == y_test).mean())
    assert info["preprocessing"]["spec"] == "none" and info["baseline"]["accuracy"] == pytest.approx(keras_accuracy)
    assert keras_accuracy > 0.6
    chosen = run(from_dict({**settings, "preprocess": "scale:1/255", "name": "as-set"}), log=lines.append)
    assert json.loads((chosen / "run.json").read_text())["preprocessing"]["spec"] == "scale:1/255"


def _attention_model(folder):
    """A Keras 3 CNN with a self-attention block over its feature map: MultiHeadAttention has
    no tf_keras translation, so the model is kept as it is."""
    k = keras3
    k.utils.set_random_seed(0)
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(k.layers.Rescaling(1 / 255)(inputs))
    tokens = k.layers.Reshape((64, 8))(x)
    x = k.layers.MultiHeadAttention(2, 4, name="attention")(tokens, tokens)
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling1D()(x)))
    model.compile(optimizer=k.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    x_train, y_train = _raw_split(folder, "train")
    model.fit(x_train, y_train, epochs=5, batch_size=8, verbose=0)
    return model


@pytest.mark.slow
def test_keras3_model_without_translation_gets_its_post_training_precisions(png_folder, tmp_path):
    model = _attention_model(png_folder)
    model.save(tmp_path / "attention.keras")
    arguments = [*SMALL, "--dataset", "folder", "--data", str(png_folder), "--preprocess", "none",
                 "--model", str(tmp_path / "attention.keras"), "--targets", "cpu,onnx-cpu",
                 "--train-threads", "1"]  # the same thread count in the pool's workers gives the same bytes
    result = _edgesmith("run", *arguments, "--output", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Keras 3 model kept as it is: layer 'attention' (MultiHeadAttention) has no tf_keras translation" in result.stderr
    run_dir = tmp_path / "runs" / "folder-attention"
    x, _ = _raw_test(png_folder)
    records = _fp32_matches_keras3(run_dir, model, x)
    assert {r["variant"] for r in records} == {"baseline"}
    assert {(r["target"], r["precision"]) for r in records} >= {("cpu", "int8"), ("onnx-cpu", "int8"), ("cpu", "fp16")}
    info = json.loads((run_dir / "run.json").read_text())
    assert info["baseline"]["path"] == "baseline/model.keras"
    skipped = {entry["variant"]: entry["reason"] for entry in info["skipped"]}
    assert set(skipped) == {"prune80+qat", "qat", "distill", "scratch"}
    assert all("only the full model's post-training precisions run" in reason for reason in skipped.values())
    # the same run in the process pool: its worker reloads the kept Keras 3 model from model.keras
    pooled = _edgesmith("run", *arguments, "--executor", "processes", "--output", str(tmp_path / "pooled"), cwd=tmp_path)
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    again = {(r["target"], r["precision"]): r for r in json.loads((tmp_path / "pooled" / "folder-attention" / "results.json").read_text())}
    assert set(again) == {(r["target"], r["precision"]) for r in records}
    for record in records:  # tf2onnx names folded constants in a per-process order: ONNX bytes may differ, results not
        twin = again[(record["target"], record["precision"])]
        assert twin["accuracy"] == record["accuracy"] and (record["format"] == "onnx" or twin["sha256"] == record["sha256"])
    (tmp_path / "search.toml").write_text(
        f'dataset = "folder"\ndata = "{png_folder}"\npreprocess = "none"\nmodel = "{tmp_path / "attention.keras"}"\n'
        f'targets = ["cpu"]\noutput = "{tmp_path / "search"}"\n\n[search]\nprune = [0.3, 0.8]\nprecision = ["fp32", "int8"]\n')
    search = _edgesmith("search", str(tmp_path / "search.toml"), "--trials", "2", cwd=tmp_path)
    assert search.returncode != 0 and "a search needs the compression passes" in search.stderr


@pytest.mark.slow
def test_keras3_mobilenet_v2_file_through_the_pipeline(tmp_path, write_images):
    """MobileNetV2(alpha=0.35) at 96×96 as saved by Keras 3: translated, exported and measured.

    Without compression chains, to keep CI short (with them it took 817 s when each of its 14
    TFLite conversions took about 35 s; they take about 3 s now): the chains themselves run on a
    Keras 3 file in the cnn test above and on MobileNetV2's graph in tests/passes."""
    from toolkit.config import from_dict
    from toolkit.data import load_configured
    from toolkit.pipeline import run

    folder = _write_split(write_images, tmp_path / "pngs", (96, 96), train=4, test=2)
    keras3.utils.set_random_seed(0)
    model = keras3.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None, classes=3)
    data = load_configured({"dataset": "folder", "data": str(folder)})
    for layer in model.layers:  # as initialized every prediction is 1/3: give BatchNorm the data's statistics
        if isinstance(layer, keras3.layers.BatchNormalization):
            layer.momentum = 0.0
    model(data.x_train, training=True)
    model.save(tmp_path / "mobilenet.keras")
    assert model.predict(data.x_test, verbose=0).std(axis=0).min() > 1e-2
    experiment = from_dict({"dataset": "folder", "data": str(folder), "model": str(tmp_path / "mobilenet.keras"),
                            "variants": [], "bench_runs": 10, "bench_batch": 1, "calibration_samples": 4,
                            "precisions": ["fp32", "int8"], "targets": ["cpu"], "output": str(tmp_path / "runs")})
    run_dir = run(experiment, log=lambda line: None)
    records = _fp32_matches_keras3(run_dir, model, data.x_test)
    assert sorted(r["precision"] for r in records) == ["fp32", "int8"]


@pytest.mark.slow
@pytest.mark.parametrize("spec, preprocess, layers", [
    ("scale:1/255", lambda x: x / 255, ()),
    ("mobilenet", lambda x: x / 127.5 - 1, ()),
    ("mean_std:120,110,100/60,50,40", lambda x: (x - [120, 110, 100]) / [60, 50, 40], ()),
    ("none", lambda x: x, (keras3.layers.Rescaling(1 / 255),)),
])
def test_each_preprocessing_mode_scores_what_keras_scores(png_folder, tmp_path, spec, preprocess, layers):
    from toolkit.config import from_dict
    from toolkit.pipeline import run

    model = _train_keras3(png_folder, preprocess, layers)
    x, y = _raw_test(png_folder)
    keras_accuracy = model.evaluate(preprocess(x).astype(np.float32), y, verbose=0)[1]
    assert keras_accuracy > 0.5  # a trained model, so a wrong preprocessing would show
    model.save(tmp_path / "model.keras")
    experiment = from_dict({"dataset": "folder", "data": str(png_folder), "model": str(tmp_path / "model.keras"),
                            "preprocess": spec, "variants": [], "precisions": ["fp32"], "targets": ["cpu"],
                            "bench_runs": 10, "output": str(tmp_path / "runs")})
    run_dir = run(experiment, log=lambda line: None)
    info = json.loads((run_dir / "run.json").read_text())
    fp32 = json.loads((run_dir / "results.json").read_text())[0]
    assert info["preprocessing"]["spec"] == spec
    assert info["baseline"]["accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)
    assert fp32["accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)


def test_a_folder_is_read_at_the_model_files_input_size_and_channels(png_folder, tmp_path):
    """16×16 RGB pictures for a model declaring 24×24 grayscale input: with image_size and color
    unset the folder is read as the model expects; set otherwise, the error names the fix."""
    from toolkit.config import from_dict
    from toolkit.model_inputs import declared_input_shape
    from toolkit.pipeline import run

    k = keras3
    model = k.Sequential([k.Input((24, 24, 1)), k.layers.Conv2D(4, 3, activation="relu"), k.layers.GlobalAveragePooling2D(),
                          k.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "gray.keras")
    model.save(tmp_path / "gray.h5")
    assert declared_input_shape(tmp_path / "gray.keras") == declared_input_shape(tmp_path / "gray.h5") == (24, 24, 1)
    lines: list[str] = []
    settings = {"dataset": "folder", "data": str(png_folder), "model": str(tmp_path / "gray.keras"), "variants": [],
                "precisions": ["fp32"], "targets": ["cpu"], "bench_runs": 10, "output": str(tmp_path / "runs")}
    run_dir = run(from_dict(settings), log=lines.append)
    assert any("image_size = 24x24, color = grayscale: the model's input" in line for line in lines)
    source = json.loads((run_dir / "run.json").read_text())["data_source"]
    assert source["image_size"] == "24x24" and source["color"] == "grayscale" and source["resized_images"] > 0
    for wrong in ({"image_size": "16x16", "color": "grayscale"}, {"image_size": "24x24", "color": "rgb"}):
        with pytest.raises(EdgesmithError, match='set image_size = "24x24" and color = "grayscale"'):
            run(from_dict({**settings, **wrong}), log=lines.append)


def test_a_model_with_open_input_sizes_gets_the_datas_sizes(png_folder, tmp_path):
    """`Input((None, None, 3))`: rebuilt at the folder's 16×16 (weights kept), since converters and
    edge runtimes need static shapes; the TFLite file computes what the open model computes."""
    from toolkit._tf import keras
    from toolkit.config import from_dict
    from toolkit.model_files import load_user_model
    from toolkit.pipeline import run

    k = keras3
    k.utils.set_random_seed(0)
    inputs = k.Input((None, None, 3))
    x = k.layers.Conv2D(4, 3, activation="relu")(k.layers.Rescaling(1 / 255)(inputs))
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(k.layers.GlobalAveragePooling2D()(x)))
    model.save(tmp_path / "open.keras")
    lines: list[str] = []
    settings = {"dataset": "folder", "data": str(png_folder), "model": str(tmp_path / "open.keras"), "variants": [],
                "preprocess": "none", "precisions": ["fp32", "int8"], "targets": ["cpu"], "bench_runs": 10,
                "output": str(tmp_path / "runs")}
    run_dir = run(from_dict(settings), log=lines.append)
    assert any("input (None, None, 3) fixed to the data's (16, 16, 3)" in line for line in lines)
    x_test, _ = _raw_test(png_folder)
    _fp32_matches_keras3(run_dir, model, x_test)
    tk = keras()
    plain = tk.Sequential([tk.layers.Conv2D(4, 3, input_shape=(None, None, 3)), tk.layers.GlobalAveragePooling2D()])
    plain.save(tmp_path / "open.h5")
    loaded = load_user_model(tmp_path / "open.h5", sample=x_test)
    assert loaded.input_shape == (None, 16, 16, 3)
    np.testing.assert_allclose(loaded.predict(x_test, verbose=0), plain.predict(x_test, verbose=0), atol=1e-5)


def _binary_model(folder, activation):
    """Keras' image-classification tutorial for two classes: a Rescaling layer, one output, a
    logit (activation None) or a probability ("sigmoid"), trained with binary cross-entropy."""
    k = keras3
    k.utils.set_random_seed(0)
    inputs = k.Input((16, 16, 3))
    x = k.layers.Conv2D(8, 3, activation="relu")(k.layers.Rescaling(1 / 255)(inputs))
    model = k.Model(inputs, k.layers.Dense(1, activation=activation)(k.layers.GlobalAveragePooling2D()(x)))
    model.compile(optimizer=k.optimizers.Adam(1e-2), loss=k.losses.BinaryCrossentropy(from_logits=activation is None))
    x_train, y_train = _raw_split(folder, "train")
    model.fit(x_train, y_train, epochs=15, batch_size=8, verbose=0)
    return model


@pytest.mark.slow
def test_a_binary_classifier_with_one_output(tmp_path, write_images):
    """Class 1 where the logit is above 0 (or the sigmoid above 0.5), as Keras' own accuracy
    reads it; pruning and QAT fine-tune it with binary cross-entropy; distillation, which needs
    class scores, is skipped saying so."""
    folder = tmp_path / "pngs"
    for split, count, seed in (("train", 16, 0), ("test", 8, 1)):
        write_images(folder / split, dict.fromkeys(CLASSES[:2], count), (16, 16), seed=seed)
    x_test, y_test = _raw_split(folder, "test")
    for activation in (None, "sigmoid"):
        model = _binary_model(folder, activation)
        scores = model.predict(x_test, verbose=0)[:, 0]
        keras_accuracy = float(((scores > (0.5 if activation else 0.0)) == y_test).mean())
        name = f"binary-{activation or 'logit'}"
        model.save(tmp_path / f"{name}.keras")
        variants = ["--variant", "prune:0.5", "--variant", "qat", "--variant", "distill"] if activation is None else ["--no-variants"]
        result = _edgesmith("run", *SMALL, "--dataset", "folder", "--data", str(folder), "--preprocess", "none", "--model",
                            str(tmp_path / f"{name}.keras"), "--targets", "cpu", *variants, "--output", str(tmp_path / "runs"),
                            cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        records = json.loads((tmp_path / "runs" / f"folder-{name}" / "results.json").read_text())
        fp32 = next(r for r in records if r["variant"] == "baseline" and r["precision"] == "fp32")
        assert fp32["accuracy"] == pytest.approx(keras_accuracy) and keras_accuracy >= 0.75
        if activation is None:
            assert {"prune50", "qat"} <= {r["variant"] for r in records}
            skipped = json.loads((tmp_path / "runs" / f"folder-{name}" / "run.json").read_text())["skipped"]
            assert {entry["variant"] for entry in skipped} == {"distill", "scratch"}
            assert all("distillation needs class scores" in entry["reason"] for entry in skipped)
