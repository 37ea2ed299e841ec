"""Training the baseline: early stopping on the validation split and a one-line-per-epoch log."""
from __future__ import annotations

from typing import Any, Callable

from toolkit._tf import keras, seed_everything
from toolkit.data import Dataset
from toolkit.models import compile_for_training


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
    """Train with early stopping (best validation weights restored); return the history summary."""
    seed_everything(seed)
    compile_for_training(model, learning_rate)
    stopper = keras().callbacks.EarlyStopping(
        monitor="val_accuracy", patience=patience, restore_best_weights=True
    )
    history = model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[stopper, epoch_logger(epochs, log)],
    )
    best = max(history.history["val_accuracy"])
    return {"epochs_run": len(history.history["loss"]), "best_val_accuracy": float(best)}


def epoch_logger(total: int, log: Callable[[str], None]) -> Any:
    """A Keras callback printing one progress line per epoch (readable in CI logs too)."""

    class EpochLogger(keras().callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            log(
                f"  epoch {epoch + 1:>3}/{total}  loss {logs.get('loss', 0):.4f}  "
                f"acc {logs.get('accuracy', 0):.4f}  val_acc {logs.get('val_accuracy', 0):.4f}"
            )

    return EpochLogger()
