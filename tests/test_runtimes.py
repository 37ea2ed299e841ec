"""The runtime registry: every plug-in provides the whole interface, and nothing else names one."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit.runtimes import RUNTIMES, Runtime, reference_runtime, runtime_for_file, runtime_named
from toolkit.targets import list_targets

TOOLKIT = Path(__file__).resolve().parent.parent / "toolkit"
INTERFACE = [name for name in dir(Runtime) if not name.startswith("_")] + list(Runtime.__annotations__)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_every_runtime_provides_the_whole_interface(name):
    module = RUNTIMES[name]
    missing = [member for member in INTERFACE if not hasattr(module, member)]
    assert not missing, f"runtime {name} lacks {missing}"
    assert module.NAME == name and runtime_named(name) is module
    assert not module.SUFFIX.startswith(".") and module.FILE_KIND


def test_exactly_one_reference_runtime():
    assert [module.NAME for module in RUNTIMES.values() if module.REFERENCE] == [reference_runtime().NAME]


def test_every_shipped_target_names_a_registered_runtime():
    assert {target.runtime for target in list_targets()} <= set(RUNTIMES)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_no_module_outside_the_runtime_names_it(name):
    """Runtime-specific code lives in toolkit/runtimes/<name>.py (and the helpers it calls)."""
    pattern = re.compile(rf"""["']{re.escape(name)}["']""")
    offenders = [
        str(path.relative_to(TOOLKIT)) for path in TOOLKIT.rglob("*.py")
        if path.parent.name != "runtimes" and pattern.search(path.read_text())
    ]
    assert offenders == [], f"'{name}' named outside its runtime module in {offenders}"


def test_files_are_recognised_by_content(tmp_path):
    flatbuffer = tmp_path / "model.bin"
    flatbuffer.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    assert runtime_for_file(flatbuffer).NAME == "litert"
