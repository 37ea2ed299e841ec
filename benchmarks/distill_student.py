"""Distilled vs scratch student at a quarter of the teacher's parameters, for two user-style models.

The teachers are treated as a user's own model files (not zoo names), so the student is the
teacher's own graph at the width the `params=` search picks: the Fashion-MNIST `cnn`, and a
tf_keras MobileNetV2-0.35 on Fashion-MNIST padded to 32×32. Both students train from the same
seeded weights for the same epochs; only the teacher's soft labels differ.

    python benchmarks/distill_student.py --train 5000 --epochs 4
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from toolkit._tf import keras, seed_everything
from toolkit.data import load_dataset
from toolkit.models import build, compile_for_training, count_params
from toolkit.passes import PassContext, apply_chain, control_chain, parse_chain
from toolkit.passes.context import accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=60000, help="training samples used (a seeded subset)")
    parser.add_argument("--test", type=int, default=10000, help="test samples scored")
    parser.add_argument("--epochs", type=int, default=15, help="epochs for the teacher and for each student")
    parser.add_argument("--params", type=float, default=0.25, help="student size as a fraction of the teacher's")
    args = parser.parse_args()
    data = load_dataset("fashion-mnist", seed=0)
    order = np.random.default_rng(0).permutation(len(data.x_train))[: args.train]
    split = (data.x_train[order], data.y_train[order], data.x_val[:2000], data.y_val[:2000],
             data.x_test[: args.test], data.y_test[: args.test])
    teachers = {
        "fashion cnn": (lambda: build("cnn", data.input_shape, 10), lambda x: x),
        "MobileNetV2-0.35 (32x32)": (_mobilenet_v2, lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))),
    }
    print(f"Fashion-MNIST: {len(order)} training samples, {args.test} test samples, {args.epochs} epochs, "
          f"student params={args.params:g}")
    for name, (make, reshape) in teachers.items():
        _compare(name, make, *(reshape(a) if i % 2 == 0 else a for i, a in enumerate(split)), args)


def _mobilenet_v2() -> Any:
    """BatchNorm momentum 0.9 instead of 0.999: with a few hundred steps the default moving
    statistics stay near their initial values and the model scores chance in inference mode.
    The student is cloned from this graph, so it gets the same momentum."""
    model = keras().applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 1), weights=None, classes=10)
    for layer in model.layers:
        if isinstance(layer, keras().layers.BatchNormalization):
            layer.momentum = 0.9
    return model


def _compare(name: str, make: Any, x_train, y_train, x_val, y_val, x_test, y_test, args: argparse.Namespace) -> None:
    started = time.time()
    seed_everything(0)
    model = make()
    teacher = keras().Model(model.inputs, model.outputs, name="user_model")  # a user's file, not a zoo name
    compile_for_training(teacher, 1e-3)
    teacher.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
    ctx = PassContext(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, num_classes=10,
                      input_shape=tuple(x_train.shape[1:]), epochs=args.epochs, batch_size=64, learning_rate=1e-3,
                      seed=0, teacher=teacher, log=lambda line: None)
    steps = parse_chain([f"distill:params={args.params:g}"])
    distilled = apply_chain(teacher, steps, ctx)
    scratch = apply_chain(teacher, control_chain(steps), ctx)
    note = distilled.info["steps"][0]
    scores = [accuracy(m, x_test, y_test) * 100 for m in (teacher, distilled.model, scratch.model)]
    print(f"{name}: teacher {count_params(teacher):,} params {scores[0]:.2f}%; student ({note['student']}) "
          f"{note['student_params']:,} params = {note['params_ratio']:.3f}x; distilled {scores[1]:.2f}% vs scratch "
          f"{scores[2]:.2f}% ({scores[1] - scores[2]:+.2f} pp) [{time.time() - started:.0f} s]")


if __name__ == "__main__":
    main()
