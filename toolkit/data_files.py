"""Readers for dataset files on disk: IDX (MNIST family) and the user's npz.

Kept apart from the splitting logic so each format's checks (truncation, missing keys) read
clearly and are tested on small files the tests write themselves.
"""
from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from toolkit.errors import EdgesmithError

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Read `<prefix>-images-idx3-ubyte[.gz]` and its labels; check they match in count."""
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"), IDX_IMAGES_MAGIC)
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"), IDX_LABELS_MAGIC)
    if len(images) != len(labels):
        raise EdgesmithError(
            f"{folder}: {prefix} has {len(images)} images but {len(labels)} labels",
            "use image and label files from the same release",
        )
    return images, labels


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (optionally gzipped), refusing truncated or mismatched files."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise EdgesmithError(f"{path} cannot be read ({exc})", "re-download or reinstall the file") from None
    kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
    header_dims = 3 if magic == IDX_IMAGES_MAGIC else 1
    header_size = 4 + 4 * header_dims
    if len(raw) < header_size or int.from_bytes(raw[:4], "big") != magic:
        raise EdgesmithError(f"{path} is not an IDX {kind} file (bad header)", "check you passed the right file")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(header_dims)]
    expected = header_size + int(np.prod(dims))
    if len(raw) != expected:
        raise EdgesmithError(
            f"{path} is truncated or corrupt: {len(raw)} bytes, header says {expected}",
            "re-download or reinstall the file",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Load the four required arrays from a user's .npz, without allowing pickled objects."""
    if not path.is_file():
        raise EdgesmithError(f"npz file {path} does not exist", "pass --data FILE.npz with x_train y_train x_test y_test")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise EdgesmithError(
                    f"{path} lacks {', '.join(missing)} (has {', '.join(archive.files) or 'nothing'})",
                    "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)",
                )
            return {key: archive[key] for key in NPZ_KEYS}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise EdgesmithError(f"{path} is not a readable .npz file ({exc})", "save it with numpy.savez") from None


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise EdgesmithError(f"{folder} has no {stem}[.gz]", "pass --data DIR with the four standard IDX files")
