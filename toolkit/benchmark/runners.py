"""Runtimes behind one interface, so LiteRT and ONNX Runtime rows are measured the same way.

The runners themselves live in `device_runners`, self-contained because it also runs on
devices; here a file is opened through the runtime registry, which recognises it by content
and gives a corrupt file a one-line error. A runner owns the (de)quantization of integer I/O:
callers always pass float inputs scaled as in training and get float scores back, so accuracy
is comparable across precisions.
"""
from __future__ import annotations

from pathlib import Path

from toolkit.benchmark.device_runners import BenchError, LiteRTRunner, OnnxRuntimeRunner, Runner, predict

__all__ = ["LiteRTRunner", "OnnxRuntimeRunner", "Runner", "open_runner", "predict"]


def open_runner(path: Path, threads: int = 1) -> Runner:
    """Load `path` in the runtime that reads it (recognised by the runtime registry); what the
    runner refuses (a file LiteRT cannot load, an input the method cannot feed) is one line."""
    from toolkit.errors import EdgesmithError
    from toolkit.runtimes import runtime_for_file

    try:
        return runtime_for_file(path, trust_extension=True).open_runner(Path(path), threads)
    except BenchError as error:  # device_runners stays free of toolkit imports: its errors are converted here
        raise EdgesmithError(error.problem, error.fix) from None
