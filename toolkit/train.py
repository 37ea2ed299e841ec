"""Training the baseline: early stopping on the validation split and a one-line-per-epoch log."""
from __future__ import annotations

from typing import Any, Callable

from toolkit._tf import keras, seed_everything
from toolkit.data import Dataset
from toolkit.models import compile_for_training
from toolkit.task import REGRESSION


def fit(
    model: Any,
    data: Dataset,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train with early stopping on validation accuracy (a regression: validation loss), best
    weights restored; return the history summary."""
    seed_everything(seed)
    compile_for_training(model, learning_rate, data.task)
    metric = "mae" if data.task == REGRESSION else "accuracy"
    monitor = "val_loss" if data.task == REGRESSION else "val_accuracy"
    stopper = keras().callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)
    history = model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[stopper, epoch_logger(epochs, log, metric)],
    )
    best = (min if data.task == REGRESSION else max)(history.history[f"val_{metric}"])
    return {"epochs_run": len(history.history["loss"]), f"best_val_{metric}": float(best)}


def epoch_logger(total: int, log: Callable[[str], None], metric: str = "accuracy") -> Any:
    """A Keras callback printing one progress line per epoch (readable in CI logs too)."""
    label = {"accuracy": "acc"}.get(metric, metric)

    class EpochLogger(keras().callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            log(
                f"  epoch {epoch + 1:>3}/{total}  loss {logs.get('loss', 0):.4f}  "
                f"{label} {logs.get(metric, 0):.4f}  val_{label} {logs.get(f'val_{metric}', 0):.4f}"
            )

    return EpochLogger()
