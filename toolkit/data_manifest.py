"""An image folder for a regression: `DIR/targets.csv` names each image and its float targets.

    file,age                  one column per target (any names), in the order the model outputs them
    faces/0001.jpg,31.5       paths relative to DIR
    faces/0002.jpg,44         an optional `split` column (train or test) gives a fixed test split

Class folders cannot carry a number, so a regression's images are listed instead. Images are
decoded exactly as a classifier's folder (toolkit.data_folder: size, color, bad files).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from toolkit.data_folder import IMAGE_SUFFIXES, FolderImages, check_color, decode_splits
from toolkit.errors import EdgesmithError

MANIFEST = "targets.csv"
SPLITS = ("train", "test")
_FORMAT = "a header `file,<target>[,<target>…][,split]` and one row per image, e.g. `img/0001.png,0.53`"


def read_manifest(root: Path, image_size: str = "", color: str = "rgb", skip_bad_images: bool = False) -> FolderImages:
    """The images and float targets `DIR/targets.csv` lists; test split from its `split` column
    or None (cut from the seed)."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise EdgesmithError(f"task 'regression' reads its targets from {path}, which does not exist",
                             f"write {MANIFEST} in {root}: {_FORMAT}")
    check_color(color)
    color = color or "rgb"
    names, rows = _rows(path)
    listings = {}
    for split in SPLITS if any(which for _, _, which in rows) else ("train",):
        listings[split] = [(root / name, targets) for name, targets, which in rows if (which or "train") == split]
        if not listings[split]:
            raise EdgesmithError(f"{path}: no row has split '{split}'", "give both train and test rows, or drop the split column")
    arrays, decoded = decode_splits(listings, image_size, color, skip_bad_images)
    listed = {(root / name).resolve() for name, _, _ in rows}
    unlisted = sum(1 for file in root.rglob("*") if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file()
                   and file.resolve() not in listed)
    info = {"layout": f"{MANIFEST} manifest", "targets": names, "unlisted_images": unlisted, **decoded}
    x_test, y_test = arrays.get("test", (None, None))
    return FolderImages(*arrays["train"], x_test, y_test, (), info)


def _rows(path: Path) -> tuple[list[str], list[tuple[str, tuple[float, ...], str]]]:
    """(target names, [(file, targets, split or '')]) with every mistake named by its line."""
    try:
        lines = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EdgesmithError(f"{path} is not a readable CSV file ({exc})", f"write it as UTF-8 text: {_FORMAT}") from None
    header = [cell.strip() for cell in lines[0]] if lines else []
    if len(header) < 2 or header[0].lower() != "file":
        raise EdgesmithError(f"{path} has header {header}", f"start it with {_FORMAT}")
    split_column = header.index("split") if "split" in header else None
    target_columns = [i for i in range(1, len(header)) if i != split_column]
    if not target_columns:
        raise EdgesmithError(f"{path} names no target column", f"give {_FORMAT}")
    rows, first_line = [], {}
    for number, row in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise EdgesmithError(f"{path} line {number} has {len(row)} values for {len(header)} columns", "give every row one value per column")
        if not (path.parent / row[0].strip()).is_file():
            raise EdgesmithError(f"{path} line {number}: {path.parent / row[0].strip()} does not exist",
                                 "list paths relative to the folder that holds the manifest")
        image = (path.parent / row[0].strip()).resolve()
        if image in first_line:
            raise EdgesmithError(f"{path} line {number} lists {row[0].strip()} again (first on line {first_line[image]})",
                                 "list each image once: a repeat counts twice, and may land in both train and test")
        first_line[image] = number
        split = row[split_column].strip().lower() if split_column is not None else ""
        if split_column is not None and split not in SPLITS:
            raise EdgesmithError(f"{path} line {number}: split '{row[split_column]}'", "write train or test")
        rows.append((row[0].strip(), _targets(path, number, row, header, target_columns), split))
    if not rows:
        raise EdgesmithError(f"{path} lists no images", f"add one row per image: {_FORMAT}")
    return [header[i] for i in target_columns], rows


def _targets(path: Path, number: int, row: list[str], header: list[str], columns: list[int]) -> tuple[float, ...]:
    values = []
    for column in columns:
        try:
            value = float(row[column])
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            raise EdgesmithError(f"{path} line {number}: {header[column]} is '{row[column]}', not a finite number",
                                 "give every target as a number")
        values.append(value)
    return tuple(values)
