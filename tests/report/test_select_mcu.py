"""select_best for microcontroller targets: estimated latency is never compared with measured
latency, and artifacts rank by fit, then accuracy, then the estimate."""
from __future__ import annotations

import pytest

from toolkit.errors import EdgesmithError
from toolkit.records import Record
from toolkit.selection import artifact_name, describe, select_best


def _mcu(name, accuracy, estimate, fits=True, blockers=(), target="mcu-cortex-m4", size_kb=60):
    return {"variant": name, "target": target, "format": "tflite", "precision": "int8",
            "path": f"{target}/{name}__int8.tflite", "size_bytes": size_kb * 1024, "gzip_bytes": size_kb * 900,
            "accuracy": accuracy, "accuracy_drop_pp": (0.98 - accuracy) * 100, "fits": fits,
            "latency_ms": {"p50": estimate}, "latency_kind": "estimated", "latency_on_device": False,
            "latency_measured_on": "not measured: estimated from MACs", "compatibility": {
                "compatible": False, "blockers": list(blockers), "ops": [{"op": "RESHAPE", "runs_on": "cpu"}]}}


def _reasons(selection):
    return {artifact_name(record): reason for record, reason in selection.rejected}


def test_fit_gates_then_accuracy_beats_a_faster_estimate_and_the_estimate_breaks_ties():
    records = [
        _mcu("big", 0.99, 5.0, fits=False, blockers=["does not fit the nRF52840-class board: needs 300,000 B"]),
        _mcu("fast", 0.970, 1.0), _mcu("accurate", 0.975, 9.0), _mcu("accurate-fast", 0.975, 4.0),
    ]
    selection = select_best(records, "mcu-cortex-m4", max_accuracy_drop_pp=2.0)
    assert artifact_name(selection.winner) == "accurate-fast__int8.tflite"
    reasons = _reasons(selection)
    assert reasons["big__int8.tflite"].startswith("does not fit")
    assert reasons["fast__int8.tflite"].startswith("fits and meets the budget, but less accurate")
    assert reasons["accurate__int8.tflite"] == ("fits, equally accurate, but a slower estimate "
                                                "(9.00 vs 4.00 ms, estimated)")
    assert "estimated 4.00 ms (not measured: estimated from MACs)" in describe(selection.winner)


def test_reference_kernel_fallbacks_do_not_disqualify_but_a_missing_kernel_does():
    runs = _mcu("runs", 0.97, 2.0)  # RESHAPE on TFLM's reference kernels: slower, still runs
    broken = _mcu("gelu", 0.98, 1.0, blockers=["TensorFlow Lite Micro has no kernel for GELU"])
    selection = select_best([runs, broken], "mcu-cortex-m4", 2.0)
    assert selection.winner is runs and _reasons(selection)["gelu__int8.tflite"] == broken["compatibility"]["blockers"][0]


def test_latency_budget_applies_to_the_estimate_and_no_estimate_ranks_last():
    unknown = _mcu("unknown", 0.97, None, target="ethos-u55-128")
    known = _mcu("known", 0.97, 0.05, target="ethos-u55-128")
    assert select_best([unknown, known], "ethos-u55-128", 2.0).winner is known
    selection = select_best([unknown, known], "ethos-u55-128", 2.0, max_latency_ms=0.01)
    assert selection.winner is None
    assert _reasons(selection)["known__int8.tflite"] == "estimated 0.0500 ms > 0.01 ms"


def test_estimated_and_measured_latency_are_never_ranked_together():
    measured = dict(_mcu("timed", 0.97, 0.02), latency_kind="measured", latency_on_device=True)
    with pytest.raises(EdgesmithError, match="mix measured and estimated latency"):
        select_best([measured, _mcu("estimate", 0.97, 3.0)], "mcu-cortex-m4", 2.0)


def test_records_keep_the_latency_kind_and_reject_an_unknown_one():
    record = Record.from_dict(_mcu("m", 0.97, 3.0))
    assert record.latency_kind == "estimated" and Record.from_dict(record.to_dict()) == record
    legacy = {key: value for key, value in _mcu("m", 0.97, 3.0).items() if key != "latency_kind"}
    assert Record.from_dict(legacy).latency_kind == "measured"  # older runs only had timings
    with pytest.raises(EdgesmithError, match="latency_kind 'guessed'"):
        Record.from_dict(dict(_mcu("m", 0.97, 3.0), latency_kind="guessed"))
