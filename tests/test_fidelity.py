"""Output fidelity, the full-model checks, and the findings they lead to."""
from __future__ import annotations

import numpy as np
import pytest

from toolkit.fidelity import batchnorm_check, chance_accuracy, output_fidelity
from toolkit.report.sanity import sanity_findings


def test_sqnr_and_cosine():
    reference = np.array([[3.0, 4.0], [1.0, 0.0]])
    assert output_fidelity(reference.copy(), reference) == {"sqnr_db": None, "cosine": 1.0}
    noisy = reference + np.array([[0.3, 0.4], [0.0, 0.0]])  # noise power 0.25, signal 26
    result = output_fidelity(noisy, reference)
    assert result["sqnr_db"] == pytest.approx(10 * np.log10(26 / 0.25), abs=0.01)
    assert result["cosine"] == pytest.approx(1.0)
    assert output_fidelity(-reference, reference)["cosine"] == pytest.approx(-1.0)


def test_chance_is_the_most_common_label():
    assert chance_accuracy(np.array([0, 0, 0, 1])) == 0.75


def test_batchnorm_check_sees_stale_statistics_and_restores_weights():
    from toolkit._tf import keras

    k = keras()
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 1.0, (256, 4)).astype(np.float32)
    y = (x[:, 0] > 5.0).astype(np.int64)
    model = k.Sequential([k.layers.Input((4,)), k.layers.BatchNormalization(), k.layers.Dropout(0.5),
                          k.layers.Dense(2, activation="softmax")])
    model.layers[-1].set_weights([np.array([[-1.0, 1.0], [0, 0], [0, 0], [0, 0]], np.float32), np.zeros(2, np.float32)])
    before = [w.copy() for w in model.get_weights()]  # moving mean 0, variance 1: stale for inputs around 5
    check = batchnorm_check(model, x, y, seed=0)
    assert check["train_mode_accuracy"] > 0.95 and check["inference_mode_accuracy"] < 0.6
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.layers[1].rate == 0.5
    plain = k.Sequential([k.layers.Input((4,)), k.layers.Dense(2)])
    assert batchnorm_check(plain, x, y, seed=0) is None


def _info(accuracy, model="cnn", batchnorm=None):
    return {"model": model, "preprocessing": {"spec": "scale:1/255"},
            "baseline": {"accuracy": accuracy, "chance_accuracy": 0.1, "batchnorm": batchnorm}}


def _record(variant, drop):
    return {"variant": variant, "accuracy_drop_pp": drop}


def test_sanity_findings():
    assert sanity_findings([_record("qat", 0.5)], _info(0.9)) == []
    near = sanity_findings([], _info(0.12, model="my.keras"))
    assert len(near) == 1 and "near chance" in near[0] and "preprocess (now `scale:1/255`)" in near[0]
    beaten = sanity_findings([_record("qat", -8.0)], _info(0.5))
    assert "qat (+8.0 pp) beats the full model" in beaten[0] and "under-trained" in beaten[0]
    stale = {"samples": 512, "batch": 64, "inference_mode_accuracy": 0.4, "train_mode_accuracy": 0.9}
    explained = sanity_findings([_record("qat", -8.0)], _info(0.5, batchnorm=stale))
    assert "40.0% with BatchNorm in inference mode and 90.0% in train mode" in explained[0]
    near_and_stale = sanity_findings([], _info(0.12, model="my.keras", batchnorm=stale))
    assert len(near_and_stale) == 1 and "BatchNorm statistics do not match" in near_and_stale[0]  # said once
    trained_here = sanity_findings([], _info(0.12, batchnorm=stale))  # a zoo model: same preprocessing, too few steps
    assert len(trained_here) == 1 and "moving averages have not caught up with its weights: raise epochs" in trained_here[0]
    alone = sanity_findings([], _info(0.5, batchnorm=stale))
    assert len(alone) == 1 and "moving statistics do not match" in alone[0]


def test_a_small_test_split_needs_three_samples_of_difference_before_questioning_the_model():
    small = _info(0.8)
    small["baseline"]["test_samples"] = 30  # one sample is 3.3 pp
    assert sanity_findings([_record("qat", -6.7)], small) == []  # two samples
    beaten = sanity_findings([_record("baseline", -13.3)], small)
    assert "the full model's own exported files (baseline) (+13.3 pp) beats the full model by more than 10 pp" in beaten[0]
    one_image = {"samples": 30, "batch": 64, "inference_mode_accuracy": 0.8, "train_mode_accuracy": 0.8333}
    assert sanity_findings([], _info(0.8, model="my.keras", batchnorm=one_image)) == []
