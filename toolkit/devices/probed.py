"""What every device reached from here shares (SSH devices, Ray device nodes): it was probed
(`facts`, from probe.py run there), it is the target's own hardware, and it must have the
runtimes of the files it is sent."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.benchmark.device_runners import DELEGATES
from toolkit.errors import EdgesmithError

if TYPE_CHECKING:
    from toolkit.targets import Target

# The modules a device runs (under toolkit/; flat there): standard library, numpy and the runtimes only.
KIT = ("benchmark/device_bench.py", "benchmark/device_runners.py", "benchmark/timing.py", "probe.py", "cpu_features.py")


def kit_sources() -> dict[str, str]:
    """{file name: source} of the KIT modules, as they are laid out on a device."""
    package = Path(__file__).resolve().parent.parent
    return {Path(name).name: (package / name).read_text(encoding="utf-8") for name in KIT}


def plan_arguments(budget_s: float | None, target_width: float) -> list[str]:
    """device_bench's flags for a measurement plan: exactly `runs` calls (`budget_s` None), the
    fixed plan, or the adaptive one with its per-artifact budget."""
    if budget_s is None:
        return ["--exact"]
    return ["--target-width", repr(target_width), "--budget-s", repr(budget_s)] if target_width else []


class ProbedDevice:
    """Base of the remote device kinds; each sets `url`, `facts` and says how it is reached."""

    remote = True
    url: str
    facts: dict[str, Any]
    install_fix = "on the device: pip install {packages}"

    @property
    def via(self) -> str:
        """How the device is reached, as `measured_on` words ("ssh")."""
        raise NotImplementedError

    @property
    def interpreter(self) -> str:
        """The Python that runs there, for messages."""
        raise NotImplementedError

    def measured_on(self, target: Target | None) -> str:
        cpu = self.facts["cpu"]
        where = f"{self.facts['hostname']} {cpu['model']} {cpu['arch']} via {self.via}"
        delegate = target.accelerator.delegate if target else None
        return f"{where}, {DELEGATES[delegate][0]}" if delegate else where

    def on_device(self, target: Target | None) -> bool:
        return True

    def require(self, packages: set[str], why: str) -> None:
        """The device's Python must have numpy and the runtime packages of every file it is sent."""
        missing = [package for package in ("numpy", *sorted(packages)) if not self.facts["runtimes"].get(package)]
        if missing:
            raise EdgesmithError(f"{self.url}: {self.interpreter} lacks {', '.join(missing)} ({why})",
                                 self.install_fix.format(packages=" ".join(missing)))
