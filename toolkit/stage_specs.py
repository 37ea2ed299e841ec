"""What each cached stage's output depends on, as frozen dataclasses.

A stage's cache key is `stable_hash(asdict(spec))` (plus library versions): every input is a
named field, so a setting that changes an output cannot be left out of its key by accident,
and a setting that does not (e.g. the int8 I/O type of an fp32 export) is simply not a field.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class BaselineSpec:
    """The full model: trained from the zoo (`model`, training settings) or a user's file (`file_sha256`)."""

    data: str
    model: str
    file_sha256: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    patience: int | None = None
    seed: int | None = None
    format_version: int = 1  # bumped when what the baseline stage stores changes


@dataclass(frozen=True)
class VariantSpec:
    """A compressed model: its parent, the passes with their parameters, and fine-tuning."""

    baseline: str
    steps: tuple[Any, ...]
    finetune_epochs: int
    epochs: int
    batch_size: int
    learning_rate: float
    finetune_learning_rate: float
    seed: int
    format_version: int = 2  # 2: a chain's last step starts from its prefix chain's saved model


@dataclass(frozen=True)
class ExportSpec:
    """One artifact file: the variant, the runtime's own settings that change its bytes, the
    int8 calibration sample (count and seed), and where it is written."""

    format_version: int
    variant: str
    runtime: str
    precision: str
    settings: Mapping[str, Any]
    calibration: tuple[int, int] | None
    path: str


@dataclass(frozen=True)
class BenchSpec:
    """One record: the artifact's bytes, how it is measured, the data it is scored against, the
    target profile it is checked against, and the machine that times it (this CPU, or a device
    with its CPU, runtimes and delegates; `toolkit.devices`)."""

    format_version: int
    sha256: str
    path: str
    settings: Mapping[str, Any]
    baseline: str
    target: str
    target_file_sha256: str
    compiler_available: bool
    timed_on: str
    device_accuracy: bool = False


def spec_key(cache: Any, stage: str, spec: Any) -> str:
    """The cache key of `spec` for `stage`."""
    return cache.key(stage, asdict(spec))
