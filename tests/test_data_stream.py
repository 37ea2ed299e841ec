"""Datasets too large for float32 memory: raw samples preprocessed a batch at a time, with the
same values, fingerprint and results as the in-memory path."""
from __future__ import annotations

import numpy as np
import pytest

import toolkit as edgesmith
from toolkit.data import from_arrays
from toolkit.data_stream import StreamedSplit, predict_in_chunks, should_stream
from toolkit.preprocess import parse_preprocess


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("spec", ["scale:1/255", "mobilenet", "mean_std:120,60,30/50,60,70", "none"])
def test_a_streamed_split_gives_the_values_preprocessing_the_whole_split_gives(spec):
    raw, preprocess = _images(20), parse_preprocess(spec)
    whole, split = preprocess.apply(raw), StreamedSplit(raw, preprocess)
    assert split.shape == raw.shape and split.dtype == np.float32 and len(split) == 20
    index = np.array([7, 2, 19])
    for key in (slice(3, 9), index, 4, -1):
        np.testing.assert_array_equal(split[key], whole[key])
    np.testing.assert_array_equal(np.asarray(split), whole)


def test_streaming_starts_when_float32_would_take_over_a_quarter_of_available_memory():
    assert should_stream(300, available=lambda: 1000)
    assert not should_stream(200, available=lambda: 1000)
    assert not should_stream(10**15, available=lambda: None)  # unknown memory: as before, in memory


def test_a_streamed_dataset_has_the_in_memory_fingerprint_and_splits(monkeypatch):
    arrays = {"x_train": _images(50), "y_train": np.arange(50) % 3, "x_test": _images(12, 1), "y_test": np.arange(12) % 3}
    in_memory = from_arrays(arrays, seed=4)
    monkeypatch.setattr("toolkit.data.should_stream", lambda float_bytes: True)
    streamed = from_arrays(arrays, seed=4)
    assert streamed.streamed and not in_memory.streamed
    assert streamed.source == {"streamed": True, "float32_bytes": 4 * 62 * 6 * 5 * 3}
    assert streamed.fingerprint == in_memory.fingerprint
    for name in ("x_train", "x_val", "x_test"):
        np.testing.assert_array_equal(np.asarray(getattr(streamed, name)), getattr(in_memory, name))
    np.testing.assert_array_equal(streamed.calibration_sample(16, 0), in_memory.calibration_sample(16, 0))


def test_predict_in_chunks_matches_one_call(monkeypatch):
    monkeypatch.setattr("toolkit.data_stream.PREDICT_CHUNK_BYTES", 6 * 5 * 3 * 4 * 7)  # 7 samples a chunk
    raw, preprocess = _images(30), parse_preprocess("scale:1/255")
    total = lambda x: x.reshape(len(x), -1).sum(axis=1, keepdims=True)  # noqa: E731
    chunked = predict_in_chunks(total, StreamedSplit(raw, preprocess))
    np.testing.assert_array_equal(chunked, total(preprocess.apply(raw)))


@pytest.mark.slow
def test_a_streamed_folder_run_gives_the_in_memory_runs_results(tmp_path, write_images, monkeypatch):
    """Training (fit and the distillation loop), fine-tuning, calibration and scoring read
    batches from the raw images and reach exactly the in-memory run's accuracies and bytes."""
    classes = dict.fromkeys(("a", "b", "c"), 16)
    write_images(tmp_path / "pngs" / "train", classes)
    write_images(tmp_path / "pngs" / "test", dict.fromkeys(classes, 6), seed=1)
    options = {"dataset": "folder", "data": str(tmp_path / "pngs"), "epochs": 2, "finetune_epochs": 1,
               "train_threads": 1, "variants": [["prune:0.5"], ["distill:width=0.5,epochs=2"]],
               "targets": ["cpu"], "precisions": ["fp32", "int8"], "bench_runs": 20, "bench_target_width": 0,
               "calibration_samples": 8}
    in_memory = edgesmith.run({**options, "output": str(tmp_path / "in-memory")})
    monkeypatch.setattr("toolkit.data.should_stream", lambda float_bytes: True)
    streamed = edgesmith.run({**options, "output": str(tmp_path / "streamed")})

    assert streamed.info["data_source"]["streamed"] and "streamed" not in in_memory.info["data_source"]
    by_artifact = lambda result: {(r.variant, r.precision): (r.accuracy, r.sha256) for r in result.records}  # noqa: E731
    assert by_artifact(streamed) == by_artifact(in_memory)
    variants = {variant.split("-")[0] for variant, _ in by_artifact(streamed)}
    assert variants == {"baseline", "prune50", "distill", "scratch"}, variants
    report = (streamed.run_dir / "report.md").read_text()
    assert "preprocessed a batch at a time" in report
