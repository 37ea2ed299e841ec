"""What every pass gets besides the model: data, training settings and the untouched teacher.

Also the few Keras helpers all passes share: cloning without sharing layers, fine-tuning, and
telling whether a model ends in a softmax (probabilities) or emits raw logits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from toolkit._tf import keras
from toolkit.errors import EdgesmithError
from toolkit.task import CLASSIFICATION, REGRESSION
from toolkit.top1 import is_single_output


class PassNotApplicable(EdgesmithError):
    """The technique cannot handle this model (e.g. a layer it has no rule for).

    The pipeline skips the variant and keeps going, so the message names the pass and the layer.
    """


@dataclass(frozen=True)
class PassContext:
    """Inputs a pass may use. `teacher` is the full baseline model; passes never modify it.

    `task`: a regression fine-tunes on mean squared error and is validated by MAE.
    `epochs`: fine-tune epochs (prune, cluster, qat). `train_epochs`: epochs for a student trained
    from scratch (distill, scratch; defaults to `epochs`). `finetune_learning_rate`: the smaller
    step size for QAT fine-tuning (defaults to `learning_rate`). `applied`: names of the passes already
    applied to the incoming model, set by `apply_chain` (qat and cluster adapt to it). `notes`:
    what the pass chose (e.g. distill's student and its size), kept in the step's run.json record.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    teacher: Any
    log: Callable[[str], None] = print
    verbose: int = 0
    train_epochs: int | None = None
    finetune_learning_rate: float | None = None
    applied: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    task: str = CLASSIFICATION

    @property
    def student_epochs(self) -> int:
        """Epochs for passes that train a new model from scratch (distill, scratch)."""
        return self.train_epochs or self.epochs

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.x_train) / self.batch_size))


def clone_with_weights(model: Any) -> Any:
    """A copy with its own layers and the same weights.

    tfmot wrappers reuse the layer objects they wrap, so wrapping the caller's model directly
    would silently change the baseline; every pass wraps a clone instead.
    """
    clone = keras().models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def unwrap(layer: Any) -> Any:
    """The Keras layer inside a tfmot wrapper (prune, cluster, quantize), or the layer itself."""
    while hasattr(layer, "layer") and isinstance(layer.layer, keras().layers.Layer):
        layer = layer.layer
    return layer


def output_is_softmax(model: Any) -> bool:
    """True when the model's last layer turns logits into probabilities."""
    return _last_activation(model) == "softmax"


def outputs_probabilities(model: Any) -> bool:
    """True when the last layer turns logits into probabilities: a softmax over class scores,
    or a sigmoid on a binary classifier's single output."""
    return _last_activation(model) in ("softmax", "sigmoid")


def _last_activation(model: Any) -> str:
    k = keras()
    last = unwrap(model.layers[-1])
    if isinstance(last, k.layers.Softmax):
        return "softmax"
    return getattr(getattr(last, "activation", None), "__name__", "")


def fine_tune(
    model: Any, ctx: PassContext, callbacks: tuple = (), from_logits: bool | None = None, gentle: bool = False
) -> None:
    """Train `model` in place for `ctx.epochs` with Adam and cross-entropy on the labels (mean
    squared error on a regression's targets).

    `gentle` (QAT) uses the smaller fine-tune learning rate: fake quantization only nudges a
    trained model, while pruning and clustering remove capacity that must be re-learned at the
    training step size.
    """
    k = keras()
    k.utils.set_random_seed(ctx.seed)
    if from_logits is None:
        from_logits = not outputs_probabilities(model)
    if ctx.task == REGRESSION:
        loss, metric = k.losses.MeanSquaredError(), k.metrics.MeanAbsoluteError(name="mae")
    elif is_single_output(tuple(model.output_shape)):  # a binary classifier: a sigmoid, or one logit
        loss = k.losses.BinaryCrossentropy(from_logits=from_logits)
        metric = k.metrics.BinaryAccuracy(threshold=0.0 if from_logits else 0.5)
    else:
        loss, metric = k.losses.SparseCategoricalCrossentropy(from_logits=from_logits), "accuracy"
    model.compile(
        optimizer=k.optimizers.Adam((gentle and ctx.finetune_learning_rate) or ctx.learning_rate),
        loss=loss,
        metrics=[metric],
    )
    model.fit(
        ctx.x_train,
        ctx.y_train,
        batch_size=ctx.batch_size,
        epochs=ctx.epochs,
        shuffle=True,
        verbose=ctx.verbose,
        callbacks=list(callbacks),
    )


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a Keras model (fake-quant QAT models included) on numpy data."""
    from toolkit.top1 import top1

    predictions = model.predict(x, batch_size=256, verbose=0)
    return float((top1(predictions) == y).mean())


def validation_score(model: Any, ctx: PassContext) -> tuple[str, float]:
    """(name, value) of the task's headline figure for a Keras model (fake-quant QAT models
    included) on the validation split: top-1 accuracy, or MAE."""
    from toolkit.task import score_outputs

    scores = score_outputs(model.predict(ctx.x_val, batch_size=256, verbose=0), ctx.y_val, ctx.task)
    name = "mae" if ctx.task == REGRESSION else "accuracy"
    return name, scores[name]
