"""The Python API, through the README's own example (executed as written) and its edges."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import toolkit as edgesmith
from toolkit.errors import EdgesmithError

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_example() -> str:
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its Python API example"
    return match.group(1)


@pytest.mark.slow
def test_readme_api_example_runs_and_returns_data(tmp_path, capsys):
    os.chdir(tmp_path)  # the example writes runs/ and cnn_int8.onnx into the working folder
    namespace: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), namespace)

    result = namespace["result"]
    assert result.run_dir == Path("runs") / "arrays-cnn" and (result.run_dir / "results.json").is_file()
    assert {(r.target, r.variant, r.precision) for r in result.records} >= {
        ("cpu", "baseline", "fp32"), ("cpu", "qat", "int8"), ("onnx-cpu", "qat", "int8")}
    assert all(isinstance(r, edgesmith.Record) and 0 <= r.accuracy <= 1 for r in result.records)
    assert result.info["dataset"] == "arrays" and set(result.best) == {"cpu", "onnx-cpu"}
    assert namespace["report"].target == "edgetpu" and isinstance(namespace["report"].compatible, bool)
    assert namespace["timing"]["runs"] >= 100 and namespace["timing"]["latency_ms"]["p50"] > 0
    winner = namespace["choice"].winner
    assert winner is None or (winner.target == "cpu" and winner.accuracy_drop_pp <= 1.0)
    assert winner is None or result.best["cpu"] == winner.path
    onnx_int8 = namespace["onnx_int8"]
    assert onnx_int8 == Path("cnn_int8.onnx") and edgesmith.check(onnx_int8, "onnx-cpu").compatible
    printed = capsys.readouterr().out
    assert "qat" in printed and "[bench]" not in printed  # records printed by the example, no progress


def test_experiment_constructor_validates_like_the_toml_loader():
    assert edgesmith.Experiment(targets="cpu").targets == ("cpu",)  # one name, not 'c', 'p', 'u'
    with pytest.raises(EdgesmithError, match="'epochs' must be int"):
        edgesmith.Experiment(epochs="3")
    with pytest.raises(EdgesmithError, match="'targets' must be a list of strings"):
        edgesmith.Experiment(targets=["cpu", 3])


def test_bad_api_input_is_a_clear_error(tmp_path):
    with pytest.raises(EdgesmithError, match="lacks y_test"):
        edgesmith.run({"targets": ["cpu"]}, data={"x_train": np.zeros((4, 8)), "y_train": np.zeros(4, int),
                                                  "x_test": np.zeros((4, 8))})
    with pytest.raises(EdgesmithError, match="int8 needs calibration samples"):
        edgesmith.convert(object(), "cpu", "int8")
    with pytest.raises(EdgesmithError, match="unknown precision 'int4'"):
        edgesmith.convert(object(), "cpu", "int4")
    with pytest.raises(EdgesmithError, match="has no results.json"):
        edgesmith.select(tmp_path, "cpu")
    with pytest.raises(EdgesmithError, match="lacks format, precision, path, accuracy"):
        edgesmith.select([{"variant": "a", "target": "cpu"}], "cpu")
    for budget in ({"max_accuracy_drop": -1}, {"max_accuracy_drop": "1"}, {"max_size_kb": float("nan")}):
        with pytest.raises(EdgesmithError, match="must be a number from 0"):
            edgesmith.select([], "cpu", **budget)
    with pytest.raises(EdgesmithError, match="cannot select from a NoneType"):
        edgesmith.select(None, "cpu")
    with pytest.raises(EdgesmithError, match="a model file's path is a str or Path, not a int"):
        edgesmith.check(5, "cpu")
    for count in ({"runs": 0}, {"runs": "10"}, {"runs": 10.5}, {"threads": 0}, {"batch": -1}):
        with pytest.raises(EdgesmithError, match="must be a whole number from 1"):
            edgesmith.bench(tmp_path / "model.tflite", **count)
    with pytest.raises(EdgesmithError, match="does not end in .onnx, the format onnx-cpu gets"):
        edgesmith.convert(object(), "onnx-cpu", "fp32", output=tmp_path / "model.tflite")
    assert list(tmp_path.iterdir()) == []


def test_api_functions_stay_functions_after_every_subpackage_is_imported():
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(edgesmith.__path__, "toolkit."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in edgesmith.__all__:
        assert not isinstance(getattr(edgesmith, name), type(edgesmith)), f"toolkit.{name} is shadowed by a module"
