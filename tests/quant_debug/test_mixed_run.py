"""`edgesmith run --float-fallback`: the int8-mixed precision beside int8, in the run's records and reports."""
from __future__ import annotations

import json

import pytest

from toolkit.config import from_dict
from toolkit.errors import EdgesmithError
from toolkit.pipeline import run


@pytest.fixture(scope="module")
def mixed_run(hostile_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    hostile_model.save(folder / "hostile.h5")
    experiment = from_dict({"model": str(folder / "hostile.h5"), "variants": [], "precisions": ["fp32", "int8"],
                            "targets": ["cpu", "onnx-cpu", "edgetpu"], "float_fallback": "auto:2",
                            "bench_runs": 10, "calibration_samples": 64, "output": str(folder / "runs")})
    lines: list[str] = []
    return run(experiment, log=lines.append), lines, experiment


def _records(run_dir):
    return {(r["target"], r["precision"]): r for r in json.loads((run_dir / "results.json").read_text())}


def test_mixed_keeps_the_hostile_layer_float_and_recovers_the_loss(mixed_run):
    run_dir, _, _ = mixed_run
    records = _records(run_dir)
    for target in ("cpu", "onnx-cpu"):
        int8, mixed = records[(target, "int8")], records[(target, "int8-mixed")]
        assert mixed["float_layers"] == ["hostile"]
        assert mixed["fallback"]["layers"][0]["name"] == "hostile"
        assert [step["float_layers"] for step in mixed["fallback"]["steps"]] == [[], ["hostile"]]
        lost = mixed["fallback"]["float_accuracy"] - int8["accuracy"]
        assert lost > 0.2 and mixed["accuracy"] - int8["accuracy"] >= lost / 2
        assert mixed["path"] == f"{target}/baseline__int8-mixed.{mixed['format']}"
        assert (run_dir / mixed["path"]).is_file() and mixed["sha256"] != int8["sha256"]
        assert mixed["latency_ms"]["p50"] > 0


def test_int8_only_target_gets_no_mixed_file_and_says_why(mixed_run):
    run_dir, lines, _ = mixed_run
    assert ("edgetpu", "int8") in _records(run_dir) and ("edgetpu", "int8-mixed") not in _records(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    assert set(info["float_fallback"]["refused"]) == {"edgetpu"}
    assert any("no int8-mixed on edgetpu" in line and "quantization-aware" in line for line in lines)


def test_reports_explain_the_fallback(mixed_run):
    run_dir, _, _ = mixed_run
    report = (run_dir / "report.md").read_text()
    assert "keeping `hostile` in float recovers" in report
    html = (run_dir / "report.html").read_text()
    assert "Per-layer int8 error" in html and "hostile" in html


def test_a_second_run_reuses_the_mixed_exports(mixed_run):
    run_dir, _, experiment = mixed_run
    before = _records(run_dir)
    lines: list[str] = []
    run(experiment, log=lines.append)
    assert not any(line.startswith("[fallback] baseline") for line in lines)
    after = _records(run_dir)
    assert after[("cpu", "int8-mixed")]["float_layers"] == before[("cpu", "int8-mixed")]["float_layers"]
    assert after[("cpu", "int8-mixed")]["sha256"] == before[("cpu", "int8-mixed")]["sha256"]


@pytest.mark.parametrize("value", ["auto:0", "auto:x", ","])
def test_bad_fallback_is_refused_before_the_run(value):
    with pytest.raises(EdgesmithError, match="fallback .* is not understood"):
        from_dict({"float_fallback": value})
