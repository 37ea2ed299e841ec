"""Image folders, the format people's own data comes in.

Layouts: `DIR/<class>/*.jpg|png|…` (split by the seed) or `DIR/train/<class>` + `DIR/test/<class>`
(or `val/`, `validation/`). Class names are the sorted folder names. Images are decoded into
uint8 arrays (4× smaller than float32, and kept that way for a folder too large as float32:
data_stream.py) at one size and color mode; a bad file stops the run with its path, or is
skipped and counted with `skip_bad_images`.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from toolkit.errors import EdgesmithError
from toolkit.host_memory import available_memory

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
COLORS = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
SKIP_HINT = "replace or delete it, or pass --skip-bad-images (skip_bad_images = true) to skip such files"
LISTED_SKIPS = 10  # skipped files named in run.json; the count covers all
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass
class FolderImages:
    """Decoded splits (test is None for the one-folder layout) and what was found on the way."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)


def parse_image_size(text: str) -> tuple[int, int] | None:
    """'96x96' (WIDTHxHEIGHT) → (96, 96); '' → None (use the first image's size)."""
    if not text:
        return None
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        raise EdgesmithError(f"image_size '{text}' is not WIDTHxHEIGHT", "write it like image_size = \"96x96\"")
    return int(width), int(height)


def check_color(color: str) -> None:
    """'' (the default: the model's channels, else rgb) or one of COLORS."""
    if color and color not in COLORS:
        raise EdgesmithError(f"unknown color '{color}'", f"choose one of {', '.join(COLORS)}")


def read_folder(root: Path, image_size: str = "", color: str = "rgb", skip_bad_images: bool = False) -> FolderImages:
    """Find the layout and classes, then decode every image (or fail naming the bad file)."""
    root = Path(root)
    if not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "does not exist"
        raise EdgesmithError(f"image folder {root} {problem}", "pass --data DIR with one sub-folder per class")
    check_color(color)
    color = color or "rgb"
    splits, layout = _layout(root)
    class_names = tuple(sorted(_class_dirs(splits["train"])))
    if len(class_names) < 2:
        raise EdgesmithError(
            f"{splits['train']} has {len(class_names)} class folder(s)",
            "make one sub-folder per class, with at least two classes (DIR/<class>/*.png)",
        )
    ignored: Counter = Counter()
    files = {split: _files(folder, class_names, split, ignored) for split, folder in splits.items()}
    arrays, decoded = decode_splits(files, image_size, color, skip_bad_images)
    info = {"layout": layout, "classes": list(class_names), **decoded, "ignored_files": dict(ignored)}
    x_test, y_test = arrays.get("test", (None, None))
    return FolderImages(*arrays["train"], x_test, y_test, class_names, info)


