import pytest

from toolkit.errors import EdgesmithError
from toolkit.selection import artifact_name, compare_p50, select_best


def latency(p50, ci=None):
    return {"p50": p50, "ci95_p50": ci} if ci else {"p50": p50}


@pytest.mark.parametrize("a, b, expected", [
    (latency(0.05, [0.04, 0.06]), latency(0.07, [0.065, 0.075]), -1),
    (latency(0.07, [0.065, 0.075]), latency(0.05, [0.04, 0.06]), 1),
    (latency(0.05, [0.04, 0.066]), latency(0.07, [0.065, 0.075]), 0),  # overlapping CIs
    (latency(0.100), latency(0.104), 0),                               # no CI: within 5%
    (latency(0.100), latency(0.120), -1),
    (latency(0.05, [0.04, 0.06]), latency(0.2), -1),                    # CI on one side only
    (None, latency(0.1), 0),
    ({"p50": None}, latency(0.1), 0),
])
def test_compare_p50(a, b, expected):
    assert compare_p50(a, b) == expected


def reasons_by_name(selection):
    return {artifact_name(record): reason for record, reason in selection.rejected}


def test_every_artifact_of_the_target_is_either_winner_or_rejected(records):
    selection = select_best(records, "cpu", max_accuracy_drop_pp=1.0)
    names = [artifact_name(r) for r, _ in selection.rejected] + [artifact_name(selection.winner)]
    assert sorted(names) == sorted(artifact_name(r) for r in records if r["target"] == "cpu")


def test_latency_ties_go_to_the_smaller_gzip_then_the_more_accurate(records):
    # baseline, prune80 and prune80+qat int8 share a p50; the pruned files are 3.1× smaller
    # in gzip, and prune80+qat is more accurate than prune80 at the same size.
    selection = select_best(records, "cpu", max_accuracy_drop_pp=1.0)
    assert artifact_name(selection.winner) == "prune80+qat__int8.tflite"
    reasons = reasons_by_name(selection)
    assert reasons["baseline__int8.tflite"] == (
        "meets the budget and ties on latency (95% CIs overlap), but larger "
        "(gzip 96.6 vs 31.2 KB)")
    assert reasons["prune80__int8.tflite"] == (
        "meets the budget, ties on latency and gzip size, but less accurate (95.20% vs 95.50%)")
    assert reasons["baseline__fp32.tflite"] == (
        "meets the budget but slower than the winner (0.0700 vs 0.0273 ms)")
    assert reasons["distill-small__int8.tflite"] == "accuracy drop 1.40 pp > budget 1 pp"


def test_a_looser_accuracy_budget_lets_the_measurably_faster_student_win(records):
    selection = select_best(records, "cpu", max_accuracy_drop_pp=1.5)
    assert artifact_name(selection.winner) == "distill-small__int8.tflite"


def test_latency_and_size_limits_reject_with_the_numbers(records):
    selection = select_best(records, "cpu", 1.0, max_latency_ms=0.03, max_size_kb=110)
    assert artifact_name(selection.winner) == "prune80+qat__int8.tflite"
    reasons = reasons_by_name(selection)
    assert reasons["baseline__fp32.tflite"] == "p50 0.0700 ms > 0.03 ms; size 420.0 KB > 110 KB"
    assert reasons["distill-small__fp32.tflite"] == (
        "p50 0.0350 ms > 0.03 ms; size 140.0 KB > 110 KB")
    assert reasons["baseline__dynamic.tflite"] == "p50 0.0497 ms > 0.03 ms"
    # Full-size int8 files are 105 KB: only the small student's fp16 file fits in 100 KB.
    assert artifact_name(select_best(records, "cpu", 1.0, max_size_kb=100).winner) == (
        "distill-small__fp16.tflite")


def test_no_winner_when_nothing_meets_the_budget(records):
    selection = select_best(records, "cpu", 1.0, max_latency_ms=0.01)
    assert selection.winner is None
    assert len(selection.rejected) == 4 * 6
    text = selection.format_text()
    assert "no artifact meets the budget" in text
    assert "baseline__int8.tflite: p50 0.0273 ms > 0.01 ms" in text


