"""The one function a Ray device node runs: edgesmith's device modules in a scratch folder.

It is sent to the node by value (its module is registered with Ray's pickler), and it imports
only the standard library, so a device that joins the cluster needs Ray, numpy and its runtime,
not edgesmith or TensorFlow — what an SSH device needs, plus Ray.
"""
from __future__ import annotations

from typing import Any

RUN_TIMEOUT_S = 900  # one artifact's whole method on a small board


def run_kit(files: dict[str, str], blobs: dict[str, bytes], arguments: list[str]) -> dict[str, Any]:
    """Write the device modules (`files`) and inputs (`blobs`) into a scratch folder, run
    `python ARGUMENTS` there with this node's interpreter, and say which node ran it."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import ray

    with tempfile.TemporaryDirectory(prefix="edgesmith-kit-") as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        for name, data in blobs.items():
            (Path(folder) / name).write_bytes(data)
        try:
            completed = subprocess.run([sys.executable, *arguments], cwd=folder, capture_output=True,
                                       timeout=RUN_TIMEOUT_S)
            returncode, stdout, stderr = completed.returncode, completed.stdout, completed.stderr
        except subprocess.TimeoutExpired:
            returncode, stdout, stderr = -1, b"", f"no result within {RUN_TIMEOUT_S} s".encode()
    context = ray.get_runtime_context()
    return {"returncode": returncode, "stdout": stdout.decode(errors="replace"), "stderr": stderr.decode(errors="replace"),
            "node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address()}
