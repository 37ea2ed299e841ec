"""The search space: the `[search]` table of an experiment file, checked, and how one trial
samples a chain and a precision from it.

Ranges are sampled on a 0.05 grid so chain ids (which round sparsity to whole percent) stay
readable and two trials that draw the same point share every cached stage. Each of prune,
cluster and distill is also switched on or off per trial, so the empty chain (the full model at
one precision) is in the space too.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from toolkit.config import PRECISIONS, SEARCH_TABLE, Experiment, from_dict, read_toml
from toolkit.errors import EdgesmithError

GRID = 0.05  # step of the sparsity and width ranges
OBJECTIVES = {"accuracy": "maximize", "latency": "minimize", "size": "minimize"}
OBJECTIVE_PAIRS = (("accuracy", "latency"), ("accuracy", "size"))
DIMENSIONS = ("prune", "cluster", "distill_width", "qat", "precision")
KEYS = (*DIMENSIONS, "objectives")
EXAMPLE = 'e.g. [search]\nprune = [0.3, 0.9]\nprecision = ["fp32", "int8"]'


@dataclass(frozen=True)
class SearchSpace:
    """What a trial may choose; None: that step is never used."""

    prune: tuple[float, float] | None = None
    cluster: tuple[int, ...] | None = None
    distill_width: tuple[float, float] | None = None
    qat: tuple[bool, ...] | None = None
    precision: tuple[str, ...] | None = None  # None: the experiment's precisions the target supports
    objectives: tuple[str, str] = OBJECTIVE_PAIRS[0]

    @property
    def directions(self) -> list[str]:
        """Optuna's study directions, one per objective."""
        return [OBJECTIVES[name] for name in self.objectives]

    def sample(self, trial: Any, precisions: tuple[str, ...]) -> tuple[list[str], str]:
        """(chain steps, precision) for one Optuna trial; `precisions` are those the target supports.
        Order: distill (trains a new model), prune, cluster, qat (last: int8 export only)."""
        chain = []
        if self.distill_width and trial.suggest_categorical("distill", [True, False]):
            chain.append(f"distill:width={_on_grid(trial, 'distill_width', self.distill_width):g}")
        if self.prune and trial.suggest_categorical("prune", [True, False]):
            chain.append(f"prune:{_on_grid(trial, 'sparsity', self.prune):g}")
        if self.cluster and trial.suggest_categorical("cluster", [True, False]):
            chain.append(f"cluster:{trial.suggest_categorical('clusters', list(self.cluster))}")
        if self.qat and trial.suggest_categorical("qat", list(self.qat)):
            return [*chain, "qat"], "int8"
        return chain, trial.suggest_categorical("precision", list(self.precision or precisions))


def parse_space(table: Any, source: str = "experiment") -> SearchSpace:
    """A SearchSpace from the `[search]` table, every mistake named with its fix."""
    if not isinstance(table, Mapping):
        raise EdgesmithError(f"{source}: 'search' must be a table", EXAMPLE)
    for key in table:
        if key not in KEYS:
            guess = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"did you mean '{guess[0]}'?" if guess else f"known keys: {', '.join(KEYS)}"
            raise EdgesmithError(f"{source}: unknown key '{key}' in [search]", hint)
    if not any(key in table for key in DIMENSIONS):
        raise EdgesmithError(f"{source}: [search] has nothing to search", f"give at least one of {', '.join(DIMENSIONS)}, {EXAMPLE}")
    return SearchSpace(
        prune=_range(table, "prune", 0.0, 1.0, source) if "prune" in table else None,
        cluster=_clusters(table["cluster"], source) if "cluster" in table else None,
        distill_width=_range(table, "distill_width", 0.0, 4.0, source) if "distill_width" in table else None,
        qat=_choices(table["qat"], "qat", bool, (True, False), source) if "qat" in table else None,
        precision=_choices(table["precision"], "precision", str, PRECISIONS, source) if "precision" in table else None,
        objectives=_objectives(table.get("objectives", list(OBJECTIVE_PAIRS[0])), source),
    )


def _on_grid(trial: Any, name: str, bounds: tuple[float, float]) -> float:
    low, high = _grid_bounds(bounds)
    return round(trial.suggest_float(name, low, high, step=GRID), 2)


