"""MobileNetV2-0.35 trained from scratch on an image folder: PTQ and prune 50% + QAT, all targets.

    python benchmarks/mobile_folder.py                 # writes the folder, trains, prints the figures
    python benchmarks/mobile_folder.py --train-per-class 6000 --test-per-class 1000   # the full set

Writes Fashion-MNIST (Debian's dataset-fashion-mnist) as 96×96 RGB PNGs in the
train/test class-folder layout, runs `edgesmith run` on it with `mobilenet_v2:alpha=0.35`, and
prints, per target, the int8 accuracy drops (PTQ and QAT), int8/fp32 size and the int8/fp32 p50
ratio measured interleaved in one process. By default a subset (600 training and 100 test images
per class) keeps it to about an hour on 2 cores.

Goals (issue 11): int8 PTQ drop ≤ 1.0 pp, QAT drop ≤ 0.5 pp, int8 file ≤ 30% of fp32. The
`cpu-per-tensor` and `onnx-cpu-per-tensor` targets are the built-in profiles with
`per_channel = false` (written next to the run): post-training int8 with one weight scale per
tensor; QAT files keep the per-channel scales they were trained with.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _runs import find, goal, load_run, run_dataset  # noqa: E402

from toolkit.benchmark.compare import interleaved_latency  # noqa: E402
from toolkit.config import DEFAULT_TARGETS, from_dict  # noqa: E402
from toolkit.data import FASHION_MNIST_DIR  # noqa: E402
from toolkit.data_files import read_idx_pair  # noqa: E402
from toolkit.pipeline import run  # noqa: E402
from toolkit.targets import derive_profile  # noqa: E402

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
SIZE = 96
QAT = "prune50+qat"


def write_folder(root: Path, train_per_class: int, test_per_class: int) -> None:
    """The first N images of each class per split, upscaled (bilinear) and made RGB."""
    for split, prefix, count in (("train", "train", train_per_class), ("test", "t10k", test_per_class)):
        images, labels = read_idx_pair(FASHION_MNIST_DIR, prefix)
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in np.flatnonzero(labels == label)[:count]:
                image = Image.fromarray(images[index]).resize((SIZE, SIZE), Image.BILINEAR).convert("RGB")
                image.save(folder / f"{index:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=Path("runs/fashion-mnist-96-png"))
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output", default="runs")
    args = parser.parse_args()
    if not (args.images / "test").is_dir():
        print(f"writing {args.images} ({args.train_per_class} + {args.test_per_class} images per class)")
        write_folder(args.images, args.train_per_class, args.test_per_class)
    profiles = Path(args.output) / "per-tensor-profiles"
    experiment = from_dict({
        "name": "fashion-folder-mobilenet_v2", "dataset": "folder", "data": str(args.images), "image_size": f"{SIZE}x{SIZE}",
        "model": "mobilenet_v2:alpha=0.35", "epochs": args.epochs, "patience": 5, "finetune_epochs": 3,
        "precisions": ["fp32", "int8"], "variants": [["prune:0.5", "qat"]], "bench_runs": 300, "output": args.output,
        "targets": [*DEFAULT_TARGETS, *(derive_profile(base, f"{base}-per-tensor", profiles, per_channel=False)
                                        for base in ("cpu", "onnx-cpu"))],
        "targets_dir": str(profiles),
    })
    run_dir = run(experiment)
    report(run_dir)


def report(run_dir: Path) -> None:
    records, info = load_run(run_dir)
    data = run_dataset(run_dir)
    print(f"\nfull model: mobilenet_v2 alpha 0.35, {info['baseline']['params']:,} parameters, "
          f"{info['baseline']['accuracy'] * 100:.2f}% on {len(data.x_test)} test images")
    for target in [name for name in info["targets"] if any(r["target"] == name and r["precision"] == "int8" for r in records)]:
        int8 = find(records, "baseline", target, "int8")
        qat = find(records, QAT, target, "int8")
        line = (f"{target:9} PTQ int8 drop {int8['accuracy_drop_pp']:+.2f} pp (goal ≤ 1.0: {goal(int8['accuracy_drop_pp'] <= 1.0)}), "
                f"QAT drop {qat['accuracy_drop_pp']:+.2f} pp (goal ≤ 0.5: {goal(qat['accuracy_drop_pp'] <= 0.5)})")
        fp32 = next((r for r in records if r["variant"] == "baseline" and r["target"] == target and r["precision"] == "fp32"), None)
        if fp32 is not None:
            size = int8["size_bytes"] / fp32["size_bytes"]
            fp32_latency, int8_latency = interleaved_latency([run_dir / fp32["path"], run_dir / int8["path"]], data.x_test, rounds=20)
            line += (f", int8/fp32 size {size:.3f} (goal ≤ 0.30: {goal(size <= 0.30)}), "
                     f"p50 {int8_latency.p50:.4f}/{fp32_latency.p50:.4f} ms = {int8_latency.p50 / fp32_latency.p50:.2f}")
        print(line)


if __name__ == "__main__":
    main()
