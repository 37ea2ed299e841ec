import copy

from toolkit.report.flags import findings


def _find(records, key):
    return next(r for r in records if (r["variant"], r["target"], r["precision"]) == key)


def _set_p50(record, p50, half_width):
    record["latency_ms"] = {"p50": p50, "ci95_p50": [p50 - half_width, p50 + half_width]}


def test_latency_measured_off_device_is_called_out(records, run_info):
    assert ("latency for edgetpu and gpu was measured on the host CPU, not on the device: use it "
            "to rank artifacts, not as the device's speed") in findings(records, run_info)


def test_blocked_artifacts_and_cpu_fallbacks(records, run_info):
    result = findings(records, run_info)
    assert ("1 artifact cannot use the Edge TPU on edgetpu: tensor dense/kernel is float32: the "
            "Edge TPU needs int8 weights (cluster16__int8.tflite)") in result
    assert "2 of 9 ops fall back to the host CPU on edgetpu for scratch-small__int8.tflite" in result
    assert not any("0 of 9 ops" in sentence for sentence in result)


def test_a_file_that_does_not_fit_the_board_cannot_run_there(records, run_info):
    record = copy.deepcopy(_find(records, ("baseline", "edgetpu", "int8")))
    record.update(target="tiny-board", compatibility={**record["compatibility"], "accelerator": "CMSIS-NN kernels",
                                                      "blockers": ["does not fit the Tiny board: flash misses by 10 B"]})
    assert ("1 artifact cannot run on tiny-board: does not fit the Tiny board: flash misses by 10 B "
            "(baseline__int8.tflite)") in findings([*records, record], run_info)


def test_fallbacks_in_many_artifacts_are_grouped(records, run_info):
    for record in records:
        if record["target"] == "cpu" and record["precision"] == "int8":
            record["compatibility"].update(ops_on_accelerator=8, compatible=False)
    assert ("ops fall back to the LiteRT built-in CPU kernels on cpu in 6 artifacts: "
            "baseline__int8.tflite (1 of 9), prune80__int8.tflite (1 of 9), "
            "prune80+qat__int8.tflite (1 of 9) and 3 more") in findings(records, run_info)


def test_pruning_shrinks_gzip_but_is_not_faster(records, run_info):
    result = findings(records, run_info)
    assert ("prune80 made the cpu int8 file 3.1× smaller (gzip) but not faster: no measurable "
            "difference (p50 0.0273 vs 0.0273 ms)") in result
    assert ("cluster16 made the onnx-cpu int8 file 2.5× smaller (gzip) but not faster: no "
            "measurable difference (p50 0.0903 vs 0.0903 ms)") in result
    # Host-CPU stand-ins say nothing about device speed, so no speed claims for gpu/edgetpu.
    assert not any(s.startswith(("prune80 made the gpu", "prune80 made the edgetpu"))
                   for s in result)


def test_pruning_that_is_measurably_faster_says_so(records, run_info):
    _set_p50(_find(records, ("prune80", "cpu", "int8")), 0.020, 0.0005)
    assert ("prune80 made the cpu int8 file 3.1× smaller (gzip) and faster (p50 0.0200 vs "
            "0.0273 ms)") in findings(records, run_info)


def test_pruning_that_did_not_shrink_the_file_says_so(records, run_info):
    pruned = _find(records, ("prune80", "cpu", "int8"))
    pruned["gzip_bytes"] = _find(records, ("baseline", "cpu", "int8"))["gzip_bytes"]
    assert ("prune80 made the cpu int8 file no smaller (gzip 96.6 vs 96.6 KB) and not faster: no "
            "measurable difference (p50 0.0273 vs 0.0273 ms)") in findings(records, run_info)


def test_precision_speed_against_fp32(records, run_info):
    result = findings(records, run_info)
    assert ("onnx-cpu: onnx int8 is slower than onnx fp32 on this machine "
            "(p50 0.0903 vs 0.0700 ms)") in result
    assert "cpu: tflite int8 is 2.6× faster than tflite fp32 (p50 0.0273 vs 0.0700 ms)" in result
    assert ("cpu: tflite fp16 shows no measurable difference from tflite fp32 "
            "(p50 0.0707 vs 0.0700 ms)") in result
    assert not any(s.startswith("gpu: ") for s in result)


