"""Knowledge distillation into a smaller student, and the same student trained without a teacher.

Both start from the same initial weights (same seed) and run the same training loop for the
same epochs, so "distill" vs "scratch" isolates what the teacher's soft labels are worth.

loss = alpha · CE(labels, student) + (1 − alpha) · T² · KL(softmax(teacher/T) ‖ softmax(student/T))

A regression has no soft labels to soften: its student learns the targets and the teacher's
outputs, loss = alpha · MSE(targets, student) + (1 − alpha) · MSE(teacher, student).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from toolkit._tf import keras, tf
from toolkit.errors import EdgesmithError
from toolkit.passes.context import PassContext, PassNotApplicable, output_is_softmax
from toolkit.task import REGRESSION


@dataclass(frozen=True)
class Params:
    """`student`: zoo model (default: the teacher's own architecture, zoo or its graph); `width`:
    its width multiplier, or `params`: the fraction of the teacher's parameters to size it to;
    `temperature`, `alpha`: the distillation loss; `epochs`: default = training epochs."""

    student: str | None = None
    width: float = 0.5
    params: float | None = None
    temperature: float = 4.0
    alpha: float = 0.1
    epochs: int | None = None

    POSITIONAL: ClassVar[tuple[str, ...]] = ("student",)
    EXAMPLE: ClassVar[str] = "distill:student=mlp,width=0.5,temperature=4,alpha=0.1 or distill:params=0.25"

    def __post_init__(self) -> None:
        if not 0.0 < self.width <= 4.0:
            raise EdgesmithError(f"distill width {self.width:g} is out of range", "use a multiplier like 0.5")
        if self.params is not None and not 0.0 < self.params < 1.0:
            raise EdgesmithError(f"distill params {self.params:g} is out of range",
                                 "use a fraction of the teacher's parameters below 1, e.g. params=0.25")
        if self.params is not None and self.width != Params.width:
            raise EdgesmithError("distill takes width or params, not both", "keep one, e.g. distill:params=0.25")
        if self.temperature <= 0.0:
            raise EdgesmithError(f"distill temperature {self.temperature:g} must be positive", "use e.g. temperature=4")
        if not 0.0 <= self.alpha <= 1.0:
            raise EdgesmithError(f"distill alpha {self.alpha:g} is out of range", "use a weight in [0, 1], e.g. alpha=0.1")
        if self.epochs is not None and self.epochs < 1:
            raise EdgesmithError(f"distill epochs {self.epochs} must be at least 1", "use e.g. epochs=30")

    def suffix(self) -> str:
        """Only non-default settings appear, so the common case reads simply `distill`."""
        default = Params()
        parts = [self.student] if self.student else []
        if self.width != default.width:
            parts.append(f"w{self.width * 100:.4g}")
        if self.params is not None:
            parts.append(f"p{self.params * 100:.4g}")
        if self.temperature != default.temperature:
            parts.append(f"t{self.temperature:g}")
        if self.alpha != default.alpha:
            parts.append(f"a{self.alpha * 100:.4g}")
        if self.epochs is not None:
            parts.append(f"e{self.epochs}")
        return "".join(f"-{part}" for part in parts)


def apply(model: Any, params: Params, ctx: PassContext) -> Any:
    """Train a new student on the teacher's (`ctx.teacher`) softened outputs plus the labels."""
    student = build_student(params, ctx)
    teacher_logits = _logits_of(ctx.teacher, ctx.x_train)
    _train(student, params, ctx, teacher_logits)
    return student


def apply_scratch(model: Any, params: Params, ctx: PassContext) -> Any:
    """The control: the same student, same initial weights and loop, trained on labels only."""
    student = build_student(params, ctx)
    _train(student, params, ctx, teacher_logits=None)
    return student


def build_student(params: Params, ctx: PassContext) -> Any:
    """Seeded, so distill and its scratch control start from identical weights. A student the
    user did not name must be smaller than the teacher: otherwise the variant is no compression."""
    from toolkit.models import count_params
    from toolkit.passes.student import choose_student
    from toolkit.top1 import is_single_output

    if is_single_output(tuple(ctx.teacher.output_shape)) and ctx.task != REGRESSION:
        raise PassNotApplicable("distillation needs class scores, and the full model has a single output (a binary classifier)",
                                "compress it with prune, cluster or qat, or give it one output per class")
    chosen = choose_student(ctx.teacher, tuple(ctx.input_shape), ctx.num_classes, params.student, params.width,
                            params.params, ctx.task)
    keras().utils.set_random_seed(ctx.seed)
    student = keras().models.clone_model(chosen.model)  # fresh weights from the seed just set
    teacher_params, student_params = count_params(ctx.teacher), count_params(student)
    ratio = student_params / teacher_params
    if ratio >= 1.0 and not params.student:
        raise PassNotApplicable(
            f"distill's student, {chosen.how}, has {student_params:,} parameters, {ratio:.2f}× the teacher's "
            f"{teacher_params:,}: it would not be a compression",
            "use a smaller width (e.g. width=0.5) or a parameter fraction (e.g. distill:params=0.25)",
        )
    ctx.log(f"  student: {chosen.how}, {student_params:,} parameters ({ratio:.2f}× the teacher's {teacher_params:,})")
    ctx.notes.update(student=chosen.how, student_width=round(chosen.width, 4), teacher_params=teacher_params,
                     student_params=student_params, params_ratio=round(ratio, 4))
    return student


def distillation_loss(labels: Any, student_logits: Any, teacher_logits: Any, temperature: float, alpha: float) -> Any:
    """Mean over the batch of alpha·CE + (1 − alpha)·T²·KL; T² keeps soft-label gradients on scale."""
    t = tf()
    hard = keras().losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
    if teacher_logits is None:
        return t.reduce_mean(hard)
    soft_teacher = t.nn.softmax(teacher_logits / temperature)
    kl = t.reduce_sum(
        soft_teacher * (t.nn.log_softmax(teacher_logits / temperature) - t.nn.log_softmax(student_logits / temperature)),
        axis=-1,
    )
    return t.reduce_mean(alpha * hard + (1.0 - alpha) * temperature**2 * kl)


def regression_distillation_loss(targets: Any, student_outputs: Any, teacher_outputs: Any, alpha: float) -> Any:
    """Mean over the batch of alpha·MSE(targets) + (1 − alpha)·MSE(teacher's outputs)."""
    t = tf()
    hard = t.reduce_mean(t.square(targets - student_outputs))
    if teacher_outputs is None:
        return hard
    return alpha * hard + (1.0 - alpha) * t.reduce_mean(t.square(teacher_outputs - student_outputs))


def _train(student: Any, params: Params, ctx: PassContext, teacher_logits: np.ndarray | None) -> None:
    """A plain seeded loop shared by distill and scratch; scratch is the alpha = 1 case."""
    t, k = tf(), keras()
    logits_of = _logits_model(student)
    alpha = params.alpha if teacher_logits is not None else 1.0
    if ctx.task == REGRESSION:
        loss_of = lambda y, out, teacher: regression_distillation_loss(y, out, teacher, alpha)  # noqa: E731
    else:
        loss_of = lambda y, out, teacher: distillation_loss(y, out, teacher, params.temperature, alpha)  # noqa: E731
    optimizer = k.optimizers.Adam(ctx.learning_rate)
    targets = teacher_logits if teacher_logits is not None else np.zeros((len(ctx.y_train), 1), np.float32)
    data = _shuffled_batches(ctx, targets.astype(np.float32))

    @t.function
    def step(x: Any, y: Any, teacher: Any) -> Any:
        with t.GradientTape() as tape:
            loss = loss_of(y, logits_of(x, training=True), teacher if teacher_logits is not None else None)
        gradients = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(gradients, student.trainable_variables))
        return loss

    epochs = params.epochs or ctx.student_epochs
    for epoch in range(epochs):
        losses = [float(step(x, y, teacher)) for x, y, teacher in data]
        if ctx.verbose:
            ctx.log(f"  epoch {epoch + 1}/{epochs} loss {np.mean(losses):.4f}")


