"""Image folders: layouts, class names, sizes, color, the seed's split, and every bad case."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from toolkit.data import load_dataset
from toolkit.data_folder import parse_image_size
from toolkit.errors import EdgesmithError

CLASSES = {"cat": 6, "dog": 6, "fish": 5}


def test_class_folders_split_by_seed_with_names_kept(tmp_path, write_images):
    write_images(tmp_path, CLASSES)
    data = load_dataset("folder", str(tmp_path), seed=0)
    assert data.class_names == ("cat", "dog", "fish") and data.num_classes == 3
    assert data.input_shape == (16, 16, 3) and data.raw_dtype == "uint8"
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 17
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0  # default scale:1/255
    assert data.source["layout"] == "class folders" and data.source["images"] == 17
    assert load_dataset("folder", str(tmp_path), seed=0).fingerprint == data.fingerprint
    assert load_dataset("folder", str(tmp_path), seed=1).fingerprint != data.fingerprint


def test_train_test_layout_keeps_the_test_folder(tmp_path, write_images):
    write_images(tmp_path / "train", CLASSES)
    write_images(tmp_path / "test", {"cat": 2, "dog": 3}, seed=1)
    data = load_dataset("folder", str(tmp_path))
    assert data.source["layout"] == "train/test folders"
    assert len(data.x_test) == 5 and sorted(data.y_test.tolist()) == [0, 0, 1, 1, 1]
    assert len(data.x_train) + len(data.x_val) == 17


def test_a_val_folder_is_the_test_split_when_there_is_no_test_folder(tmp_path, write_images):
    write_images(tmp_path / "train", CLASSES)
    write_images(tmp_path / "val", {"cat": 2, "dog": 1}, seed=1)
    data = load_dataset("folder", str(tmp_path))
    assert data.source["layout"] == "train/val folders" and sorted(data.y_test.tolist()) == [0, 0, 1]
    write_images(tmp_path / "test", {"fish": 4}, seed=2)
    data = load_dataset("folder", str(tmp_path))
    assert data.source["layout"] == "train/test folders (val/ not used: the validation split is cut from train/)"
    assert data.y_test.tolist() == [2, 2, 2, 2]
    write_images(tmp_path, {"bird": 2}, seed=3)  # a class folder beside train/ and test/: said, not read
    assert load_dataset("folder", str(tmp_path)).source["layout"] == (
        "train/test folders (val/ not used: the validation split is cut from train/; "
        "bird/ not used: the classes are the sub-folders of train/ and test/)")


def test_mixed_sizes_are_resized_and_grayscale_has_one_channel(tmp_path, write_images):
    write_images(tmp_path, {"a": 3, "b": 3})
    write_images(tmp_path, {"c": 3}, size=(20, 12), suffix=".bmp")
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "a" / "big.jpg")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    data = load_dataset("folder", str(tmp_path), image_size="24x8", color="grayscale")
    assert data.input_shape == (8, 24, 1) and data.source["images"] == 10
    assert data.source["resized_images"] == 10
    first = load_dataset("folder", str(tmp_path))
    assert first.input_shape == (16, 16, 3) and first.source["resized_images"] == 4


def test_preprocess_modes_apply_to_the_raw_pixels(tmp_path, write_images):
    write_images(tmp_path, {"a": 2, "b": 2})
    raw = load_dataset("folder", str(tmp_path), preprocess="none").x_test
    for spec, expected in [
        ("scale:1/255", raw / 255),
        ("mobilenet", raw / 127.5 - 1),
        ("mean_std:100,50", (raw - 100) / 50),
        ("mean_std:10,20,30/2,4,8", (raw - [10, 20, 30]) / [2, 4, 8]),
    ]:
        data = load_dataset("folder", str(tmp_path), preprocess=spec)
        np.testing.assert_allclose(data.x_test, expected, rtol=1e-6, atol=1e-6)
        assert data.preprocessing["spec"] == spec


def _corrupt(folder):
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")


def _truncated(folder):
    data = (folder / "dog" / "000.png").read_bytes()
    (folder / "dog" / "cut.png").write_bytes(data[: len(data) // 2])


def _empty_class(folder):
    (folder / "bird").mkdir()


@pytest.mark.parametrize("breaker, message", [
    (_corrupt, "broken.png is not a readable image"),
    (_truncated, "cut.png is not a readable image"),
    (_empty_class, "class folder .*bird has no images"),
])
def test_bad_folder_cases_name_the_file(tmp_path, write_images, breaker, message):
    write_images(tmp_path, CLASSES)
    breaker(tmp_path)
    with pytest.raises(EdgesmithError, match=message):
        load_dataset("folder", str(tmp_path))


@pytest.mark.parametrize("breaker", [_corrupt, _truncated])
def test_skip_bad_images_skips_and_counts(tmp_path, write_images, breaker):
    write_images(tmp_path, CLASSES)
    breaker(tmp_path)
    data = load_dataset("folder", str(tmp_path), skip_bad_images=True)
    assert data.source["skipped_images"] == 1 and data.source["images"] == 17
    assert data.source["skipped"][0].endswith(".png")


def test_a_class_with_only_bad_images_is_an_error_even_when_skipping(tmp_path, write_images):
    write_images(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.png").write_bytes(b"junk")
    with pytest.raises(EdgesmithError, match="every image in .*c is unreadable"):
        load_dataset("folder", str(tmp_path), skip_bad_images=True)


@pytest.mark.parametrize("layout, message", [
    ({"train/a": 2, "train/b": 2}, "has train/ but no test/"),
    ({"validation/a": 2, "validation/b": 2}, "has validation/ but no train/"),
    ({"train/a": 2, "train/b": 2, "test/a": 1, "test/z": 1}, "test class with no training folder"),
    ({"only": 3}, "has 1 class folder"),
    ({}, "has 0 class folder"),
])
def test_bad_layouts(tmp_path, write_images, layout, message):
    write_images(tmp_path, layout)
    with pytest.raises(EdgesmithError, match=message):
        load_dataset("folder", str(tmp_path))


def test_missing_folder_and_bad_options(tmp_path, write_images):
    with pytest.raises(EdgesmithError, match="does not exist"):
        load_dataset("folder", str(tmp_path / "nowhere"))
    write_images(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(EdgesmithError, match="unknown color 'sepia'"):
        load_dataset("folder", str(tmp_path), color="sepia")
    with pytest.raises(EdgesmithError, match="3 channel values but the samples have 1"):
        load_dataset("folder", str(tmp_path), color="grayscale", preprocess="mean_std:1,2,3/1,1,1")
    for text in ("96", "96x", "0x5", "axb"):
        with pytest.raises(EdgesmithError, match="WIDTHxHEIGHT"):
            parse_image_size(text)


def test_a_folder_too_large_for_memory_is_refused_before_decoding(tmp_path, write_images, monkeypatch):
    import toolkit.data_folder as data_folder

    write_images(tmp_path, {"a": 2, "b": 2})
    monkeypatch.setattr(data_folder, "available_memory", lambda: 1000)
    with pytest.raises(EdgesmithError, match="GiB in memory"):
        load_dataset("folder", str(tmp_path), image_size="96x96")


def test_16_bit_grayscale_pngs_keep_their_range_as_tensorflow_reads_them(tmp_path):
    """Pillow's own 16 → 8-bit conversion clips everything above 255 to white; the loader
    keeps the top byte, which is what TensorFlow's decoder (Keras' image loader) gives."""
    ramp = np.linspace(0, 65535, 8 * 8).reshape(8, 8).astype(np.uint16)
    for name, image in (("dark", ramp // 4), ("full", ramp)):
        (tmp_path / name).mkdir()
        for index in range(3):
            Image.fromarray(image).save(tmp_path / name / f"{index}.png")
    data = load_dataset("folder", str(tmp_path), preprocess="none", color="grayscale")
    samples = np.concatenate([data.x_train, data.x_val, data.x_test])[..., 0]
    labels = np.concatenate([data.y_train, data.y_val, data.y_test])
    np.testing.assert_array_equal(samples[labels == 1][0], ramp >> 8)
    np.testing.assert_array_equal(samples[labels == 0][0], (ramp // 4) >> 8)
    rgb = load_dataset("folder", str(tmp_path), preprocess="none", color="rgb").x_test
    assert rgb.shape[-1] == 3 and 0 < rgb.mean() < 255 and (rgb[..., 0] == rgb[..., 2]).all()


def test_gif_webp_and_tiff_are_read_and_other_files_are_counted(tmp_path, write_images):
    write_images(tmp_path, {"a": 2, "b": 2})
    for suffix in (".gif", ".webp", ".tif"):
        Image.new("RGB", (16, 16), (0, 90, 200)).save(tmp_path / "b" / f"extra{suffix}")
    for name in ("IMG_1.HEIC", "IMG_2.heic", "notes.txt"):
        (tmp_path / "a" / name).write_bytes(b"not read")
    data = load_dataset("folder", str(tmp_path))
    assert data.source["images"] == 7
    assert data.source["ignored_files"] == {".heic": 2, ".txt": 1}


def test_a_class_folder_of_unread_formats_names_them(tmp_path, write_images):
    write_images(tmp_path, {"a": 2})
    (tmp_path / "b").mkdir()
    for index in range(3):
        (tmp_path / "b" / f"IMG_{index}.heic").write_bytes(b"phone photo")
    with pytest.raises(EdgesmithError, match=r"has no images .*it holds 3 \.heic files — convert them to JPEG or PNG"):
        load_dataset("folder", str(tmp_path))
