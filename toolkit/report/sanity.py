"""Findings that question the full model itself, before any comparison against it is trusted.

A full model near chance, or one that its own compressed variants beat by several points, is
almost never a compression gain: it is an under-trained model, the wrong input preprocessing,
or BatchNorm statistics that do not match the inputs. Say so plainly, with the measurements.
"""
from __future__ import annotations

from collections import defaultdict

BEAT_MARGIN_PP = 3.0  # a variant this much better than the full model is suspicious
NEAR_CHANCE = 0.1  # within this share of the way from chance to 100%
BATCHNORM_GAP_PP = 3.0


def sanity_findings(records: list[dict], run_info: dict) -> list[str]:
    """The BatchNorm gap on its own only when no other finding already names it as the cause."""
    questioned = _near_chance(run_info) + _beats_full_model(records, run_info)
    return questioned or _batchnorm_gap(run_info)


def _near_chance(run_info: dict) -> list[str]:
    baseline = run_info.get("baseline") or {}
    accuracy, chance = baseline.get("accuracy"), baseline.get("chance_accuracy")
    if accuracy is None or chance is None or accuracy >= chance + NEAR_CHANCE * (1 - chance):
        return []
    lead = (f"the full model scores {accuracy * 100:.1f}% on the test split, near chance ({chance * 100:.1f}% by always "
            "answering the most common class), so every comparison against it is meaningless")
    return [f"{lead}: {_likely_cause(run_info)}"]


def _beats_full_model(records: list[dict], run_info: dict) -> list[str]:
    gains: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if record["accuracy_drop_pp"] < -BEAT_MARGIN_PP:
            gains[record["variant"]].append(-record["accuracy_drop_pp"])
    if not gains:
        return []
    names = ", ".join(f"{variant} (+{max(values):.1f} pp)" for variant, values in sorted(gains.items()))
    return [f"{names} beat{'s' if len(gains) == 1 else ''} the full model by more than {BEAT_MARGIN_PP:g} pp: treat this "
            f"as a warning, not a gain — {_likely_cause(run_info)}"]


def _batchnorm_gap(run_info: dict) -> list[str]:
    check = (run_info.get("baseline") or {}).get("batchnorm")
    if not check or _gap_pp(check) <= BATCHNORM_GAP_PP:
        return []
    return [f"the full model's {_batchnorm_words(check)}: its BatchNorm moving statistics do not match these inputs "
            "(stale statistics, or a preprocessing other than the one it was trained with)"]


def _likely_cause(run_info: dict) -> str:
    """Which explanation the measurements support: BatchNorm gap, a loaded model, or training."""
    from toolkit.models import is_zoo

    check = (run_info.get("baseline") or {}).get("batchnorm")
    spec = (run_info.get("preprocessing") or {}).get("spec", "?")
    if check and _gap_pp(check) > BATCHNORM_GAP_PP:
        return (f"{_batchnorm_words(check)}, so its BatchNorm statistics do not match these inputs: the preprocessing "
                f"(now `{spec}`) differs from the one it was trained with, or the statistics are stale")
    measured = f"{_batchnorm_words(check)}, so BatchNorm is not the cause; " if check else ""
    if is_zoo(str(run_info.get("model", ""))):
        return f"{measured}the full model trained here looks under-trained: raise epochs or patience"
    return (f"{measured}check that preprocess (now `{spec}`) is the input scaling the model was trained with "
            "(mobilenet, mean_std:M,S, or none if it has its own Rescaling layer) and that the class order matches")


def _gap_pp(check: dict) -> float:
    return (check["train_mode_accuracy"] - check["inference_mode_accuracy"]) * 100


def _batchnorm_words(check: dict) -> str:
    return (f"accuracy on {check['samples']} test samples is {check['inference_mode_accuracy'] * 100:.1f}% with BatchNorm "
            f"in inference mode and {check['train_mode_accuracy'] * 100:.1f}% in train mode (batch statistics)")
