"""explain end to end on a model with one quantization-hostile layer: ranked first on TFLite
and ONNX, and `auto` fallback recovers at least half the lost accuracy with ≤ 2 float layers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.errors import EdgesmithError
from toolkit.quant_debug import explain_model, parse_fallback
from toolkit.targets import load_target


@pytest.mark.parametrize("target", ["cpu", "onnx-cpu"])
def test_hostile_layer_ranked_first_and_auto_fallback_recovers(hostile_model, digits, tmp_path, target):
    result = explain_model(hostile_model, load_target(target), digits, tmp_path, parse_fallback("auto:2"), samples=100)
    lost = result.float_accuracy - result.int8.accuracy
    assert lost > 0.2, "the planted outliers must really break int8"
    assert result.layers[0].layer == "hostile"
    assert result.layers[0].share > 0.5
    assert result.layers[0].sqnr_db < min(row.sqnr_db for row in result.layers if row.layer == "dense")
    final = result.steps[-1]
    assert result.steps[0].float_layers == () and 1 <= len(final.float_layers) <= 2
    assert final.accuracy - result.int8.accuracy >= lost / 2
    assert final.size_bytes > result.int8.size_bytes  # float weights cost bytes
    assert "comes from `hostile`; keeping it in float recovers" in result.findings()
    assert json.loads(json.dumps(result.to_dict()))["layers"][0]["name"] == "hostile"
    if target == "onnx-cpu":
        assert _loaded_ops(final.path, tmp_path) == {"hostile": "Gemm", "dense": "QGemm", "logits": "QGemm"}


def _loaded_ops(path, folder):
    """The op ONNX Runtime runs for each Dense layer once its optimizer has loaded the file: the
    float layer stays float (not re-quantized), its neighbours keep their integer kernels."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / "loaded.onnx")
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(str(folder / "loaded.onnx")).graph.node
    return {node.name.split("/")[1]: node.op_type for node in nodes if node.op_type in ("Gemm", "QGemm")}


def test_named_fallback_keeps_exactly_those_layers(hostile_model, digits, tmp_path):
    result = explain_model(hostile_model, load_target("cpu"), digits, tmp_path, parse_fallback("dense"), samples=50)
    assert [step.float_layers for step in result.steps] == [(), ("dense",)]
    assert result.steps[1].accuracy < result.float_accuracy - 0.2  # the wrong layer does not help
    with pytest.raises(EdgesmithError, match="no quantized layer is named 'nope'"):
        explain_model(hostile_model, load_target("cpu"), digits, tmp_path, parse_fallback("nope"), samples=20)


@pytest.mark.parametrize("target", ["edgetpu", "mcu-cortex-m4"])
def test_int8_only_target_refuses_fallback_and_suggests_qat(hostile_model, digits, tmp_path, target):
    with pytest.raises(EdgesmithError, match="refused.*int8 only.*quantization-aware training"):
        explain_model(hostile_model, load_target(target), digits, tmp_path, parse_fallback("auto"))


def test_int8_only_target_still_ranks_layers_and_says_why_not_float(hostile_model, digits, tmp_path):
    result = explain_model(hostile_model, load_target("edgetpu"), digits, tmp_path, samples=30)
    assert result.layers[0].layer == "hostile" and result.top_float is None and result.steps == []
    assert "edgetpu runs int8 only" in result.findings() and "QAT" in result.findings()


def test_cli_explain_json_and_refusal(hostile_model, tmp_path, capsys):
    from toolkit.cli import main

    hostile_model.save(tmp_path / "hostile.h5")
    code = main(["explain", str(tmp_path / "hostile.h5"), "--json", "--samples", "50", "--fallback", "auto:1",
                 "--output", str(tmp_path / "out")])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["layers"][0]["name"] == "hostile"
    assert [step["float_layers"] for step in document["fallback"]] == [[], ["hostile"]]
    assert main(["explain", str(tmp_path / "hostile.h5"), "--target", "edgetpu", "--fallback", "auto"]) == 2
    assert "int8 only" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "hostile.h5"), "--target", "gpu"]) == 2
    assert "gpu has no int8 export" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "hostile.h5"), "--dataset", "npz", "--data", str(_npz(tmp_path))]) == 2
    assert "shaped (4, 4, 1) but the model takes (8, 8, 1)" in capsys.readouterr().err


def _npz(folder):
    import numpy as np

    x, y = np.zeros((20, 4, 4, 1), np.float32), np.arange(20) % 2
    np.savez(folder / "small.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    return folder / "small.npz"


def test_api_explain_reads_a_run_folder_with_its_data_settings(hostile_model, tmp_path):
    import toolkit as edgesmith

    run_dir = tmp_path / "run"
    (run_dir / "baseline").mkdir(parents=True)
    hostile_model.save(run_dir / "baseline" / "model.h5")
    config = {"dataset": "digits", "seed": 0, "calibration_samples": 64}
    (run_dir / "manifest.json").write_text(json.dumps({"config": config}))
    result = edgesmith.explain(run_dir, "cpu", samples=30)
    assert result.layers[0].layer == "hostile" and result.top_float is not None
    assert result.top_float.float_layers == ("hostile",) and result.steps == []
    assert Path(result.int8.path).parent == run_dir / "explain" / "cpu"
    assert result.top_float.accuracy - result.int8.accuracy > 0.2


def test_a_model_file_sets_the_folders_image_size_and_preprocessing_as_in_run(write_images, tmp_path):
    """A model that rescales its own input, explained on a folder of mixed-size photos: the
    images are read at the model's input size and not scaled a second time, as `run` does."""
    from toolkit._tf import keras
    from toolkit.quant_debug.inputs import resolve

    k = keras()
    model = k.Sequential([k.layers.Input((16, 20, 3)), k.layers.Rescaling(1 / 255), k.layers.Flatten(), k.layers.Dense(2)])
    model.save(tmp_path / "own_scaling.h5")
    write_images(tmp_path / "photos", {"a": 6, "b": 6}, size=(20, 16))
    write_images(tmp_path / "photos", {"a": 2, "b": 2}, size=(12, 12), seed=1)  # overwrites a few: mixed sizes
    lines: list[str] = []
    subject = resolve(tmp_path / "own_scaling.h5", dataset={"dataset": "folder", "data": str(tmp_path / "photos")},
                      log=lines.append)
    assert tuple(subject.data.input_shape) == (16, 20, 3)  # the first image is 12x12
    assert subject.data.preprocessing["spec"] == "none" and subject.data.x_test.max() > 1  # raw pixels: the model scales
    assert any("image_size = 20x16" in line for line in lines) and any("preprocess = none" in line for line in lines)


def test_an_int8_file_that_scores_higher_is_said_to_gain():
    from toolkit.quant_debug.result import int8_change

    assert int8_change(3.104) == "int8 lost 3.10 pp" and int8_change(0.0) == "int8 lost 0.00 pp"
    assert int8_change(-6.667) == "int8 gained 6.67 pp"  # 2 of 30 test images: never "lost -6.67 pp"