def test_incompatible_artifacts_are_rejected_whatever_the_budget(records):
    selection = select_best(records, "edgetpu", max_accuracy_drop_pp=10.0)
    reasons = reasons_by_name(selection)
    assert reasons["cluster16__int8.tflite"] == (
        "not compatible with edgetpu: tensor dense/kernel is float32: the Edge TPU needs int8 "
        "weights")
    assert reasons["scratch-small__int8.tflite"].startswith(
        "not compatible with edgetpu: 2 of 9 ops fall back to the host CPU on edgetpu")
    assert artifact_name(selection.winner) == "distill-small__int8.tflite"


def _record(name, p50, ci, gzip_kb, accuracy=0.95):
    return {"variant": name, "target": "cpu", "format": "tflite", "precision": "int8",
            "path": f"cpu/{name}__int8.tflite", "size_bytes": 100 * 1024,
            "gzip_bytes": int(gzip_kb * 1024), "accuracy": accuracy, "accuracy_drop_pp": 0.2,
            "latency_ms": {"p50": p50, "ci95_p50": ci}, "compatibility": None}


def test_overlapping_confidence_intervals_count_as_a_tie():
    small = _record("small", 0.050, [0.045, 0.055], gzip_kb=30)
    quick = _record("quick", 0.048, [0.044, 0.052], gzip_kb=50)
    assert select_best([small, quick], "cpu", 1.0).winner is small
    fastest = _record("fastest", 0.030, [0.029, 0.031], gzip_kb=100)
    selection = select_best([small, quick, fastest], "cpu", 1.0)
    assert selection.winner is fastest
    assert reasons_by_name(selection)["small__int8.tflite"] == (
        "meets the budget but slower than the winner (0.0500 vs 0.0300 ms)")


def test_untimed_artifacts_cannot_win():
    timed = _record("timed", 0.5, [0.4, 0.6], gzip_kb=30)
    untimed = dict(_record("untimed", 0.1, None, gzip_kb=10), latency_ms=None)
    selection = select_best([timed, untimed], "cpu", 1.0)
    assert selection.winner is timed
    assert reasons_by_name(selection)["untimed__int8.tflite"] == "no latency measurement"


def test_unknown_target_lists_the_targets_present(records):
    with pytest.raises(EdgesmithError, match="no results for target 'tpu'") as error:
        select_best(records, "tpu", 1.0)
    assert "choose one of: cpu, edgetpu, gpu, onnx-cpu" in str(error.value)


def test_format_text_names_the_budget_winner_and_every_loser(records):
    selection = select_best(records, "onnx-cpu", 1.0, max_latency_ms=0.08)
    text = selection.format_text()
    assert text.splitlines()[0] == (
        "Best for onnx-cpu (budget: accuracy drop ≤ 1 pp, p50 ≤ 0.08 ms):")
    assert "  distill-small__fp32.onnx — accuracy 95.20% (drop 1.00 pp)" in text
    assert "95% CI 0.0340–0.0361" in text
    for record, reason in selection.rejected:
        assert f"  {artifact_name(record)}: {reason}" in text


def _gpu_record(variant, precision, size_kb, accuracy, p50):
    return {
        "variant": variant, "target": "gpu", "format": "tflite", "precision": precision,
        "path": f"gpu/{variant}__{precision}.tflite", "size_bytes": int(size_kb * 1024), "gzip_bytes": int(size_kb * 900),
        "accuracy": accuracy, "accuracy_drop_pp": 0.1, "agreement": 0.99,
        "latency_ms": latency(p50, [p50 * 0.99, p50 * 1.01]), "latency_measured_on": "host CPU — not GPU latency", "latency_on_device": False,
        "compatibility": {"compatible": True},
    }


def test_off_device_targets_rank_by_size_not_host_latency():
    records = [_gpu_record("baseline", "fp32", 1600, 0.92, 0.09), _gpu_record("baseline", "fp16", 800, 0.92, 0.11)]
    selection = select_best(records, "gpu", max_accuracy_drop_pp=1.0)
    assert selection.winner["precision"] == "fp16", "host-CPU speed must not decide for the GPU"
    (loser, reason), = selection.rejected
    assert loser["precision"] == "fp32" and "larger" in reason and "not the device's" in reason


