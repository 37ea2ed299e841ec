"""Every bad input → exit code 2, one line naming the problem and the fix, no partial output."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from toolkit.cli import main


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """A folder of broken inputs, made once."""
    from toolkit._tf import keras

    folder = tmp_path_factory.mktemp("bad")
    k = keras()
    good = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(10)])
    good.save(folder / "good.h5")
    good.save(folder / "good.keras")
    good.save(folder / "saved", save_format="tf")
    lam = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Lambda(lambda x: x * 2), k.layers.Dense(10)])
    lam.save(folder / "lambda.h5")
    (folder / "trunc.h5").write_bytes((folder / "good.h5").read_bytes()[:2000])
    (folder / "trunc.keras").write_bytes((folder / "good.keras").read_bytes()[:300])
    (folder / "saved_bad").mkdir()
    (folder / "saved_bad" / "saved_model.pb").write_bytes(b"garbage")
    (folder / "notes.txt").write_text("not a model")
    (folder / "trunc.tflite").write_bytes(b"TFL3" + b"\x00" * 40)
    (folder / "trunc.onnx").write_bytes(b"\x08\x07\x12\x04junk")
    _third_party_onnx(folder)
    (folder / "bad.toml").write_text("epochs = 0\n")
    (folder / "typo.toml").write_text("epoch = 3\n")
    (folder / "types.toml").write_text('epochs = "many"\n')
    (folder / "sparsity.toml").write_text('variants = [["prune:1.5"]]\n')
    (folder / "qat_fp32.toml").write_text('variants = [{chain = ["qat"], precisions = ["fp32"]}]\n')
    (folder / "empty_chain.toml").write_text('variants = [{chain = [], precisions = ["int8"]}]\n')
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.random((40, 8, 8, 1)), y_train=np.arange(40) % 10,
                  x_test=rng.random((20, 8, 8, 1)), y_test=np.arange(20) % 10)
    np.savez(folder / "nan.npz", **{**arrays, "x_train": np.full((40, 8, 8, 1), np.inf)})
    np.savez(folder / "labels.npz", **{**arrays, "y_test": np.arange(20) - 3})
    np.savez(folder / "names.npz", **{**arrays, "y_train": np.array(["cat", "dog"] * 20), "y_test": np.array(["cat", "dog"] * 10)})
    np.savez(folder / "shapes.npz", **{**arrays, "x_test": rng.random((20, 7, 8, 1))})
    np.savez(folder / "empty.npz", **{**arrays, "x_train": np.zeros((0, 8, 8, 1)), "y_train": np.zeros(0, int)})
    np.savez(folder / "few.npz", **{**arrays, "x_train": arrays["x_train"][:3], "y_train": arrays["y_train"][:3]})
    np.savez(folder / "tiny_images.npz", **{**arrays, "x_train": rng.random((40, 3, 3, 1)), "x_test": rng.random((20, 3, 3, 1))})
    (folder / "a_file").write_text("")
    for name, info in (("null_info", "null"), ("thin_info", '{"baseline": 5}')):
        (folder / name).mkdir()
        (folder / name / "results.json").write_text("[]")
        (folder / name / "run.json").write_text(info)
    for name in ("images", "images_empty"):
        for label in ("a", "b"):
            (folder / name / label).mkdir(parents=True)
            np.save(folder / name / label / "ignored.npy", np.zeros(1))  # not an image: skipped
    from PIL import Image

    for label in ("a", "b"):
        Image.new("RGB", (8, 8)).save(folder / "images" / label / "fine.png")
    (folder / "images" / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    Image.new("RGB", (8, 8)).save(folder / "images_empty" / "a" / "fine.png")
    return folder


def _third_party_onnx(folder) -> None:
    """Valid ONNX files the timing method cannot feed: open sizes, two inputs, a uint8 input."""
    import onnx
    from onnx import TensorProto, helper

    def save(name, inputs, node):
        output = helper.make_tensor_value_info("y", TensorProto.FLOAT, inputs[0][2])
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(*spec) for spec in inputs], [output])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, folder / name)

    save("open_sizes.onnx", [("x", TensorProto.FLOAT, ["N", "H", "W", "C"])], helper.make_node("Relu", ["x"], ["y"]))
    save("two_inputs.onnx", [("a", TensorProto.FLOAT, ["N", 4]), ("b", TensorProto.FLOAT, ["N", 4])],
         helper.make_node("Add", ["a", "b"], ["y"]))
    save("uint8.onnx", [("x", TensorProto.UINT8, ["N", 4])], helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT))


CASES = [
    (["run", "{d}/missing.toml"], "experiment file {d}/missing.toml does not exist"),
    (["run", "{d}/bad.toml"], "epochs must be at least 1"),
    (["run", "{d}/typo.toml"], "did you mean 'epochs'"),
    (["run", "{d}/types.toml"], "'epochs' must be int"),
    (["run", "{d}/sparsity.toml"], "prune sparsity 1.5 is out of range"),
    (["run", "{d}/qat_fp32.toml"], "variant qat with precisions ['fp32'] gives no file for the targets cpu, gpu, edgetpu, onnx-cpu (a chain ending in qat exports int8 only)"),
    (["run", "{d}/empty_chain.toml"], "a variant has an empty chain"),
    (["run", "--name", "../elsewhere"], "name '../elsewhere' is not a folder name"),
    (["run", "--model", "{d}/missing.h5"], "model file {d}/missing.h5 does not exist"),
    (["run", "--model", "{d}/trunc.h5"], "{d}/trunc.h5 is corrupt or truncated"),
    (["run", "--model", "{d}/trunc.keras"], "{d}/trunc.keras is corrupt or truncated"),
    (["run", "--model", "{d}/saved_bad"], "{d}/saved_bad is corrupt or truncated"),
    (["run", "--model", "{d}/notes.txt"], "is not a Keras model file"),
    (["run", "--model", "{d}/lambda.h5"], "contains a Lambda layer, which would run code stored in the file — if you trust the file, pass --allow-unsafe"),
    (["run", "--dataset", "npz", "--data", "{d}/nan.npz"], "x_train contains NaN or inf values"),
    (["run", "--dataset", "npz", "--data", "{d}/labels.npz"], "labels must be integer class ids"),
    (["run", "--dataset", "npz", "--data", "{d}/names.npz"], "labels must be integer class ids from 0, not <U3 values (e.g. 'cat')"),
    (["run", "--precisions", "", "--no-variants"], "nothing to build: precisions [] and 0 variant(s) give no file"),
    (["run", "--precisions", "fp16", "--no-variants", "--targets", "edgetpu"], "give no file for the targets edgetpu"),
    (["run", "--dataset", "npz", "--data", "{d}/shapes.npz"], "same sample shape"),
    (["run", "--dataset", "npz", "--data", "{d}/empty.npz"], "has no samples"),
    (["run", "--dataset", "npz", "--data", "{d}/few.npz"], "too few to calibrate"),
    (["run", "--dataset", "npz", "--data", "{d}/tiny_images.npz", "--model", "cnn"], "cnn needs images of at least 4x4 pixels"),
    (["run", "--dataset", "folder", "--data", "{d}/images"], "broken.png is not a readable image"),
    (["run", "--dataset", "folder", "--data", "{d}/images_empty"], "images_empty/b has no images"),
    (["run", "--dataset", "folder", "--data", "{d}/nowhere"], "image folder {d}/nowhere does not exist"),
    (["run", "--dataset", "folder", "--data", "{d}/a_file"], "image folder {d}/a_file is a file, not a folder"),
    (["run", "--dataset", "folder"], "dataset 'folder' needs a folder"),
    (["run", "--preprocess", "zscore"], "preprocess 'zscore' is not understood"),
    (["run", "--image-size", "96"], "image_size '96' is not WIDTHxHEIGHT"),
    (["run", "--model", "mobilenet_v2:alpah=1"], "did you mean 'alpha'"),
    (["run", "--model", "mobilenet_v2"], "mobilenet_v2 needs images of at least 32x32 pixels"),
    (["run", "--targets", "cpu,tpu"], "unknown target 'tpu'"),
    (["run", "--targets", "cpu,onnx-cpu,cpu"], "targets lists cpu more than once"),
    (["run", "--precisions", "int8,fp32,int8"], "precisions lists int8 more than once"),
    (["run", "--max-accuracy-drop", "nan"], "max_accuracy_drop must be a number from 0 (got nan)"),
    (["run", "--output", "{d}/a_file/runs"], "cannot write to the output folder {d}/a_file/runs"),
    (["bench", "{d}/trunc.tflite"], "not a loadable TFLite model"),
    (["bench", "{d}/trunc.onnx"], "trunc.onnx is not a valid ONNX model"),
    (["bench", "{d}/notes.txt"], "neither .tflite nor .onnx"),
    (["bench", "{d}/open_sizes.onnx"], "input x is shaped ['N', 'H', 'W', 'C']: the method needs a batch dimension first and fixed sizes"),
    (["bench", "{d}/two_inputs.onnx"], "two_inputs.onnx has 2 inputs (a, b)"),
    (["bench", "{d}/uint8.onnx"], "uint8.onnx's input x is a tensor(uint8)"),
    (["check", "{d}/trunc.tflite", "--target", "edgetpu"], "{d}/trunc.tflite is neither a TFLite flatbuffer nor an .onnx file"),
    (["check", "{d}/missing.tflite", "--target", "cpu"], "model file {d}/missing.tflite does not exist"),
    (["report", "{d}"], "{d} has no results.json"),
    (["report", "{d}/null_info"], "{d}/null_info/run.json is not a run's info"),
    (["report", "{d}/thin_info"], "{d}/thin_info's run.json or results.json lacks what the report shows"),
]


def tree(folder):
    """Every file and folder under `folder` with its size and modification time."""
    return {str(path.relative_to(folder)): (path.is_dir(), path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*")}


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(c[0]).replace("{d}/", "") for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(bad_files, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [arg.format(d=bad_files) for arg in argv]
    if argv[0] == "run" and "--output" not in argv:
        argv += ["--output", str(tmp_path / "runs")]
    before = tree(tmp_path), tree(bad_files)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("edgesmith: error:") and "\n" not in err, err
    assert message.format(d=bad_files) in err
    assert " — " in err, "the line names the fix after the problem"
    assert not (tmp_path / "runs").exists(), "a failed run must not leave a run folder"
    assert (tree(tmp_path), tree(bad_files)) == before, "nothing is written: not in the working folder, not next to the inputs"


def test_no_traceback_reaches_the_terminal(bad_files):
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", "--model", str(bad_files / "trunc.h5"), "--output", str(bad_files / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgesmith: error:")


@pytest.mark.parametrize("argv", [["--debug", "report", "{d}"], ["run", "{d}/missing.toml", "--debug"]], ids=["before", "after"])
def test_debug_shows_the_traceback_of_a_bad_input(bad_files, tmp_path, argv):
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", *(arg.format(d=bad_files) for arg in argv)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Traceback (most recent call last):" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("toolkit.errors.") and ("has no results.json" in last or "missing.toml does not exist" in last), last
