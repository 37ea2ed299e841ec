"""What a model is scored by: top-1 accuracy for a classifier, MAE and RMSE for a regression.

Every consumer of quality (records, budgets, selection, reports) goes through these helpers, so
"better", "how much was lost" and how a figure is written are decided in one place. A loss is
always "larger is worse": accuracy drop in percentage points, or MAE increase in percent of
the full model's MAE.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from toolkit.errors import EdgesmithError

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)
# A regression whose MAE is within this fraction of always predicting the training mean has
# learned next to nothing: the analogue of a classifier near chance.
NEAR_MEAN_PREDICTOR = 0.9


def check_task(task: str) -> str:
    if task not in TASKS:
        raise EdgesmithError(f"unknown task '{task}'", f"use one of: {', '.join(TASKS)}")
    return task


def score_outputs(outputs: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """The task's figures for raw model outputs against the targets."""
    from toolkit.top1 import top1

    if task == REGRESSION:
        error = np.asarray(outputs, np.float64).reshape(len(y), -1) - np.asarray(y, np.float64).reshape(len(y), -1)
        return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean()))}
    return {"accuracy": float((top1(outputs) == y).mean())}


def quality_change(baseline: Mapping[str, Any], quality: Mapping[str, Any], task: str) -> dict[str, float]:
    """How much worse an artifact is than the full model (negative: better)."""
    if task == REGRESSION:
        return {f"{name}_increase_pct": round(relative_increase(baseline[name], quality[name]), 4)
                for name in ("mae", "rmse")}
    return {"accuracy_drop_pp": round((baseline["accuracy"] - quality["accuracy"]) * 100, 4)}


def relative_increase(base: float, value: float) -> float:
    """`value` above `base`, in percent of `base`."""
    if base == 0:
        return 0.0 if value == 0 else float("inf")
    return (value - base) / base * 100


def task_of(record: Mapping[str, Any]) -> str:
    return record.get("task") or CLASSIFICATION


def is_regression(record: Mapping[str, Any]) -> bool:
    return task_of(record) == REGRESSION


def loss(record: Mapping[str, Any]) -> float:
    """What a budget limits: accuracy drop (pp) or MAE increase (%)."""
    return record["mae_increase_pct"] if is_regression(record) else record["accuracy_drop_pp"]


def loss_text(record: Mapping[str, Any]) -> str:
    """'accuracy drop 0.52 pp' or 'MAE +3.10%'."""
    if is_regression(record):
        return f"MAE {record['mae_increase_pct']:+.2f}%"
    return f"accuracy drop {record['accuracy_drop_pp']:.2f} pp"


def loss_unit(task: str) -> str:
    """How a loss and its budget are written after the number: '%' (of the MAE) or ' pp'."""
    return "%" if task == REGRESSION else " pp"


def budget_text(task: str, budget: float) -> str:
    return f"{'MAE increase' if task == REGRESSION else 'accuracy drop'} ≤ {budget:g}{loss_unit(task)}"


def quality_text(record: Mapping[str, Any]) -> str:
    """The headline figure: 'accuracy 97.22%' or 'MAE 0.1234 (RMSE 0.2)'."""
    if is_regression(record):
        return f"MAE {record['mae']:.4g} (RMSE {record['rmse']:.4g})"
    return f"accuracy {record['accuracy'] * 100:.2f}%"


def merit(record: Mapping[str, Any]) -> float:
    """Larger is better: accuracy, or minus the MAE."""
    return -record["mae"] if is_regression(record) else record["accuracy"]


def less_good(record: Mapping[str, Any], winner: Mapping[str, Any]) -> str:
    """'less accurate (95.10% vs 96.00%)' or 'a larger MAE (0.21 vs 0.2)'."""
    if is_regression(record):
        return f"a larger MAE ({record['mae']:.4g} vs {winner['mae']:.4g})"
    return f"less accurate ({record['accuracy'] * 100:.2f}% vs {winner['accuracy'] * 100:.2f}%)"


def mean_predictor_mae(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """MAE of always predicting the training targets' mean: what a model that learned
    nothing scores."""
    mean = np.asarray(y_train, np.float64).reshape(len(y_train), -1).mean(axis=0)
    return float(np.abs(np.asarray(y_test, np.float64).reshape(len(y_test), -1) - mean).mean())
