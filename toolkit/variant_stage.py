"""The variant stage: a chain's Keras model, fine-tuned once and cached by its key.

A chain's last step starts from its prefix chain's saved model (`prune:0.8+qat` from
`prune:0.8`), so chains that share a prefix train it once, and a chain's bytes do not depend on
whether its prefix was cached. Models are built lazily: a fully cached variant never loads
TensorFlow's training machinery.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable

from toolkit.stage_specs import VariantSpec, spec_key

if TYPE_CHECKING:
    from toolkit.pipeline import Run

# Pruning needs optimizer steps to recover, not epochs: on a small dataset (digits: 21 steps per
# epoch) a few epochs end the sparsity schedule before the network has re-learned anything.
MIN_FINETUNE_STEPS = 400


def variant_key(state: Run, steps: tuple) -> str:
    """The cache key of a chain's model (the baseline's for the empty chain), known before it is built."""
    if not steps:
        return state.baseline_key
    exp = state.experiment
    return spec_key(state.cache, "variant", VariantSpec(
        state.baseline_key, tuple(step.spec() for step in steps), exp.finetune_epochs, exp.epochs,
        exp.batch_size, exp.learning_rate, exp.finetune_learning_rate, exp.seed,
    ))


class VariantModel:
    """The variant's Keras model, built (fine-tuned) or reloaded only when an export needs it."""

    def __init__(self, state: Run, variant_id: str, key: str, steps: tuple, baseline: Callable[[], Any]) -> None:
        self.state, self.variant_id, self.key, self.steps, self.baseline = state, variant_id, key, steps, baseline
        self.path = state.run_dir / "variants" / variant_id / "model.h5"
        self._model = None
        self._info: dict[str, Any] | None = None

    def model(self) -> Any:
        if self._model is None:
            self._model = self._load_or_build()
        return self._model

    def params(self) -> int:
        """Parameter count, from the stage cache when possible (no model load on a re-run)."""
        if not self.steps:
            return self.state.baseline_params
        if self._info is None:
            self._info = self.state.cache.get(self.key)
        if self._info is None:
            self.model()
        return self._info["params"]

    def details(self) -> dict[str, Any]:
        """What each pass did (validation accuracy per step, per-layer sparsity…), for run.json."""
        self.params()
        return self._info.get("info", {})

    def _start(self) -> tuple[Any, tuple[str, ...], tuple[dict[str, Any], ...]]:
        """What the chain's last step starts from: the baseline, or the prefix chain's model as
        saved (built and cached first if need be), so `prune:0.8+qat` reuses `prune:0.8` and a
        chain gives the same bytes whether its prefix was cached or built just now. Returns
        (model, names of the passes applied to it, what they recorded)."""
        from toolkit.passes import chain_id, load_variant_model

        prefix_steps = self.steps[:-1]
        if not prefix_steps:
            return self.baseline(), (), ()
        prefix = VariantModel(self.state, chain_id(prefix_steps), variant_key(self.state, prefix_steps), prefix_steps,
                              self.baseline)
        if self.state.cache.get(prefix.key) is None:
            prefix.model()  # builds and saves it
        return (load_variant_model(prefix.path, prefix_steps), tuple(step.name for step in prefix_steps),
                tuple(prefix.details()["steps"]))

    def _load_or_build(self) -> Any:
        from toolkit._tf import seed_everything
        from toolkit.passes import apply_chain, chain_id, load_variant_model, save_variant_model

        if not self.steps:
            return self.baseline()
        cached = self._info or self.state.cache.get(self.key)  # params() may have fetched it already
        if cached is not None:
            self._info = cached
            return load_variant_model(self.path, self.steps)
        start, applied, earlier = self._start()
        self.state.log(f"[{self.variant_id}] applying {self.steps[-1]}" + (f" to {chain_id(self.steps[:-1])}" if applied else ""))
        seed_everything(self.state.experiment.seed)  # deterministic ops whether or not this process trained the baseline
        started = time.perf_counter()
        result = apply_chain(start, self.steps[-1:], _pass_context(self.state, self.baseline()), applied, earlier)
        seconds = round(time.perf_counter() - started, 1)  # what this step costs (its prefix counts in its own)
        self.state.log(f"[{self.variant_id}] {self.steps[-1]} took {seconds:g} s")
        files = save_variant_model(result, self.path)
        self._info = {"params": int(result.params), "info": {**result.info, "build_seconds": seconds}}
        self.state.cache.put(self.key, self._info, files)
        return result.model


def _pass_context(state: Run, teacher: Any) -> Any:
    from toolkit.passes.context import PassContext

    exp, data = state.experiment, state.data
    steps_per_epoch = math.ceil(len(data.x_train) / exp.batch_size)
    epochs = max(exp.finetune_epochs, math.ceil(MIN_FINETUNE_STEPS / steps_per_epoch))
    return PassContext(
        x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val,
        num_classes=data.num_classes, input_shape=data.input_shape, epochs=epochs,
        batch_size=exp.batch_size, learning_rate=exp.learning_rate, seed=exp.seed, teacher=teacher,
        log=state.log, verbose=0, train_epochs=exp.epochs, finetune_learning_rate=exp.finetune_learning_rate,
        task=data.task,
    )
