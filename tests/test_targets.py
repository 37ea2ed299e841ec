"""Target profiles: every shipped TOML loads and documents itself; bad files say what to fix."""
from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest

from toolkit.errors import EdgesmithError
from toolkit.targets import PRECISIONS, format_target_list, list_targets, load_target, targets_dir

TARGET_FILES = sorted(targets_dir().glob("*.toml"))
DOCUMENTED = ("runtime", "precisions", "int8_io_dtype", "fixed_batch", "measured_on", "fallback", "partitioning",
              "tensor_types", "requires_quantized", "static_shapes", "max_inner_dims", "max_rank",
              "param_cache_bytes", "compiler", "op_domains")


@pytest.fixture(autouse=True)
def built_in_targets_only(monkeypatch):
    monkeypatch.delenv("EDGESMITH_TARGETS_DIR", raising=False)


def test_the_four_built_in_targets_exist():
    assert {t.name for t in list_targets()} >= {"cpu", "gpu", "edgetpu", "onnx-cpu"}


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda p: p.stem)
def test_target_file_loads_and_is_consistent(path):
    target = load_target(path.stem)
    assert target == load_target(str(path))
    assert target.name == path.stem and target.source == path
    assert target.precisions and set(target.precisions) <= set(PRECISIONS)
    assert target.summary and target.measured_on and target.accelerator.name
    if target.runtime == "litert":
        assert target.ops, "a LiteRT target must list the ops its accelerator runs"
    if "int8" in target.precisions and target.accelerator.requires_quantized:
        assert target.precisions == ("int8",), "an integer-only accelerator gets only int8 exports"
    if target.accelerator.static_shapes:
        assert target.fixed_batch, "a static-shape accelerator needs the batch fixed at export"


def undocumented_settings(text: str) -> list[str]:
    """The DOCUMENTED keys in a profile's text without a comment: a TOML comment line with some
    text right above the key, or a comment after the value on its own line (`key = value  # why`).
    A `#` inside a string value is not a comment: the part before the `#` must be a whole TOML
    assignment."""
    lines = text.splitlines()
    missing = []
    for number, line in enumerate(lines):
        key = re.match(r"^(\w+)\s*=", line)
        if not key or key.group(1) not in DOCUMENTED:
            continue
        above = lines[number - 1].strip() if number else ""
        if re.fullmatch(r"#\s*\S.*", above):
            continue
        trailing = False
        for inline in re.finditer(r"\s#\s*\S", line):
            try:
                tomllib.loads(line[: inline.start()])
            except tomllib.TOMLDecodeError:
                continue
            trailing = True
            break
        if not trailing:
            missing.append(f"{number + 1} {key.group(1)}")
    return missing


def test_the_comment_check_accepts_only_real_toml_comments():
    assert undocumented_settings('# why\nruntime = "litert"\n') == []
    assert undocumented_settings('runtime = "litert"  # why\n') == []
    assert undocumented_settings('precisions = ["fp32", "int8"] # why\n') == []
    assert undocumented_settings('summary = "x"\nruntime = "litert"\n') == ["2 runtime"]
    assert undocumented_settings('measured_on = "host # CPU"\n') == ["1 measured_on"], "a # inside a string"
    assert undocumented_settings('measured_on = "a # b"  #\n') == ["1 measured_on"], "an empty comment"
    assert undocumented_settings('#\nruntime = "litert"\n') == ["2 runtime"], "an empty comment line"
    assert undocumented_settings('# why\n\nruntime = "litert"\n') == ["3 runtime"], "not right above"
    assert undocumented_settings('name = "x" # only on the line before\nruntime = "litert"\n') == ["2 runtime"]


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda p: p.stem)
def test_every_setting_carries_its_hardware_reason(path):
    assert undocumented_settings(path.read_text()) == [], f"{path.name}: settings without a comment"


def test_shipped_profiles_match_the_export_contract():
    cpu, gpu, edgetpu, onnx_cpu = (load_target(n) for n in ("cpu", "gpu", "edgetpu", "onnx-cpu"))
    assert cpu.precisions == ("fp32", "fp16", "dynamic", "int8")
    assert gpu.precisions == ("fp32", "fp16")
    assert (edgetpu.precisions, edgetpu.int8_io_dtype, edgetpu.fixed_batch) == (("int8",), "uint8", True)
    assert (onnx_cpu.runtime, onnx_cpu.precisions) == ("onnxruntime", ("fp32", "int8"))
    assert cpu.measured_on == "host CPU (LiteRT + XNNPACK)"
    assert edgetpu.measured_on == "host CPU — not Edge TPU latency"
    assert edgetpu.accelerator.param_cache_bytes == 8 * 1024 * 1024


def test_target_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_target("cpu").name = "other"


