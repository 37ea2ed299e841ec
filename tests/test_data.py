"""Dataset loaders: digits split, IDX files (incl. truncated), npz checks."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from toolkit.data import load_dataset
from toolkit.errors import EdgesmithError


def _write_idx(folder, prefix, images, labels, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    image_bytes = struct.pack(">IIII", 0x803, *images.shape) + images.astype(np.uint8).tobytes()
    label_bytes = struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()
    suffix = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda b: b)
    (folder / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(pack(image_bytes))
    (folder / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(pack(label_bytes))


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "idx"
    _write_idx(folder, "train", rng.integers(0, 256, (60, 28, 28)), np.arange(60) % 10, gz=True)
    _write_idx(folder, "t10k", rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10, gz=False)
    return folder


def test_digits_split_is_deterministic_and_scaled(digits):
    again = load_dataset("digits", seed=0)
    assert digits.fingerprint == again.fingerprint
    assert digits.input_shape == (8, 8, 1)
    assert len(digits.x_train) + len(digits.x_val) + len(digits.x_test) == 1797
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    assert digits.preprocessing["scale"] == pytest.approx(1 / 16)
    assert load_dataset("digits", seed=1).fingerprint != digits.fingerprint


def test_the_embedded_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    from toolkit.data import digits

    images, target = digits()
    bunch = load_digits()
    assert np.array_equal(images[..., 0], bunch.images.astype(np.float32)) and images.dtype == np.float32
    assert np.array_equal(target, bunch.target) and target.dtype == np.int64


def test_idx_reads_gz_and_plain_files(idx_folder):
    data = load_dataset("mnist", str(idx_folder))
    assert data.input_shape == (28, 28, 1)
    assert len(data.x_train) + len(data.x_val) == 60 and len(data.x_test) == 20
    assert data.x_train.max() <= 1.0 and data.num_classes == 10


def test_truncated_idx_names_the_file(idx_folder):
    path = idx_folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(EdgesmithError, match="t10k-images-idx3-ubyte is truncated"):
        load_dataset("fashion-mnist", str(idx_folder))


def test_idx_with_wrong_magic_is_rejected(idx_folder):
    path = idx_folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + path.read_bytes()[4:])
    with pytest.raises(EdgesmithError, match="not an IDX labels file"):
        load_dataset("mnist", str(idx_folder))


def test_missing_fashion_folder_says_which_package(monkeypatch, tmp_path):
    monkeypatch.setattr("toolkit.data.FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(EdgesmithError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_mnist_without_data_asks_for_folder():
    with pytest.raises(EdgesmithError, match="--data DIR"):
        load_dataset("mnist")


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def _valid_arrays():
    rng = np.random.default_rng(0)
    return dict(
        x_train=rng.random((40, 6)).astype(np.float32), y_train=np.arange(40) % 3,
        x_test=rng.random((10, 6)).astype(np.float32), y_test=np.arange(10) % 3,
    )


def test_npz_loads_user_arrays(tmp_path):
    data = load_dataset("npz", _npz(tmp_path, **_valid_arrays()))
    assert data.input_shape == (6,) and data.num_classes == 3 and data.preprocess.spec == "none"


def test_npz_missing_keys_are_named(tmp_path):
    arrays = _valid_arrays()
    del arrays["y_test"]
    with pytest.raises(EdgesmithError, match="lacks y_test"):
        load_dataset("npz", _npz(tmp_path, **arrays))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(x_train=np.full((40, 6), np.nan, np.float32)), "NaN or inf"),
        (lambda a: a.update(y_train=np.arange(40) - 5), "labels must be integer class ids"),
        (lambda a: a.update(y_train=np.linspace(-1, 1, 40)), "regression targets — .*--task regression"),
        (lambda a: a.update(y_train=(np.arange(40) % 3).astype(np.float32)), None),  # whole numbers stored as floats
        (lambda a: a.update(y_test=np.arange(9) % 3), "has 10 samples but y_test has 9"),
        (lambda a: a.update(x_test=np.zeros((0, 6), np.float32), y_test=np.zeros(0, np.int64)), "no samples"),
        (lambda a: a.update(x_test=np.zeros((10, 5), np.float32)), "same sample shape"),
    ],
)
def test_npz_bad_content_is_explained(tmp_path, change, message):
    arrays = _valid_arrays()
    change(arrays)
    if message is None:
        assert load_dataset("npz", _npz(tmp_path, **arrays)).num_classes >= 3
        return
    with pytest.raises(EdgesmithError, match=message):
        load_dataset("npz", _npz(tmp_path, **arrays))


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(EdgesmithError, match="not a readable .npz"):
        load_dataset("npz", str(path))


def test_calibration_sample_is_fixed_by_seed(digits):
    first = digits.calibration_sample(50, seed=3)
    assert first.shape == (50, 8, 8, 1)
    np.testing.assert_array_equal(first, digits.calibration_sample(50, seed=3))


def test_real_fashion_mnist_from_debian_package():
    """The default location is where `apt-get install dataset-fashion-mnist` puts the files."""
    data = load_dataset("fashion-mnist")
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (54000, 6000, 10000)
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10


def test_channels_first_looking_samples_are_pointed_out():
    from toolkit.data import from_arrays
    from toolkit.pipeline import _log_data_source

    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((40, 3, 16, 16)), "y_train": np.arange(40) % 2,
              "x_test": rng.random((10, 3, 16, 16)), "y_test": np.arange(10) % 2}
    lines: list[str] = []
    _log_data_source(from_arrays(arrays), lines.append)
    assert any("transpose them to (n, 16, 16, 3)" in line for line in lines)
    lines.clear()
    _log_data_source(from_arrays({key: value.transpose(0, 2, 3, 1) if key.startswith("x") else value
                                  for key, value in arrays.items()}), lines.append)
    assert lines == []
