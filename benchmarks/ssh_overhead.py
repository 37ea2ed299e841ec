"""Does the transport stay out of the timing? ssh-run p50 / local-run p50 of the same files.

Point it at a device that is this very machine (an sshd on 127.0.0.1, the device Python a
venv with only numpy + the runtimes): the method is the same code on both sides, so the ratio
should be 1 (goal: within ±5%). Local and ssh runs alternate for `--rounds` rounds and the
median of the per-round ratios is reported, so the drift of a shared machine hits both sides.

    python benchmarks/ssh_overhead.py 'ssh://me@127.0.0.1:2222?python=/opt/device-venv/bin/python' \\
        runs/fashion-mnist-cnn/cpu/baseline__fp32.tflite runs/fashion-mnist-cnn/cpu/baseline__int8.tflite
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _runs import goal, zero_input  # noqa: E402

from toolkit.devices import open_device  # noqa: E402
from toolkit.devices.local import LOCAL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("device", help="ssh://user@host[:port][?python=PATH]")
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=1000, help="timed invokes per benchmark")
    parser.add_argument("--rounds", type=int, default=5, help="alternating local/ssh rounds")
    args = parser.parse_args()
    device = open_device(args.device)
    print(f"device: {device.measured_on(None)} ({args.device})")
    for path in args.models:
        sample = zero_input(path)
        local, remote = [], []
        for _ in range(args.rounds):
            local.append(LOCAL.benchmark(path, sample, args.runs, 1, 1)["latency_ms"]["p50"])
            remote.append(device.benchmark(path, sample, args.runs, 1, 1)["latency_ms"]["p50"])
        ratio = float(np.median(np.array(remote) / np.array(local)))
        print(f"{path}")
        print(f"  local p50 {' '.join(f'{p:.4f}' for p in local)} ms")
        print(f"  ssh   p50 {' '.join(f'{p:.4f}' for p in remote)} ms")
        print(f"  ssh / local = {ratio:.3f} (median of {args.rounds} paired rounds; goal 0.95–1.05: "
              f"{goal(0.95 <= ratio <= 1.05)})")


if __name__ == "__main__":
    main()