def test_latency_ties_are_judged_by_repeat95_p50_not_the_ci(records):
    """README: ties in `select` use `repeat95_p50` (the interval a repeat falls in) where records have it."""
    def pair(slow_factor, ci, repeat):
        fast = next(r for r in records if r["target"] == "cpu" and r["variant"] == "baseline" and r["precision"] == "int8")
        small = next(r for r in records if r["target"] == "cpu" and r["variant"] == "prune80" and r["precision"] == "int8")
        assert small["gzip_bytes"] < fast["gzip_bytes"]
        out = []
        for record, factor in ((fast, 1.0), (small, slow_factor)):
            p50 = fast["latency_ms"]["p50"] * factor
            out.append({**record, "latency_ms": {**record["latency_ms"], "p50": p50, "ci95_p50": [p50 * (1 - ci), p50 * (1 + ci)],
                                                 "repeat95_p50": [p50 * (1 - repeat), p50 * (1 + repeat)]}})
        return out

    # 8% slower: the CIs (±3%) are apart, the repeat intervals (±6%) overlap → a tie, the smaller file wins
    tie = select_best(pair(1.08, 0.03, 0.06), "cpu", max_accuracy_drop_pp=5.0)
    assert artifact_name(tie.winner) == "prune80__int8.tflite"
    assert reasons_by_name(tie)["baseline__int8.tflite"].startswith("meets the budget and ties on latency")
    # the repeat intervals decide the other way too: apart (±1%) while the CIs (±10%) overlap → the faster wins
    apart = select_best(pair(1.08, 0.10, 0.01), "cpu", max_accuracy_drop_pp=5.0)
    assert artifact_name(apart.winner) == "baseline__int8.tflite"
    assert "slower than the winner" in reasons_by_name(apart)["prune80__int8.tflite"]
    fast, slow = (r["latency_ms"] for r in pair(1.08, 0.03, 0.06))
    assert compare_p50(fast, slow) == 0 and compare_p50({**fast, "repeat95_p50": None}, slow) == -1


def test_the_runs_best_line_names_every_limit_of_the_budget():
    from toolkit.outputs import budget_summary

    budget = {"max_accuracy_drop_pp": 2.0, "max_latency_ms": 0.0045, "max_size_kb": 8.5}
    assert budget_summary({"budget": budget}) == "accuracy drop ≤ 2 pp, p50 ≤ 0.0045 ms, size ≤ 8.5 KB"
    assert budget_summary({"budget": {**budget, "max_latency_ms": None, "max_size_kb": None}}) == "accuracy drop ≤ 2 pp"
    assert budget_summary({"budget": {"max_mae_increase_pct": 5.0, "max_latency_ms": None, "max_size_kb": 64}}) == \
        "MAE increase ≤ 5%, size ≤ 64 KB"


def test_select_takes_the_runs_own_budget_where_none_is_given(tmp_path, capsys):
    import hashlib
    import json

    from toolkit.cli import main
    from toolkit.files import json_text

    records = [{"variant": "baseline", "chain": [], "target": "cpu", "format": "tflite", "precision": p, "path": f"cpu/b__{p}.tflite",
                "accuracy": a, "accuracy_drop_pp": d, "size_bytes": s, "gzip_bytes": s, "latency_ms": {"p50": 0.01, "ci95_p50": [0.009, 0.011]}}
               for p, a, d, s in (("fp32", 0.9, 0.0, 40_000), ("int8", 0.88, 2.0, 10_000))]
    text = json_text(records)
    (tmp_path / "results.json").write_text(text)
    info = {"budget": {"max_accuracy_drop_pp": 3.0, "max_latency_ms": None, "max_size_kb": None},
            "results_sha256": hashlib.sha256(text.encode()).hexdigest()}
    (tmp_path / "run.json").write_text(json.dumps(info))
    assert main(["select", str(tmp_path), "--target", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["winner"]["precision"] == "int8"  # within the run's 3 pp
    assert main(["select", str(tmp_path), "--target", "cpu", "--max-accuracy-drop", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["winner"]["precision"] == "fp32"
