"""Peak memory of a run on an image folder: samples held as float32 vs streamed (kept uint8,
preprocessed a batch at a time). Writes a folder of pattern PNGs, then runs
`edgesmith run --dataset folder` twice in child processes, once with streaming forced, and
prints each child's peak resident memory (ru_maxrss) and the full model's accuracy, which must
be identical. Streaming starts by itself when the float32 splits would take more than a quarter
of the available memory; this script forces both ways so the difference can be seen here.

    python benchmarks/stream_memory.py --images 4000 --size 96
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = """
import resource, sys, toolkit.data
mode, peak_file = sys.argv.pop(1), sys.argv.pop(1)
toolkit.data.should_stream = lambda float_bytes: mode == "streamed"
from toolkit.cli import entry_point
try:
    code = entry_point()
finally:
    open(peak_file, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)
"""
CLASSES = 4


def write_folder(root: Path, images: int, size: int) -> None:
    """`images` PNGs over CLASSES class folders: stripes whose period and direction are the class."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for index in range(images):
        label = index % CLASSES
        lines = ((xx if label % 2 else yy) // (2 + label // 2)) % 2
        gray = np.clip(lines * 180 + 40 + rng.normal(0, 25, (size, size)), 0, 255)
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([gray, gray[::-1], 255 - gray], -1).astype(np.uint8)).save(folder / f"{index:05d}.png")


def peak_run(mode: str, folder: Path, out: Path) -> tuple[float, float]:
    """(peak resident MiB, full-model accuracy) of one child run."""
    peak_file = out.with_suffix(".peak")
    command = [sys.executable, "-c", CHILD, mode, str(peak_file), "run", "--dataset", "folder", "--data", str(folder),
               "--out", str(out), "--model", "cnn", "--epochs", "1", "--no-variants", "--precisions", "fp32",
               "--targets", "cpu", "--bench-runs", "20"]
    child = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if child.returncode:
        raise SystemExit(f"{mode} run failed:\n{child.stderr[-2000:]}")
    info = json.loads(next(out.glob("*/run.json")).read_text())
    return int(peak_file.read_text()) / 1024, info["baseline"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgesmith-stream-") as scratch:
        folder = Path(scratch) / "images"
        write_folder(folder, args.images, args.size)
        float_mib = args.images * args.size * args.size * 3 * 4 / 2**20
        print(f"{args.images} images at {args.size}x{args.size} RGB: {float_mib:.0f} MiB as float32, {float_mib / 4:.0f} MiB as uint8")
        results = {mode: peak_run(mode, folder, Path(scratch) / mode) for mode in ("in-memory", "streamed")}
    for mode, (peak, accuracy) in results.items():
        print(f"{mode:10} peak RSS {peak:7.0f} MiB  full-model accuracy {accuracy:.4f}")
    (memory, accuracy), (streamed, streamed_accuracy) = results["in-memory"], results["streamed"]
    print(f"streamed / in-memory peak: {streamed / memory:.2f} (saved {memory - streamed:.0f} MiB); "
          f"accuracy {'identical' if accuracy == streamed_accuracy else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
