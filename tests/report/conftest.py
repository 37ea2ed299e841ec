"""A realistic synthetic run: 6 variants × 4 targets × their precisions (tflite and onnx).

The numbers are chosen so that each kind of finding has exactly one clear cause:
- fp16 on cpu is within noise of fp32; int8 is ~2.6× faster; onnx int8 is slower than onnx fp32;
- pruning shrinks the gzip size ~3.1× but does not change latency;
- distillation gives +1.2 pp over the same student trained from scratch;
- cluster16 loses 2.9 pp and is blocked on edgetpu; scratch-small falls back 2 of 9 ops to the
  host CPU there (so both are "not compatible" with edgetpu);
- gpu and edgetpu latency is measured on the host CPU.
"""
from __future__ import annotations

import pytest

FULL_MODEL_ACCURACY = 0.962

VARIANTS = {  # name: (chain, accuracy delta, latency factor, size factor, gzip compressibility)
    "baseline": ([], 0.0, 1.0, 1.0, 1.0),
    "prune80": (["prune:0.8"], -0.006, 1.0, 1.0, 3.1),
    "prune80+qat": (["prune:0.8", "qat"], -0.003, 1.0, 1.0, 3.1),
    "cluster16": (["cluster:16"], -0.025, 1.0, 1.0, 2.5),
    "distill-small": (["distill:small"], -0.010, 0.5, 1 / 3, 1.0),
    "scratch-small": (["scratch:small"], -0.022, 0.5, 1 / 3, 1.0),
}
PRECISIONS = {  # name: (accuracy delta, latency factor, size factor)
    "fp32": (0.0, 1.0, 1.0), "fp16": (0.0, 1.01, 0.5),
    "dynamic": (-0.001, 0.71, 0.25), "int8": (-0.004, 0.39, 0.25),
}
TARGETS = {  # name: (format, precisions, latency label, format latency factor per precision)
    "cpu": ("tflite", ["fp32", "fp16", "dynamic", "int8"], "host CPU (LiteRT + XNNPACK)", {}),
    "gpu": ("tflite", ["fp32", "fp16"], "host CPU — not GPU latency", {}),
    "edgetpu": ("tflite", ["int8"], "host CPU — not Edge TPU latency", {}),
    "onnx-cpu": ("onnx", ["fp32", "int8"], "host CPU (ONNX Runtime)", {"int8": 1.29 / 0.39}),
}
BASE_P50_MS = 0.070
BASE_SIZE_BYTES = 420 * 1024


_ACCELERATORS = {"cpu": ("XNNPACK", "LiteRT built-in CPU kernels"),
                 "gpu": ("GPU delegate", "CPU"), "edgetpu": ("Edge TPU", "host CPU"),
                 "onnx-cpu": ("ONNX Runtime CPU EP", "nothing (the session fails to load)")}


def _compatibility(variant: str, target: str, path: str) -> dict:
    """The fields of the check's report that the report and the selection read."""
    accelerator, fallback = _ACCELERATORS[target]
    report = {"artifact": path, "target": target, "accelerator": accelerator,
              "fallback": fallback, "compatible": True, "ops_total": 9, "ops_on_accelerator": 9,
              "summary": f"all 9 ops run on the {accelerator} ({target})", "blockers": [],
              "unsupported_ops": [], "notes": [],
              "ops": [{"index": i, "op": "CONV_2D", "runs_on": "accelerator"} for i in range(9)]}
    if target == "edgetpu" and variant == "cluster16":
        blocker = "tensor dense/kernel is float32: the Edge TPU needs int8 weights"
        report.update(compatible=False, ops_on_accelerator=0, blockers=[blocker],
                      summary=f"not compatible with edgetpu: {blocker}")
    if target == "edgetpu" and variant == "scratch-small":
        report.update(compatible=False, ops_on_accelerator=7, unsupported_ops=["MEAN"],
                      summary="2 of 9 ops fall back to the host CPU on edgetpu "
                              "(partition at op 7 MEAN)")
    return report


def make_record(variant: str, target: str, precision: str) -> dict:
    chain, acc_delta, speed, size_factor, compress = VARIANTS[variant]
    fmt, _, label, format_speed = TARGETS[target]
    p_acc, p_speed, p_size = PRECISIONS[precision]
    accuracy = round(FULL_MODEL_ACCURACY + acc_delta + p_acc, 4)
    p50 = BASE_P50_MS * speed * p_speed * format_speed.get(precision, 1.0)
    size = int(BASE_SIZE_BYTES * size_factor * p_size)
    return {
        "variant": variant, "chain": list(chain), "target": target, "format": fmt,
        "precision": precision, "path": f"{target}/{variant}__{precision}.{fmt}",
        "size_bytes": size, "gzip_bytes": int(size * 0.92 / compress),
        "accuracy": accuracy,
        "accuracy_drop_pp": round((FULL_MODEL_ACCURACY - accuracy) * 100, 3),
        "agreement": round(0.995 + (acc_delta + p_acc) / 2, 4),
        "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.3, "mean": p50 * 1.02,
                       "std": p50 * 0.05, "ci95_p50": [p50 * 0.97, p50 * 1.03]},
        "threads": 1, "batch": 1, "runs": 200, "latency_measured_on": label, "latency_on_device": "not" not in label,
        "params": 100_000 if "small" not in variant else 33_000, "macs": None,
        "peak_memory_mb": None, "notes": [],
        "compatibility": _compatibility(variant, target, f"{target}/{variant}__{precision}.{fmt}"),
    }


def all_records() -> list[dict]:
    return [make_record(variant, target, precision)
            for variant in VARIANTS for target, (_, precisions, _, _) in TARGETS.items()
            for precision in precisions]


@pytest.fixture
def records() -> list[dict]:
    return all_records()


@pytest.fixture
def run_info(records: list[dict]) -> dict:
    return make_run_info(records)


@pytest.fixture(scope="session")
def synthetic_run():
    """A factory of fresh (records, run_info) pairs, for module-scoped fixtures."""
    def make() -> tuple[list[dict], dict]:
        records = all_records()
        return records, make_run_info(records)
    return make


def make_run_info(records: list[dict]) -> dict:
    edgetpu = [r["compatibility"] for r in records if r["target"] == "edgetpu"]
    return {
        "name": "fashion-cnn", "dataset": "fashion-mnist", "model": "cnn",
        "baseline": {"accuracy": FULL_MODEL_ACCURACY, "params": 100_000, "path": "baseline.keras"},
        "targets": list(TARGETS),
        "compatibility": {"edgetpu": edgetpu},
        "skipped": [{"variant": "prune95", "reason": "accuracy fell below 50% after fine-tuning"}],
        "best": {"cpu": "cpu/distill-small__int8.tflite", "gpu": "gpu/distill-small__fp32.tflite",
                 "edgetpu": "edgetpu/distill-small__int8.tflite", "onnx-cpu": None},
    }