def test_unknown_target_lists_the_available_ones():
    with pytest.raises(EdgesmithError, match="unknown target 'edge-tpu'") as error:
        load_target("edge-tpu")
    message = str(error.value)
    assert "did you mean 'edgetpu'" in message
    assert all(name in message for name in ("cpu", "gpu", "edgetpu", "onnx-cpu"))


def test_a_dropped_in_file_is_a_new_target(tmp_path, monkeypatch):
    text = (targets_dir() / "cpu.toml").read_text()
    (tmp_path / "pi4.toml").write_text(text.replace('name = "cpu"', 'name = "pi4"'))
    (tmp_path / "cpu.toml").write_text(text.replace('summary = "', 'summary = "local override: '))
    monkeypatch.setenv("EDGESMITH_TARGETS_DIR", str(tmp_path))
    assert load_target("pi4").source == tmp_path / "pi4.toml"
    assert load_target("cpu").summary.startswith("local override")
    names = [t.name for t in list_targets()]
    assert names.count("cpu") == 1 and "pi4" in names and "edgetpu" in names
    assert "pi4" in format_target_list(list_targets())


def test_a_profile_can_name_its_device(tmp_path):
    text = (targets_dir() / "cpu.toml").read_text()
    path = tmp_path / "cpu.toml"
    path.write_text(text.replace("fixed_batch = false", 'fixed_batch = false\n# measured there\ndevice = "ssh://pi@raspberrypi.local"'))
    assert load_target(str(path)).device == "ssh://pi@raspberrypi.local"
    assert load_target("cpu").device is None and load_target("gpu").accelerator.delegate == "gpu"


def broken(tmp_path, old: str, new: str):
    text = (targets_dir() / "cpu.toml").read_text()
    assert old in text
    path = tmp_path / "cpu.toml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


@pytest.mark.parametrize("old, new, expected", [
    ("fixed_batch =", "fixed_bach =", r"key 'fixed_bach' is unknown — did you mean 'fixed_batch'\?"),
    ("partitioning =", "partitoning =", r"key 'accelerator.partitoning' is unknown — did you mean 'accelerator.partitioning'\?"),
    ("fixed_batch = false", 'fixed_batch = "no"', r"key 'fixed_batch' should be true or false, got str 'no'"),
    ('measured_on = "host CPU (LiteRT + XNNPACK)"', "", r"key 'measured_on' is missing — add measured_on \(a string\)"),
    ('runtime = "litert"', 'runtime = "tflite"', r"key 'runtime' is 'tflite' — .*use one of: litert, onnxruntime"),
    ('"dynamic", "int8"]', '"dynamic", "int4"]', r"key 'precisions' is 'int4' — .*use one of: fp32, fp16, dynamic, int8"),
    ('tensor_types = ["float32", "int8"]', 'tensor_types = ["float", "int8"]', r"key 'accelerator.tensor_types' is 'float'"),
    ("CONV_2D = \"any\"", "CONV2D = \"any\"", r"key 'ops.CONV2D' is not a TFLite builtin op — did you mean 'CONV_2D'\?"),
    ("CONV_2D = \"any\"", "CONV_2D = 0", r"key 'ops.CONV_2D' is 0 — use a positive op version"),
    ("CONV_2D = \"any\"", "CONV_2D = true", r"key 'ops.CONV_2D' has a bool value"),
    ('name = "cpu"', 'name = "laptop"', r"key 'name' is 'laptop' but the file is cpu.toml — set name = \"cpu\""),
    ('name = "cpu"', 'name = "MyBoard"', r"key 'name' 'MyBoard' is not a target name .* use lowercase letters"),
    ('name = "cpu"', 'name = "cpu', r"invalid TOML"),
    ('precisions = ["fp32", "fp16", "dynamic", "int8"]', "precisions = []", r"key 'precisions' is empty — list what"),
    ("fixed_batch = false", 'fixed_batch = false\ndevice = "pi@raspberrypi"', r"key 'device' 'pi@raspberrypi' is not a device address — write it as ssh://"),
    ('partitioning = "all_supported"', 'partitioning = "all_supported"\ndelegate = "npu"', r"key 'accelerator.delegate' is 'npu' — use one of: gpu, edgetpu"),
])
def test_malformed_file_names_file_key_and_fix(tmp_path, old, new, expected):
    path = broken(tmp_path, old, new)
    with pytest.raises(EdgesmithError, match=expected) as error:
        load_target(path)
    assert str(error.value).startswith(path + ":")
    assert "\n" not in str(error.value)


def test_missing_target_file_path(tmp_path):
    with pytest.raises(EdgesmithError, match="does not exist"):
        load_target(str(tmp_path / "nowhere.toml"))