def _grid_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    """The first and last multiple of GRID inside [low, high] (rounded: 0.3 / 0.05 is 5.999…)."""
    return round(math.ceil(round(bounds[0] / GRID, 6)) * GRID, 2), round(math.floor(round(bounds[1] / GRID, 6)) * GRID, 2)


def _range(table: Mapping[str, Any], key: str, above: float, at_most: float, source: str) -> tuple[float, float]:
    """[low, high] with above < low ≤ high ≤ at_most (below 1 for sparsity), holding a grid point."""
    value = table[key]
    example = f"e.g. {key} = [0.3, 0.9]" if key == "prune" else f"e.g. {key} = [0.25, 1.0]"
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise EdgesmithError(f"{source}: [search] {key} must be a range [low, high] of two numbers, got {value!r}", example)
    low, high = float(value[0]), float(value[1])
    inside = above < low <= high and (high < at_most if key == "prune" else high <= at_most)
    if not inside:
        limit = f"below {at_most:g}" if key == "prune" else f"at most {at_most:g}"
        raise EdgesmithError(f"{source}: [search] {key} = [{low:g}, {high:g}] is not a range above {above:g} and {limit}",
                             f"{example} (low first)")
    grid_low, grid_high = _grid_bounds((low, high))
    if grid_low > grid_high:
        raise EdgesmithError(f"{source}: [search] {key} = [{low:g}, {high:g}] holds no multiple of {GRID:g}",
                             f"widen it; values are sampled in steps of {GRID:g}, {example}")
    return low, high


def _clusters(value: Any, source: str) -> tuple[int, ...]:
    from toolkit.passes import parse_step

    counts = _choices(value, "cluster", int, None, source)
    for count in counts:
        try:
            parse_step(f"cluster:{count}")
        except EdgesmithError as exc:
            raise EdgesmithError(f"{source}: [search] cluster: {exc.problem}", exc.fix) from None
    return counts


def _choices(value: Any, key: str, kind: type, allowed: tuple | None, source: str) -> tuple:
    """A non-empty list of distinct values of `kind`, each in `allowed` when given."""
    example = {"qat": "e.g. qat = [true, false]", "precision": 'e.g. precision = ["fp16", "int8"]',
               "cluster": "e.g. cluster = [8, 16, 32]"}[key]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(type(item) is kind for item in value)):  # type(): True is not a cluster count
        raise EdgesmithError(f"{source}: [search] {key} must be a non-empty list of {kind.__name__} values, got {value!r}", example)
    if len(set(value)) != len(value):
        raise EdgesmithError(f"{source}: [search] {key} lists a value twice ({list(value)!r})", "list each choice once")
    for item in value:
        if allowed is not None and item not in allowed:
            guess = difflib.get_close_matches(str(item), [str(a) for a in allowed], n=1)
            hint = f"did you mean '{guess[0]}'?" if guess else f"choose from {', '.join(map(str, allowed))}"
            raise EdgesmithError(f"{source}: [search] {key} has unknown value {item!r}", hint)
    return tuple(value)


def _objectives(value: Any, source: str) -> tuple[str, str]:
    pairs = " or ".join(str(list(pair)).replace("'", '"') for pair in OBJECTIVE_PAIRS)
    if isinstance(value, (list, tuple)) and tuple(value) in OBJECTIVE_PAIRS:
        return tuple(value)  # type: ignore[return-value]
    if isinstance(value, (list, tuple)):
        for item in value:
            if item not in OBJECTIVES:
                guess = difflib.get_close_matches(str(item), OBJECTIVES, n=1)
                hint = f"did you mean '{guess[0]}'?" if guess else f"use {pairs}"
                raise EdgesmithError(f"{source}: [search] objectives has unknown objective {item!r}", hint)
    raise EdgesmithError(f"{source}: [search] objectives = {value!r} is not a supported pair", f"use {pairs}")


def load_search(path: Path) -> tuple[Experiment, SearchSpace]:
    """(Experiment, SearchSpace) from an experiment file with a `[search]` table."""
    raw = read_toml(Path(path))
    if SEARCH_TABLE not in raw:
        raise EdgesmithError(f"{path} has no [search] table", f"add one, {EXAMPLE}")
    space = parse_space(raw.pop(SEARCH_TABLE), str(path))
    return from_dict(raw, source=str(path)), space
