"""A re-run with fewer targets, precisions or variants removes what the earlier run made."""
from __future__ import annotations

import json

from toolkit.stale import previous_targets, remove_stale


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_only_what_this_run_made_and_picked_stays(tmp_path):
    for name in ["cpu/baseline__fp32.tflite", "cpu/baseline__int8.tflite", "cpu/prune50__fp32.tflite",
                 "cpu/my notes.txt", "onnx-cpu/baseline__fp32.onnx", "best/cpu/baseline__fp32.tflite",
                 "best/onnx-cpu/baseline__fp32.onnx", "mcu/qat__int8.tflite", "mcu/qat__int8.cc", "mcu/qat__int8.h",
                 "mcu/qat__int8_vela.tflite", "mcu/qat__int8_summary_x.csv", "mcu/qat__int8-mixed.tflite",
                 "variants/prune50/model.h5"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    records = [{"path": "cpu/baseline__fp32.tflite"}, {"path": "mcu/qat__int8.tflite"}]
    removed = remove_stale(tmp_path, records, {"cpu": "cpu/baseline__fp32.tflite", "mcu": None},
                           {"cpu", "mcu", "onnx-cpu", "gpu"})
    assert _files(tmp_path) == ["best/cpu/baseline__fp32.tflite", "cpu/baseline__fp32.tflite", "cpu/my notes.txt",
                                "mcu/qat__int8.cc", "mcu/qat__int8.h", "mcu/qat__int8.tflite",
                                "mcu/qat__int8_summary_x.csv", "mcu/qat__int8_vela.tflite", "variants/prune50/model.h5"]
    assert sorted(removed) == ["best/onnx-cpu/", "cpu/baseline__int8.tflite", "cpu/prune50__fp32.tflite",
                               "mcu/qat__int8-mixed.tflite", "onnx-cpu/baseline__fp32.onnx"]
    assert not (tmp_path / "onnx-cpu").exists()  # a target this run dropped leaves no empty folder


def test_the_earlier_targets_come_from_run_json_and_never_lead_outside(tmp_path):
    assert previous_targets(tmp_path) == set()
    (tmp_path / "run.json").write_text(json.dumps({"targets": ["cpu", "onnx-cpu", "../etc", 3]}))
    assert previous_targets(tmp_path) == {"cpu", "onnx-cpu", "../etc"}
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "a__b").write_text("x")
    assert remove_stale(tmp_path / "run", [], {}, previous_targets(tmp_path)) == []  # never outside the folder
    (tmp_path / "run.json").write_text("{")
    assert previous_targets(tmp_path) == set()


def test_a_search_sharing_the_folder_keeps_its_trials_files(tmp_path):
    for name in ["cpu/baseline__fp32.tflite", "cpu/prune50+qat__int8.tflite", "cpu/qat__int8.tflite"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "search.json").write_text(json.dumps({"trials": [{"path": "cpu/prune50+qat__int8.tflite"}, {"path": None}]}))
    removed = remove_stale(tmp_path, [{"path": "cpu/baseline__fp32.tflite"}], {"cpu": "cpu/baseline__fp32.tflite"}, {"cpu"})
    assert removed == ["cpu/qat__int8.tflite"]
