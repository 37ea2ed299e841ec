"""The model's own input preprocessing: how raw samples (pixels) become model inputs.

A model trained on [-1, 1] inputs scores near chance on [0, 1] inputs, so the mapping is part of
the experiment: parsed once, applied identically to training, calibration, evaluation and
benchmark inputs, and recorded in run.json so a device is fed what the model was trained on.

Specs (raw values are the dataset's own units: 0–255 for images):

    scale:A            x · A           (A a number or a fraction: scale:1/255)
    none               x               (the model has its own Rescaling/Normalization layer)
    mobilenet          x / 127.5 − 1   (MobileNet, EfficientNet-lite, …: inputs in [-1, 1])
    mean_std:M,S       (x − M) / S     one mean and std for every channel
    mean_std:M1,M2,M3/S1,S2,S3         one mean and std per channel
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import EdgesmithError

KINDS = ("scale", "none", "mobilenet", "mean_std")
SYNTAX = "use scale:1/255, none, mobilenet, mean_std:M,S or per channel mean_std:M1,M2,M3/S1,S2,S3"


@dataclass(frozen=True)
class Preprocess:
    """A parsed spec; `mean`/`std` are per channel (one value = every channel)."""

    spec: str
    kind: str
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    factor: float = 1.0  # scale:A

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Raw samples → float32 model inputs, computed the way Keras users write it."""
        x = x.astype(np.float32)
        if self.kind == "scale":
            return x * np.float32(self.factor)
        if self.kind == "mobilenet":
            return x / np.float32(127.5) - np.float32(1.0)
        if self.kind == "mean_std":
            self.check_channels(channels_of(x.shape))
            return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (a, b) with input = raw · a + b: what a device must compute."""
        if self.kind == "scale":
            return np.array([self.factor]), np.array([0.0])
        std, mean = np.asarray(self.std, np.float64), np.asarray(self.mean, np.float64)
        return 1.0 / std, -mean / std

    def check_channels(self, channels: int) -> None:
        """Per-channel values must match the samples' channels (before anything is written)."""
        if len(self.mean) > 1 and len(self.mean) != channels:
            raise EdgesmithError(
                f"preprocess '{self.spec}' gives {len(self.mean)} channel values but the samples have {channels} channel(s)",
                "give one mean/std per channel, or a single mean_std:M,S for all",
            )

    def to_dict(self) -> dict[str, Any]:
        """For run.json and the manifest: the spec and the affine map it amounts to."""
        scale, offset = self.affine()
        single = lambda values: float(values[0]) if len(values) == 1 else [float(v) for v in values]  # noqa: E731
        return {"spec": self.spec, "scale": single(scale), "offset": single(offset), "dtype": "float32",
                "formula": "input = raw * scale + offset"}


def channels_of(shape: tuple[int, ...]) -> int:
    """Channels a per-channel value applies to: the last axis of images (n, h, w, c) and of
    feature vectors (n, features); a bare (n, h, w) image has one."""
    return int(shape[-1]) if len(shape) in (2, 4) else 1


def parse_preprocess(spec: str) -> Preprocess:
    """Parse a preprocess spec, naming the mistake and the syntax on error."""
    text = spec.strip()
    kind, _, args = text.partition(":")
    if kind not in KINDS:
        raise EdgesmithError(f"preprocess '{spec}' is not understood", SYNTAX)
    if kind in ("none", "mobilenet"):
        if args:
            raise EdgesmithError(f"preprocess '{spec}' takes no arguments", f"write preprocess = \"{kind}\"")
        return Preprocess(text, kind, (127.5,), (127.5,)) if kind == "mobilenet" else Preprocess(text, kind)
    if kind == "scale":
        factor = _number(args, spec)
        if factor <= 0:
            raise EdgesmithError(f"preprocess '{spec}' needs a positive factor", "e.g. scale:1/255")
        return Preprocess(text, kind, factor=factor)
    mean, std = _mean_std(args, spec)
    if any(value <= 0 for value in std):
        raise EdgesmithError(f"preprocess '{spec}' has a std that is not positive", "every std must be > 0")
    return Preprocess(text, kind, mean, std)


def _mean_std(args: str, spec: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if "/" in args:
        means, _, stds = args.partition("/")
        mean = tuple(_number(value, spec) for value in means.split(","))
        std = tuple(_number(value, spec) for value in stds.split(","))
        if len(mean) != len(std):
            raise EdgesmithError(f"preprocess '{spec}' has {len(mean)} means but {len(std)} stds", "give one of each per channel")
        return mean, std
    values = args.split(",")
    if len(values) != 2:
        raise EdgesmithError(f"preprocess '{spec}' needs a mean and a std", SYNTAX)
    return (_number(values[0], spec),), (_number(values[1], spec),)


def _number(text: str, spec: str) -> float:
    """A float or a fraction such as 1/255."""
    numerator, slash, denominator = text.strip().partition("/")
    try:
        value = float(numerator) / float(denominator) if slash else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise EdgesmithError(f"preprocess '{spec}': '{text}' is not a number", SYNTAX) from None
    if not np.isfinite(value):
        raise EdgesmithError(f"preprocess '{spec}': '{text}' is not a finite number", SYNTAX)
    return value