def test_slower_only_when_confidence_intervals_do_not_overlap(records, run_info):
    _set_p50(_find(records, ("baseline", "onnx-cpu", "int8")), 0.0903, 0.025)
    result = findings(records, run_info)
    assert ("onnx-cpu: onnx int8 shows no measurable difference from onnx fp32 "
            "(p50 0.0903 vs 0.0700 ms)") in result
    assert not any("slower" in sentence for sentence in result)


def test_distillation_gain_over_the_same_student_from_scratch(records, run_info):
    assert ("distillation bought +1.2 pp over the same student trained from scratch "
            "(distill-small 95.20% vs scratch-small 94.00%, fp32)") in findings(records, run_info)


def test_distillation_that_hurt_is_reported_as_a_loss(records, run_info):
    for record in records:
        if record["variant"] == "scratch-small":
            record["accuracy"] += 0.02
    assert ("distillation lost 0.8 pp against the same student trained from scratch "
            "(distill-small 95.20% vs scratch-small 96.00%, fp32)") in findings(records, run_info)


def test_large_accuracy_drops_and_skipped_variants(records, run_info):
    result = findings(records, run_info)
    assert ("cluster16 (2.5–2.9 pp in 9 artifacts) and scratch-small (2.2–2.6 pp in 9 artifacts) "
            "lose more than 2 pp accuracy against the full model") in result
    assert "prune95 was skipped: accuracy fell below 50% after fine-tuning" in result


def test_a_clean_run_has_no_alarms(records):
    baseline_only = [copy.deepcopy(r) for r in records
                     if r["variant"] == "baseline" and r["target"] == "cpu"]
    assert findings(baseline_only, {}) == [
        "cpu: tflite fp16 shows no measurable difference from tflite fp32 (p50 0.0707 vs 0.0700 ms)",
        "cpu: tflite dynamic is 1.4× faster than tflite fp32 (p50 0.0497 vs 0.0700 ms)",
        "cpu: tflite int8 is 2.6× faster than tflite fp32 (p50 0.0273 vs 0.0700 ms)",
    ]
    assert findings([], {}) == []


def test_small_but_significant_differences_are_not_findings():
    from toolkit.report.flags import _speed_verdict

    tight = lambda p50: {"p50": p50, "repeat95_p50": [p50 * 0.999, p50 * 1.001]}  # noqa: E731
    assert _speed_verdict(tight(0.0364), tight(0.0353)) == 0, "3% apart, measured minutes apart: drift"
    assert _speed_verdict(tight(0.0821), tight(0.0646)) == 1


def test_raw_input_advice_is_given_for_the_full_models_int8_files_only(records, run_info):
    """Records become tuples-chained Records inside findings: the full model is still found."""
    as_is = {"input_dtype": "uint8", "raw_bytes_as_is": True, "how": "feed raw uint8 pixels as they are"}
    for record in records:
        if record["precision"] == "int8" and record["target"] in ("edgetpu", "cpu"):
            record["raw_input"] = as_is
    result = findings(records, run_info)
    assert "raw pixels into the full model's int8 file on cpu, edgetpu: feed raw uint8 pixels as they are" in result \
        or "raw pixels into the full model's int8 file on edgetpu, cpu: feed raw uint8 pixels as they are" in result
    assert sum(sentence.startswith("raw pixels") for sentence in result) == 1


def test_student_size_against_the_teacher(records, run_info):
    assert "distill-small's student has 33,000 parameters, 0.33× the teacher's 100,000" in findings(records, run_info)


def test_a_student_larger_than_the_teacher_is_called_out(records, run_info):
    for record in records:
        if record["variant"] == "distill-small":
            record["params"] = 250_000
        if record["precision"] == "fp32" and record["target"] == "cpu":
            record["macs"] = 2_000_000 if record["variant"] == "distill-small" else 1_000_000
    assert ("distill-small's student has 250,000 parameters, 2.50× the teacher's 100,000, and 2 M MACs vs 1 M "
            "(2.00×): it is larger than the teacher by 2.5×, so it compresses nothing; size it with "
            "distill:params=0.25 or a smaller width") in findings(records, run_info)
