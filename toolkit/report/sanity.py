"""Findings that question the full model itself, before any comparison against it is trusted.

A full model near chance, or one that its own compressed variants beat by several points, is
almost never a compression gain: it is an under-trained model, the wrong input preprocessing,
or BatchNorm statistics that do not match the inputs. Say so plainly, with the measurements.
"""
from __future__ import annotations

from collections import defaultdict

from toolkit.task import NEAR_MEAN_PREDICTOR, is_regression, loss

BEAT_MARGIN_PP = 3.0  # a variant this much better than the full model is suspicious
BEAT_MARGIN_PCT = 10.0  # … or this much lower a regression's MAE
NEAR_CHANCE = 0.1  # within this share of the way from chance to 100%
BATCHNORM_GAP_PP = 3.0
MIN_SAMPLES = 3  # a gap of fewer test samples than this is noise on a small test split, whatever its pp
BATCHNORM_GAP_SHARE = 0.2  # a regression: train mode's MAE this share below inference mode's


def sanity_findings(records: list[dict], run_info: dict) -> list[str]:
    """The BatchNorm gap on its own only when no other finding already names it as the cause."""
    questioned = _near_chance(run_info) + _beats_full_model(records, run_info)
    return questioned or _batchnorm_gap(run_info)


def _near_chance(run_info: dict) -> list[str]:
    baseline = run_info.get("baseline") or {}
    if is_regression(baseline):
        return _near_mean_predictor(run_info)
    accuracy, chance = baseline.get("accuracy"), baseline.get("chance_accuracy")
    if accuracy is None or chance is None or accuracy >= chance + NEAR_CHANCE * (1 - chance):
        return []
    relation = "no better than chance" if accuracy <= chance else "near chance"
    lead = (f"the full model scores {accuracy * 100:.1f}% on the test split, {relation} ({chance * 100:.1f}% by always "
            "answering the most common class), so every comparison against it is meaningless")
    return [f"{lead}: {_likely_cause(run_info)}"]


def _near_mean_predictor(run_info: dict) -> list[str]:
    """A regression's chance: always answering the training targets' mean."""
    baseline = run_info["baseline"]
    mae, mean_mae = baseline.get("mae"), baseline.get("mean_predictor_mae")
    if mae is None or not mean_mae or mae < NEAR_MEAN_PREDICTOR * mean_mae:
        return []
    return [f"the full model's MAE on the test split is {mae:.4g}, no better than always predicting the training mean "
            f"(MAE {mean_mae:.4g}), so every comparison against it is meaningless: {_likely_cause(run_info)}"]


def _beats_full_model(records: list[dict], run_info: dict) -> list[str]:
    regression = any(is_regression(record) for record in records)
    margin = BEAT_MARGIN_PCT if regression else _margin_pp(BEAT_MARGIN_PP, (run_info.get("baseline") or {}).get("test_samples"))
    gains: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if loss(record) < -margin:
            gains[record["variant"]].append(-loss(record))
    if not gains:
        return []
    verb = "beats" if len(gains) == 1 else "beat"
    if regression:
        names = ", ".join(f"{_label(variant)} ({max(values):.1f}% lower MAE)" for variant, values in sorted(gains.items()))
        claim = f"{names} {verb} the full model's MAE by more than {margin:g}%"
    else:
        names = ", ".join(f"{_label(variant)} (+{max(values):.1f} pp)" for variant, values in sorted(gains.items()))
        claim = f"{names} {verb} the full model by more than {margin:.3g} pp"
    return [f"{claim}: treat this as a warning, not a gain — {_likely_cause(run_info)}"]


def _batchnorm_gap(run_info: dict) -> list[str]:
    check = (run_info.get("baseline") or {}).get("batchnorm")
    if not _stale(check):
        return []
    return [f"the full model's {_batchnorm_words(check)}: its BatchNorm moving statistics do not match these inputs "
            "(stale statistics, or a preprocessing other than the one it was trained with)"]


def _likely_cause(run_info: dict) -> str:
    """Which explanation the measurements support: BatchNorm gap, a loaded model, or training."""
    from toolkit.models import is_zoo

    check = (run_info.get("baseline") or {}).get("batchnorm")
    spec = (run_info.get("preprocessing") or {}).get("spec", "?")
    if _stale(check) and is_zoo(str(run_info.get("model", ""))):
        return (f"{_batchnorm_words(check)}: the full model trained here with this preprocessing, so its BatchNorm "
                "moving averages have not caught up with its weights: raise epochs")
    if _stale(check):
        return (f"{_batchnorm_words(check)}, so its BatchNorm statistics do not match these inputs: the preprocessing "
                f"(now `{spec}`) differs from the one it was trained with, or the statistics are stale")
    measured = f"{_batchnorm_words(check)}, so BatchNorm is not the cause; " if check else ""
    if is_zoo(str(run_info.get("model", ""))):
        return f"{measured}the full model trained here looks under-trained: raise epochs or patience"
    order = "" if is_regression(run_info.get("baseline") or {}) else " and that the class order matches"
    return (f"{measured}check that preprocess (now `{spec}`) is the input scaling the model was trained with "
            f"(mobilenet, mean_std:M,S, or none if it has its own Rescaling layer){order}")


def _stale(check: dict | None) -> bool:
    """Batch statistics do markedly better than the stored ones: 3 pp of accuracy, or a
    regression's MAE 20% lower."""
    if not check:
        return False
    if "train_mode_mae" in check:
        return check["train_mode_mae"] < (1 - BATCHNORM_GAP_SHARE) * check["inference_mode_mae"]
    gap_pp = (check["train_mode_accuracy"] - check["inference_mode_accuracy"]) * 100
    return gap_pp > _margin_pp(BATCHNORM_GAP_PP, check.get("samples"))


def _margin_pp(margin_pp: float, samples: int | None) -> float:
    """`margin_pp`, or MIN_SAMPLES test samples' worth where the test split is small (30 samples:
    one is 3.3 pp)."""
    return max(margin_pp, MIN_SAMPLES * 100 / samples) if samples else margin_pp


def _label(variant: str) -> str:
    """The full model's own exported files are the `baseline` variant: say so."""
    return "the full model's own exported files (baseline)" if variant == "baseline" else variant


def _batchnorm_words(check: dict) -> str:
    if "train_mode_mae" in check:
        return (f"MAE on {check['samples']} test samples is {check['inference_mode_mae']:.4g} with BatchNorm in inference "
                f"mode and {check['train_mode_mae']:.4g} in train mode (batch statistics)")
    return (f"accuracy on {check['samples']} test samples is {check['inference_mode_accuracy'] * 100:.1f}% with BatchNorm "
            f"in inference mode and {check['train_mode_accuracy'] * 100:.1f}% in train mode (batch statistics)")
