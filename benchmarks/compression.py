"""The compression figures of the passes issue, from a finished Fashion-MNIST `cnn` run.

    edgesmith run benchmarks/fashion_cnn.toml
    python benchmarks/compression.py runs/fashion-mnist-cnn
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _runs import find, goal, load_run  # noqa: E402

from toolkit.passes.sparsity import m_by_n_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--student", default="distill-w40", help="variant id of the distilled student")
    args = parser.parse_args()
    records, info = load_run(args.run_dir)
    fp32 = find(records, "baseline", "cpu", "fp32")
    ptq = find(records, "baseline", "cpu", "int8")
    print(f"full model: accuracy {info['baseline']['accuracy'] * 100:.2f}%, {info['baseline']['params']:,} parameters; "
          f"fp32 TFLite gzip {fp32['gzip_bytes'] / 1024:.1f} KB")

    pruned = find(records, "prune80+qat", "cpu", "int8")
    ratio = pruned["gzip_bytes"] / fp32["gzip_bytes"]
    print(f"prune80+PQAT int8: gzip {pruned['gzip_bytes'] / 1024:.1f} KB = 1/{1 / ratio:.1f} of fp32 "
          f"(goal ≤ 1/10: {goal(ratio <= 0.1)}); drop {pruned['accuracy_drop_pp']:+.2f} pp "
          f"(goal ≤ 1.0: {goal(pruned['accuracy_drop_pp'] <= 1.0)}); weight sparsity {pruned['sparsity']:.1%}")

    qat = find(records, "qat", "cpu", "int8")
    gap = (qat["accuracy"] - ptq["accuracy"]) * 100
    print(f"QAT int8 {qat['accuracy'] * 100:.2f}% vs PTQ int8 {ptq['accuracy'] * 100:.2f}%: {gap:+.2f} pp "
          f"(goal ≥ -0.2: {goal(gap >= -0.2)})")

    student = find(records, args.student, "cpu", "fp32")
    scratch = find(records, args.student.replace("distill", "scratch", 1), "cpu", "fp32")
    shrink = info["baseline"]["params"] / student["params"]
    print(f"distilled student: {student['params']:,} parameters = {shrink:.1f}× fewer (goal ≥ 4: {goal(shrink >= 4)}); "
          f"accuracy {student['accuracy'] * 100:.2f}% (drop {student['accuracy_drop_pp']:+.2f} pp, goal ≤ 2.0: "
          f"{goal(student['accuracy_drop_pp'] <= 2.0)}); same student from scratch {scratch['accuracy'] * 100:.2f}% "
          f"→ distillation bought {(student['accuracy'] - scratch['accuracy']) * 100:+.2f} pp")

    for precision in ("fp32", "int8"):
        record = find(records, "prune2of4", "cpu", precision)
        report = m_by_n_report((args.run_dir / record["path"]).read_bytes())
        violations = sum(layer["violations"] for layer in report)
        groups = sum(layer["groups"] for layer in report)
        layers = ", ".join(f"{layer['tensor']} {layer['shape']}" for layer in report)
        print(f"2:4 {precision} TFLite: {violations} of {groups} groups of 4 input-channel weights have < 2 zeros "
              f"(goal 0: {goal(violations == 0 and groups > 0)}); pruned layers: {layers}")


if __name__ == "__main__":
    main()