def decode_splits(listings: dict[str, list[tuple[Path, Any]]], image_size: str, color: str,
                  skip_bad_images: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Decode each split's (file, label) listing at one size (`image_size`, else the first
    image's), after checking the whole set fits in memory; also what the run reports of it
    (size, color, images decoded, skipped and resized). Shared by class folders and manifests."""
    every = [path for listing in listings.values() for path, _ in listing]
    size = parse_image_size(image_size) or _first_size(every, skip_bad_images)
    decoder = _Decoder(size, color, skip_bad_images)
    _check_memory(len(every), size, COLORS[color][1])
    arrays = {split: decoder.decode(listing) for split, listing in listings.items()}
    info = {
        "image_size": f"{size[0]}x{size[1]}", "color": color,
        "images": len(every) - len(decoder.skipped), "skipped_images": len(decoder.skipped),
        "skipped": [str(path) for path in decoder.skipped[:LISTED_SKIPS]], "resized_images": decoder.resized,
    }
    return arrays, info


def suffix_counts(counts: Counter | dict[str, int]) -> str:
    """{'.heic': 3, '.txt': 1} → '3 .heic files, 1 .txt file'."""
    return ", ".join(f"{count} {suffix} file{'s' if count != 1 else ''}" for suffix, count in sorted(counts.items()))


HELD_OUT = ("test", "val", "validation")  # the first present is the test split


def _layout(root: Path) -> tuple[dict[str, Path], str]:
    """{'train': …, 'test': …} and a description; DIR/train with DIR/test (or val/, validation/,
    the layout many published datasets use), or class folders straight in DIR."""
    train = root / "train"
    held_out = [name for name in HELD_OUT if (root / name).is_dir()]
    if train.is_dir() and held_out:
        unused = [f"{name}/" for name in held_out[1:]]
        notes = [f"{', '.join(unused)} not used: the validation split is cut from train/"] if unused else []
        loose = sorted(f"{name}/" for name in _class_dirs(root) if name not in ("train", *HELD_OUT))
        if loose:
            notes.append(f"{', '.join(loose)} not used: the classes are the sub-folders of train/ and {held_out[0]}/")
        note = f" ({'; '.join(notes)})" if notes else ""
        return {"train": train, "test": root / held_out[0]}, f"train/{held_out[0]} folders{note}"
    if train.is_dir() or held_out:
        present, missing = ("train", "test") if train.is_dir() else (held_out[0], "train")
        raise EdgesmithError(
            f"{root} has {present}/ but no {missing}/" + (" (nor val/ or validation/)" if missing == "test" else ""),
            f"add {root / missing}/<class>/ folders, or put the class folders directly in {root}",
        )
    return {"train": root}, "class folders"


def _class_dirs(folder: Path) -> list[str]:
    return [entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith(".")]


def _files(folder: Path, class_names: tuple[str, ...], split: str, ignored: Counter) -> list[tuple[Path, int]]:
    """(path, label) for every image, in a stable order; empty class folders are an error.
    Other files are counted by suffix in `ignored` (a phone's .heic photos would otherwise
    vanish from the data without a word)."""
    present = _class_dirs(folder)
    unknown = sorted(set(present) - set(class_names))
    if unknown:
        raise EdgesmithError(
            f"{folder / unknown[0]} is a {split} class with no training folder",
            f"add {folder.parent / 'train' / unknown[0]}/ with training images, or remove it",
        )
    listing = []
    for label, name in enumerate(class_names):
        if name not in present:
            continue
        files = [path for path in (folder / name).iterdir() if path.is_file() and not path.name.startswith(".")]
        images = sorted(path for path in files if path.suffix.lower() in IMAGE_SUFFIXES)
        others = Counter(path.suffix.lower() or "(no suffix)" for path in files if path.suffix.lower() not in IMAGE_SUFFIXES)
        if not images:
            held = f"; it holds {suffix_counts(others)}" if others else ""
            raise EdgesmithError(
                f"class folder {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)}){held}",
                "convert them to JPEG or PNG" if others else "add images to it or remove the folder",
            )
        ignored.update(others)
        listing += [(path, label) for path in images]
    return listing


def _first_size(paths: list[Path], skip_bad_images: bool) -> tuple[int, int]:
    """Without image_size, every image is resized to the first readable image's size."""
    for path in paths:
        try:
            with Image.open(path) as image:
                return image.size
        except DECODE_ERRORS as exc:
            if not skip_bad_images:
                raise EdgesmithError(f"{path} is not a readable image ({exc})", SKIP_HINT) from None
    raise EdgesmithError("no readable image in the folder", "check the files are JPEG, PNG or BMP images")


def _check_memory(count: int, size: tuple[int, int], channels: int) -> None:
    """Refuse before decoding when even the uint8 images cannot fit: better than a killed
    process (float32 copies that would not fit are avoided by streaming, data_stream.py)."""
    needed = count * size[0] * size[1] * channels * 2  # the decoded images, and the splits cut from them
    available = available_memory()
    if available is not None and needed > available:
        raise EdgesmithError(
            f"{count} images at {size[0]}x{size[1]}x{channels} need about {needed / 2**30:.1f} GiB in memory, "
            f"{available / 2**30:.1f} GiB is available",
            "use a smaller image_size or a subset of the folder",
        )


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale (PNG, TIFF) → 8-bit by its top byte, as TensorFlow's decoder (Keras'
    image loader) does; Pillow's own conversion would clip every value above 255 to white."""
    if not (image.mode.startswith("I;16") or image.mode == "I"):
        return image
    values = np.clip(np.asarray(image, np.int64), 0, 65535) >> 8
    return Image.fromarray(values.astype(np.uint8), "L")


class _Decoder:
    """Decodes images to uint8 at one size and mode, in threads (Pillow releases the GIL)."""

    def __init__(self, size: tuple[int, int], color: str, skip_bad_images: bool) -> None:
        self.size, self.mode, self.channels = size, *COLORS[color]
        self.skip_bad_images = skip_bad_images
        self.skipped: list[Path] = []
        self.resized = 0

    def decode(self, listing: list[tuple[Path, Any]]) -> tuple[np.ndarray, np.ndarray]:
        width, height = self.size
        x = np.empty((len(listing), height, width, self.channels), np.uint8)
        keep = np.ones(len(listing), bool)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for index, result in enumerate(pool.map(self._one, [path for path, _ in listing])):
                if isinstance(result, BaseException):
                    if not self.skip_bad_images:
                        raise EdgesmithError(f"{listing[index][0]} is not a readable image ({result})", SKIP_HINT)
                    self.skipped.append(listing[index][0])
                    keep[index] = False
                    continue
                pixels, resized = result
                x[index] = pixels.reshape(height, width, self.channels)
                self.resized += resized
        y = np.asarray([label for _, label in listing])  # class ids, or tuples of float targets (data_manifest.py)
        if not keep.all():
            if y.ndim == 1:
                self._check_classes_left(listing, y, keep)
            x, y = x[keep], y[keep]
        return x, y

    def _one(self, path: Path) -> tuple[np.ndarray, bool] | BaseException:
        try:
            with Image.open(path) as image:
                image.load()  # decodes fully: truncated files fail here, not later
                converted = _eight_bit(image).convert(self.mode)
                resized = converted.size != self.size
                if resized:
                    converted = converted.resize(self.size, Image.BILINEAR)
                return np.asarray(converted, np.uint8), resized
        except DECODE_ERRORS as exc:
            return exc

    @staticmethod
    def _check_classes_left(listing: list[tuple[Path, int]], y: np.ndarray, keep: np.ndarray) -> None:
        """A class whose every image was skipped is as unusable as an empty class folder."""
        lost = sorted(set(y.tolist()) - set(y[keep].tolist()))
        if lost:
            folder = next(path.parent for path, label in listing if label == lost[0])
            raise EdgesmithError(f"every image in {folder} is unreadable", "replace the images or remove the folder")