def _logits_model(model: Any) -> Any:
    """A model sharing `model`'s layers that outputs logits: the input of a final softmax layer,
    or log-probabilities when the softmax is fused into the last Dense (equal up to a constant,
    which softmax and cross-entropy ignore)."""
    k = keras()
    last = model.layers[-1]
    if isinstance(last, k.layers.Softmax) or (
        isinstance(last, k.layers.Activation) and output_is_softmax(model)
    ):
        return k.Model(model.inputs, last.input)
    if not output_is_softmax(model):
        return model
    epsilon = k.backend.epsilon()
    return lambda x, training=False: tf().math.log(tf().maximum(model(x, training=training), epsilon))


def _shuffled_batches(ctx: PassContext, targets: np.ndarray) -> Any:
    """(x, y, teacher) batches in a seeded order reshuffled every epoch. The batches are
    gathered by index, so a streamed training split (data_stream.py) is only float32 a batch
    at a time; the order is the one shuffling the samples themselves would give."""
    t = tf()

    def gather(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(ctx.x_train[index], np.float32), ctx.y_train[index], targets[index]

    return (
        t.data.Dataset.range(len(ctx.y_train))
        .shuffle(len(ctx.y_train), seed=ctx.seed, reshuffle_each_iteration=True)
        .batch(ctx.batch_size)
        .map(lambda index: t.numpy_function(gather, [index], (t.float32, t.as_dtype(ctx.y_train.dtype), t.float32)))
    )


def _logits_of(model: Any, x: np.ndarray) -> np.ndarray:
    """Teacher logits for every training sample, computed once (the teacher never changes)."""
    logits = _logits_model(model)
    batches = [np.asarray(logits(x[i : i + 256], training=False)) for i in range(0, len(x), 256)]
    return np.concatenate(batches).astype(np.float32)
