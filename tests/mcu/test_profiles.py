"""The microcontroller profiles: budgets and estimate figures present, and clear errors when not."""
from __future__ import annotations

import pytest

from toolkit.errors import EdgesmithError
from toolkit.targets import list_targets, load_target

MCU = ("mcu-cortex-m4", "mcu-cortex-m7", "ethos-u55-128", "ethos-u65-256")


@pytest.mark.parametrize("name", MCU)
def test_mcu_profiles_are_int8_with_budgets_and_estimated_latency(name):
    target = load_target(name)
    assert target.precisions == ("int8",) and target.int8_io_dtype == "int8" and target.fixed_batch
    assert not target.latency_on_device and target.measured_on.startswith("not measured")
    options = target.options
    assert options["flash_bytes"] > options.get("reserved_flash_bytes", 0) and options["ram_bytes"] > 0
    if target.accelerator.compiler == "vela":
        assert options["vela"]["accelerator_config"] == name and "ethos-u" in target.custom_ops
    else:
        assert 0 < options["cycles_per_mac"] < options["reference_cycles_per_mac"]


def test_every_mcu_profile_is_listed():
    assert set(MCU) <= {target.name for target in list_targets()}


def _copy(tmp_path, name, replace):
    text = load_target(name).source.read_text().replace(f'name = "{name}"', 'name = "mine"')
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return str(path)


def test_a_cortex_m_profile_without_cycles_per_mac_says_what_to_add(tmp_path):
    path = _copy(tmp_path, "mcu-cortex-m4", [("cycles_per_mac = 2.55\n", "")])
    with pytest.raises(EdgesmithError, match="cycles_per_mac.*published CMSIS-NN cycles per MAC"):
        load_target(path)


def test_an_ethos_profile_missing_a_vela_setting_names_it(tmp_path):
    path = _copy(tmp_path, "ethos-u55-128", [('memory_mode = "Shared_Sram"\n', "")])
    with pytest.raises(EdgesmithError, match="'vela' lacks memory_mode"):
        load_target(path)


def test_a_budget_must_be_a_positive_number(tmp_path):
    path = _copy(tmp_path, "mcu-cortex-m7", [("ram_bytes = 524_288", "ram_bytes = 0")])
    with pytest.raises(EdgesmithError, match="'ram_bytes' is 0"):
        load_target(path)


def test_reserved_memory_must_leave_the_model_some(tmp_path):
    path = _copy(tmp_path, "mcu-cortex-m4", [("reserved_ram_bytes = 32_768", "reserved_ram_bytes = 300_000")])
    with pytest.raises(EdgesmithError, match="'reserved_ram_bytes' is 300,000, which leaves the model none"):
        load_target(path)
