"""The report's lines about the data: how it was preprocessed and what the folder loader did."""
from __future__ import annotations

from toolkit.outputs import data_lines


def test_the_report_says_what_the_folder_loader_left_out_and_how_it_held_the_data():
    info = {
        "preprocessing": {"spec": "scale:1/255", "formula": "x × 0.00392157", "scale": 0.00392157, "offset": 0.0,
                          "raw_dtype": "uint8"},
        "classes": ["cat", "dog"],
        "data_source": {"images": 10, "skipped_images": 1, "resized_images": 2, "image_size": "16x16",
                        "ignored_files": {".heic": 2, ".txt": 1}, "streamed": True, "float32_bytes": 3 * 2**30},
    }
    text = "\n".join(data_lines(info))
    assert "Classes (2): cat, dog." in text
    assert "10 images read, 1 unreadable skipped, 2 resized to 16x16" in text
    assert "ignored 2 .heic files, 1 .txt file (not a JPEG, PNG, BMP, GIF, WebP or TIFF image)" in text
    assert "Samples kept as uint8 and preprocessed a batch at a time (as float32 they would take 3.0 GiB)" in text


def test_an_in_memory_dataset_with_nothing_left_out_adds_no_folder_lines():
    text = "\n".join(data_lines({"data_source": {"images": 10, "skipped_images": 0, "resized_images": 0,
                                                 "ignored_files": {}}}))
    assert "Image folder" not in text and "batch at a time" not in text
