"""Shared fixtures: the digits data and a tiny trained model, built once per session."""
from __future__ import annotations

import os

import numpy as np
import pytest

from toolkit.data import load_dataset

# In-process tests run on the CPU like the `edgesmith` command (deterministic kernels, CPU timings).
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def tiny_model(digits):
    """A small trained MLP: enough accuracy that quantization errors would show."""
    from toolkit.models import build
    from toolkit.train import fit

    model = build("mlp", digits.input_shape, digits.num_classes, width=0.5)
    fit(model, digits, epochs=8, batch_size=64, learning_rate=5e-3, patience=3, seed=0, log=lambda line: None)
    return model


@pytest.fixture(scope="session")
def tiny_reference(tiny_model, digits) -> np.ndarray:
    """Raw outputs of the Keras model on the test split."""
    return tiny_model.predict(digits.x_test, verbose=0)


def pattern_image(label: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 image whose pattern depends on `label` (stripes of a class-specific period
    and direction, plus noise): learnable in a few epochs, unlike random pixels."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    period = 2 + label // 2
    lines = (xx if label % 2 else yy) // period % 2
    gray = np.clip(lines * 180 + 40 + rng.normal(0, 25, (height, width)), 0, 255)
    return np.stack([gray, gray[::-1], 255 - gray], axis=-1).astype(np.uint8)


@pytest.fixture(scope="session")
def write_images():
    """write_images(folder, {class: count}, size=(W, H), suffix=".png") → writes pattern images."""
    from PIL import Image

    def write(folder, counts, size=(16, 16), suffix=".png", seed=0):
        rng = np.random.default_rng(seed)
        for label, (name, count) in enumerate(counts.items()):
            (folder / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.fromarray(pattern_image(label, size, rng)).save(folder / name / f"{index:03d}{suffix}")
        return folder

    return write


@pytest.fixture(scope="session")
def my_processes():
    """my_processes(marker) → pids of this test process's descendants whose command line holds
    `marker`. Tests that kill build workers look only here, so they never reach another test's
    workers (the suite runs on several pytest workers) or the user's own processes."""
    from pathlib import Path

    def parent_of(pid: str) -> int | None:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None

    def find(marker: bytes) -> list[int]:
        parents = {int(pid): parent_of(pid) for pid in os.listdir("/proc") if pid.isdigit()}
        mine, frontier = set(), {os.getpid()}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
            mine |= frontier
        found = []
        for pid in sorted(mine):
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                continue
        return found

    return find
