"""The experiment: every option of `edgesmith run`, from the CLI or a TOML file.

One frozen dataclass is the single source of truth; the CLI builds the same dict a TOML file
would, so both paths share validation and every mistake gets a message with the fix.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from toolkit.errors import EdgesmithError

DATASETS = ("digits", "fashion-mnist", "mnist", "npz", "folder", "arrays")  # arrays: Python API only
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
SEARCH_TABLE = "search"  # the [search] table of an experiment file (toolkit.search.space)
DEFAULT_TARGETS = ("cpu", "gpu", "edgetpu", "onnx-cpu")
DEFAULT_VARIANTS: tuple[tuple[str, ...], ...] = (
    ("prune:0.8", "qat"),
    ("qat",),
    ("distill",),
)


@dataclass(frozen=True)
class Variant:
    """One compression chain (ordered pass steps) and the precisions it is exported to."""

    chain: tuple[str, ...]
    precisions: tuple[str, ...] = PRECISIONS


@dataclass(frozen=True)
class Experiment:
    """Everything one run needs; defaults give a full, quick run on the embedded digits data."""

    name: str = ""
    dataset: str = "digits"
    data: str = ""
    task: str = "classification"  # or "regression": float targets, scored by MAE/RMSE (toolkit.task)
    preprocess: str = ""
    image_size: str = ""
    color: str = ""  # image folders: rgb or grayscale; "" → the model file's input channels, else rgb
    skip_bad_images: bool = False
    model: str = "cnn"
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 2e-3
    patience: int = 8
    seed: int = 0
    finetune_epochs: int = 4
    finetune_learning_rate: float = 2e-4
    precisions: tuple[str, ...] = PRECISIONS
    variants: tuple[Variant, ...] = tuple(Variant(chain) for chain in DEFAULT_VARIANTS)
    targets: tuple[str, ...] = DEFAULT_TARGETS
    targets_dir: str = ""  # a folder of extra target profiles, searched before the built-ins
    calibration_samples: int = 256
    bench_runs: int = 300
    bench_threads: int = 1
    bench_batch: int = 32
    bench_target_width: float = 0.02  # adaptive plan: sample until repeat95_p50 is within ±2% of p50; 0: fixed plan
    bench_budget_s: float = 0.5  # adaptive plan: seconds per artifact after which no session is added
    opset: int = 17
    max_accuracy_drop: float = 1.0
    max_mae_increase: float = 5.0  # regression: the budget, in percent of the full model's MAE
    max_latency_ms: float = 0.0
    max_size_kb: float = 0.0
    float_fallback: str = ""  # "auto", "auto:N" or layer names: adds the int8-mixed precision (toolkit.quant_debug)
    devices: tuple[str, ...] = ()  # "TARGET=ssh://user@host[:port]": time that target there
    device_accuracy: bool = False  # also run the test split on each device, against the host's outputs
    train_threads: int = 0  # TensorFlow threads for training and conversion; 0: every core (Ray: ray_num_cpus)
    executor: str = "local"  # "processes": variants build in a local process pool; "ray": as Ray tasks (toolkit.scale)
    build_workers: int = 0  # executor "processes": worker processes; 0: one per core
    ray_address: str = ""  # empty: start a local Ray instance; "HOST:PORT": join that cluster
    ray_num_cpus: float = 1.0  # CPUs one variant's build task reserves
    ray_num_gpus: float = 0.0  # GPUs one variant's build task reserves (TensorFlow uses them there)
    output: str = "runs"
    force: bool = False
    no_wait: bool = False
    allow_unsafe: bool = False

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # the TOML loader's checks, for Experiment(...) too
            value = getattr(self, spec.name)
            if spec.name != "variants" or not all(isinstance(item, Variant) for item in value):
                object.__setattr__(self, spec.name, _coerce(spec.name, value, "Experiment"))
        _check_choice("dataset", self.dataset, DATASETS)
        for precision in self.precisions:
            _check_choice("precisions", precision, PRECISIONS)
        _check_unique("precisions", self.precisions)
        _check_unique("targets", self.targets)
        if self.name and (self.name.strip() in ("", ".", "..") or re.search(r"[/\\]", self.name)):
            raise EdgesmithError(f"name {self.name!r} is not a folder name (the run folder is OUTPUT/NAME)",
                                 "use letters, digits, '-', '_' or '.', without / (or leave name unset: DATASET-MODEL)")
        for variant in self.variants:
            if not variant.chain:
                raise EdgesmithError("a variant has an empty chain: that is the full model, which every run exports",
                                     "list the full model's precisions in `precisions`, and give each variant a step")
            for precision in variant.precisions:
                _check_choice("variants.precisions", precision, PRECISIONS)
            _check_unique("variants.precisions", variant.precisions)
        if self.seed < 0:
            raise EdgesmithError(f"seed must not be negative (got {self.seed})", "use 0 or a positive integer")
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        _check_positive("finetune_epochs", self.finetune_epochs)
        _check_positive("patience", self.patience)
        _check_positive("calibration_samples", self.calibration_samples)
        _check_positive("bench_runs", self.bench_runs)
        _check_positive("bench_threads", self.bench_threads)
        _check_positive("bench_batch", self.bench_batch)
        _check_bench_plan(self)
        for key in ("learning_rate", "finetune_learning_rate"):
            if not 0 < getattr(self, key) < 1:
                raise EdgesmithError(
                    f"{key} {getattr(self, key)} is out of range", "use a small positive number such as 0.001"
                )
        for key in ("max_accuracy_drop", "max_mae_increase", "max_latency_ms", "max_size_kb"):
            if not math.isfinite(getattr(self, key)) or getattr(self, key) < 0:
                raise EdgesmithError(f"{key} must be a number from 0 (got {getattr(self, key)})", f"set {key} to 0 (no limit) or a positive budget")
        if not 14 <= self.opset <= 18:
            raise EdgesmithError(f"opset {self.opset} is not supported", "use an ONNX opset from 14 to 18 (tested range)")
        if self.dataset == "npz" and not self.data:
            raise EdgesmithError("dataset 'npz' needs a file", "pass --data FILE.npz")
        _check_data_options(self)
        _check_task(self)
        if self.float_fallback:
            from toolkit.quant_debug.fallback import parse_fallback

            parse_fallback(self.float_fallback)
        _check_executor(self)
        if not self.targets:
            raise EdgesmithError("no targets given", "list at least one target, e.g. targets = [\"cpu\"]")
        from toolkit.devices import parse_assignment

        for assignment in self.devices:
            parse_assignment(assignment)

    @property
    def run_name(self) -> str:
        """The run folder's name: explicit, or dataset-model so runs do not collide."""
        label = re.sub(r"[^\w.]+", "-", self.model) if ":" in self.model else Path(self.model).stem  # zoo spec or file
        return self.name or f"{self.dataset}-{label}"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data (stored in the run's manifest)."""
        data = dataclasses.asdict(self)
        data["variants"] = [
            {"chain": list(v.chain), "precisions": list(v.precisions)} for v in self.variants
        ]
        return data


def _check_data_options(experiment: Experiment) -> None:
    """Preprocess spec, image size and color mode, checked before anything is read or written."""
    from toolkit.data_folder import check_color, parse_image_size
    from toolkit.preprocess import parse_preprocess

    if experiment.preprocess:
        parse_preprocess(experiment.preprocess)
    parse_image_size(experiment.image_size)
    check_color(experiment.color)
    if experiment.dataset == "folder" and not experiment.data:
        raise EdgesmithError("dataset 'folder' needs a folder", "pass --data DIR with one sub-folder of images per class")


def _check_task(experiment: Experiment) -> None:
    """The parts of edgesmith that score by accuracy only say so before anything runs (the
    dataset's targets are checked when it is loaded: toolkit.data)."""
    from toolkit.task import REGRESSION, check_task

    if check_task(experiment.task) != REGRESSION:
        return
    if experiment.float_fallback:
        raise EdgesmithError("float_fallback (int8-mixed) grows its float layers against an accuracy budget, "
                             "which a regression does not have", "drop float_fallback for task 'regression'")
    if experiment.device_accuracy:
        raise EdgesmithError("device_accuracy compares top-1 predictions on the device, which a regression does not have",
                             "drop device_accuracy for task 'regression' (its latency is still timed on the device)")


def _check_bench_plan(experiment: Experiment) -> None:
    """The adaptive plan's width is a share of p50 and its budget a time; 0 width is the fixed plan."""
    if not 0 <= experiment.bench_target_width < 1:
        raise EdgesmithError(f"bench_target_width {experiment.bench_target_width:g} is not a share of p50",
                             "use e.g. 0.02 (sample until the repeat interval is within ±2%) or 0 (fixed plan of bench_runs)")
    if experiment.bench_budget_s <= 0:
        raise EdgesmithError(f"bench_budget_s must be positive (got {experiment.bench_budget_s:g})",
                             "give the seconds per artifact the adaptive plan may spend, e.g. 0.5")


def _check_executor(experiment: Experiment) -> None:
    from toolkit.scale import EXECUTORS

    _check_choice("executor", experiment.executor, EXECUTORS)
    if experiment.build_workers < 0:
        raise EdgesmithError(f"build_workers must not be negative (got {experiment.build_workers})",
                             "use 0 (one per core) or a number of processes")
    if experiment.train_threads < 0:
        raise EdgesmithError(f"train_threads must not be negative (got {experiment.train_threads})",
                             "use 0 (every core) or a number of threads")
    if experiment.ray_num_cpus <= 0 or experiment.ray_num_gpus < 0:
        raise EdgesmithError(f"ray_num_cpus must be positive and ray_num_gpus not negative "
                             f"(got {experiment.ray_num_cpus:g}, {experiment.ray_num_gpus:g})",
                             "e.g. ray_num_cpus = 2, ray_num_gpus = 0.5")
    if experiment.executor != "ray" and experiment.ray_address:
        raise EdgesmithError("ray_address is set but the executor is local", 'add executor = "ray" (--executor ray)')


_FIELDS = {f.name: f for f in dataclasses.fields(Experiment)}
LIST_FIELDS = ("precisions", "targets", "devices")


def from_dict(raw: Mapping[str, Any], source: str = "experiment") -> Experiment:
    """Build an Experiment, rejecting unknown keys (with a did-you-mean) and wrong types."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELDS:
            guess = difflib.get_close_matches(key, list(_FIELDS), n=1)
            hint = f"did you mean '{guess[0]}'?" if guess else f"known keys: {', '.join(_FIELDS)}"
            raise EdgesmithError(f"{source}: unknown key '{key}'", hint)
        values[key] = _coerce(key, value, source)
    return Experiment(**values)


def load_experiment(path: Path, overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Read a TOML experiment file; CLI options given explicitly override its values."""
    raw = read_toml(path)
    raw.pop(SEARCH_TABLE, None)  # `edgesmith search`'s space: one file serves both commands
    raw.update(overrides or {})
    return from_dict(raw, source=str(path))


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of a TOML experiment file, before any key is checked (`search` takes its own table out)."""
    path = Path(path)
    if not path.is_file():
        raise EdgesmithError(f"experiment file {path} does not exist", "check the path")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgesmithError(f"{path} is not valid TOML ({exc})", "fix the syntax at that line") from None


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check one value's type against the dataclass field and convert lists to tuples."""
    if key == "variants":
        return _variants(value, source)
    default = _FIELDS[key].default
    if key in LIST_FIELDS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise EdgesmithError(f"{source}: '{key}' must be a list of strings", f"e.g. {key} = {list(default)!r}")
        return tuple(value)
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise EdgesmithError(
            f"{source}: '{key}' must be {expected.__name__}, got {type(value).__name__} {value!r}",
            f"e.g. {key} = {default!r}",
        )
    return value


def _variants(value: Any, source: str) -> tuple[Variant, ...]:
    """Variants are chains: a list of step strings, or a table {chain = [...], precisions = [...]}."""
    if not isinstance(value, (list, tuple)):
        raise EdgesmithError(f"{source}: 'variants' must be a list of chains", 'e.g. variants = [["prune:0.8", "qat"]]')
    variants = []
    for item in value:
        if isinstance(item, str):
            item = [item]
        if isinstance(item, Mapping):
            unknown = set(item) - {"chain", "precisions"}
            if unknown or "chain" not in item:
                raise EdgesmithError(
                    f"{source}: a variant table needs 'chain' and may have 'precisions' (got {sorted(item)})",
                    'e.g. {chain = ["qat"], precisions = ["int8"]}',
                )
            chain, precisions = item["chain"], item.get("precisions", list(PRECISIONS))
        else:
            chain, precisions = item, list(PRECISIONS)
        chain = [chain] if isinstance(chain, str) else chain
        precisions = [precisions] if isinstance(precisions, str) else precisions
        if not isinstance(chain, (list, tuple)) or not all(isinstance(step, str) for step in chain):
            raise EdgesmithError(f"{source}: variant {chain!r} must list steps as strings", 'e.g. ["prune:0.5", "qat"]')
        variants.append(Variant(tuple(chain), tuple(precisions)))
    return tuple(variants)


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        guess = difflib.get_close_matches(value, choices, n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"choose one of {', '.join(choices)}"
        raise EdgesmithError(f"unknown {key} '{value}'", hint)


def _check_unique(key: str, values: tuple[str, ...]) -> None:
    """A target or precision listed twice would make every record twice, each timed half as often."""
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise EdgesmithError(f"{key} lists {', '.join(repeated)} more than once", f"list each of the {key} once")


def _check_positive(key: str, value: int) -> None:
    if value <= 0:
        raise EdgesmithError(f"{key} must be at least 1 (got {value})", f"set {key} to a positive number")
