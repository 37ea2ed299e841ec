"""The one place that imports TensorFlow.

tfmot only works with Keras 2 (`tf_keras`), and the switch must be set before TensorFlow is
first imported anywhere in the process, so every module gets TensorFlow from here.
"""
from __future__ import annotations

import os
import warnings
from types import ModuleType

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# GPUs stay visible to a program that imports the package; the `edgesmith` command hides them (cli.py).


def tf() -> ModuleType:
    """Return the `tensorflow` module with legacy Keras selected and its logging quietened."""
    import tensorflow

    warnings.filterwarnings("ignore", category=UserWarning, module=r"(tf_keras|tensorflow)\.")

    tensorflow.get_logger().setLevel("ERROR")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    return tensorflow


def keras() -> ModuleType:
    """Return `tf_keras` (Keras 2), the only Keras that tfmot accepts."""
    tf()
    import tf_keras

    return tf_keras


def tfmot() -> ModuleType:
    """Return `tensorflow_model_optimization`, imported after the Keras switch."""
    tf()
    import tensorflow_model_optimization

    return tensorflow_model_optimization


def seed_everything(seed: int) -> None:
    """Make training repeatable: Python, NumPy and TensorFlow seeds, deterministic ops, and a
    fresh Keras name space (auto-named layers are `dense`, `dense_1`… in every process, so the
    files built from them are the same bytes wherever and after whatever they are built)."""
    tensorflow = tf()
    keras().backend.clear_session()
    keras().utils.set_random_seed(seed)
    tensorflow.config.experimental.enable_op_determinism()


def limit_threads(count: int) -> bool:
    """Let TensorFlow use `count` threads in this process (`train_threads`, a Ray task's CPU
    share); False when TensorFlow has already started here and keeps the threads it has."""
    threading = tf().config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) == (count, count):
        return True
    try:
        threading.set_intra_op_parallelism_threads(count)
        threading.set_inter_op_parallelism_threads(count)
    except RuntimeError:
        return False
    return True
