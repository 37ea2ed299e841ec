"""A device reached over SSH (`ssh://user@host[:port]`), through the system OpenSSH client.

The `ssh` command rather than a Python SSH library, so ~/.ssh/config, keys, agents and
ProxyJump work as the user set them up. It never prompts (BatchMode) and every call has a
timeout, so a dead link fails one measurement instead of hanging the run. The device needs
Python ≥ 3.9 with numpy and the runtimes, not TensorFlow and not edgesmith: the modules that
run there (device_bench, device_runners, timing, probe, cpu_features) are copied on every connect, artifacts
once by content hash, to ~/.cache/edgesmith/<sha256>.<ext>, and reused from there.

URL settings: `?python=PATH` (the device's interpreter, e.g. a venv's; default python3) and
`?timeout=SECONDS` (one artifact's whole measurement). `EDGESMITH_SSH_OPTIONS` adds arguments
to every ssh call (e.g. "-F my_ssh_config").
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, urlsplit

from toolkit.benchmark.device_bench import DEFAULT_BUDGET_S, last_json
from toolkit.benchmark.device_runners import runtime_suffix
from toolkit.cpu_features import describe
from toolkit.devices import MeasurementFailed, check_url, device_packages
from toolkit.devices.probed import ProbedDevice, kit_sources, plan_arguments
from toolkit.errors import EdgesmithError
from toolkit.files import float32_npy

if TYPE_CHECKING:
    import numpy as np


OPTIONS_ENV = "EDGESMITH_SSH_OPTIONS"
# Never ask (no password, no host-key question); give up on a dead address within seconds and
# on a link that dies mid-command within ~15 s, instead of waiting for TCP to notice.
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=3")
REMOTE_CACHE = '"$HOME"/.cache/edgesmith'
UNPACK = "import json,sys; [open(n, 'w', encoding='utf-8').write(t) for n, t in json.load(sys.stdin).items()]"
CONNECT_TIMEOUT_S = 120  # copy the modules and probe: imports both runtimes, slow from an SD card
LIST_TIMEOUT_S = 60
DEFAULT_TIMEOUT_S = 900  # one artifact's whole method; a slow model on a small board takes minutes
COPY_BYTES_PER_S = 250e3  # a slow Wi-Fi link, for sizing a copy's timeout
MIN_PYTHON = (3, 9)


@dataclass(frozen=True)
class SshAddress:
    """Where the device is and how to run Python there."""

    url: str
    host: str
    user: str | None
    port: int | None
    python: str
    timeout_s: float

    @classmethod
    def parse(cls, url: str) -> SshAddress:
        parts = urlsplit(check_url(url))
        settings = parse_qs(parts.query)
        try:
            port = parts.port
        except ValueError:
            raise EdgesmithError(f"{url}: the port is not a number from 0 to 65535", "write ssh://user@host:22") from None
        try:
            timeout = float(settings.get("timeout", [DEFAULT_TIMEOUT_S])[0])
        except ValueError:
            raise EdgesmithError(f"{url}: the timeout is not a number of seconds", "write ssh://user@host?timeout=900") from None
        unknown = sorted(set(settings) - {"python", "timeout"}) or ([parts.path] if parts.path.strip("/") else [])
        if unknown:
            raise EdgesmithError(f"{url}: unknown part {unknown[0]!r}", "write ssh://user@host[:port][?python=PATH&timeout=SECONDS]")
        return cls(url, parts.hostname, parts.username, port, settings.get("python", ["python3"])[0], timeout)

    @property
    def address_words(self) -> str:
        """`-p PORT user@host` as a person types it after ssh or ssh-copy-id (for messages)."""
        port = f"-p {self.port} " if self.port else ""
        return f"{port}{self.user + '@' if self.user else ''}{self.host}"

    def command(self, remote: str) -> list[str]:
        """The ssh call; `remote` runs in sh whatever the device user's login shell is."""
        extra = shlex.split(os.environ.get(OPTIONS_ENV, ""))
        port = ["-p", str(self.port)] if self.port else []
        login = f"{self.user}@{self.host}" if self.user else self.host
        return ["ssh", *extra, *SSH_OPTIONS, *port, login, f"sh -c {shlex.quote(remote)}"]

    def python_command(self) -> str:
        """The interpreter as a remote shell word; a leading ~/ still means the device's home."""
        if self.python.startswith("~/"):
            return f'"$HOME"/{shlex.quote(self.python[2:])}'
        return shlex.quote(self.python)


class LinkError(EdgesmithError):
    """ssh itself failed (refused, timed out, auth, host key), not the command it ran."""


def connect(url: str) -> SshDevice:
    """Copy the device modules, run the probe there and check the Python can do the job."""
    address = SshAddress.parse(url)
    files = json.dumps(kit_sources(), sort_keys=True).encode()
    kit = f"{REMOTE_CACHE}/kit-{hashlib.sha256(files).hexdigest()[:16]}"
    python = address.python_command()
    packages = " ".join(shlex.quote(package) for package in device_packages())
    remote = f"mkdir -p {kit} && cd {kit} && {python} -c {shlex.quote(UNPACK)} && {python} probe.py {packages}"
    completed = run_ssh(address, remote, files, CONNECT_TIMEOUT_S)
    facts = last_json(completed.stdout.decode(errors="replace"))
    if completed.returncode != 0 or "python" not in facts:
        raise EdgesmithError(f"{url}: {address.python} could not run edgesmith's probe ({_last_line(completed.stderr)})",
                             "the device needs Python ≥ 3.9; name another interpreter with ?python=PATH")
    if tuple(int(part) for part in facts["python"].split(".")[:2]) < MIN_PYTHON:
        raise EdgesmithError(f"{url}: {address.python} is Python {facts['python']}",
                             "install Python ≥ 3.9 on the device, or name it with ?python=PATH")
    return SshDevice(address, facts, kit)


class SshDevice(ProbedDevice):
    """A connected device: measurements run there with the same code as here."""

    install_fix = "on the device: pip install {packages} (or name a Python that has it with ?python=PATH)"

    def __init__(self, address: SshAddress, facts: dict[str, Any], kit: str) -> None:
        self.address, self.url, self.facts, self._kit = address, address.url, facts, kit
        self._present: set[str] = set()  # artifacts known to be in the device's cache
        self._lost: LinkError | None = None

    def identity(self) -> str:
        """What a cached measurement depends on: the device, its CPU, Python, runtimes, delegates."""
        facts = self.facts
        loads = {kind: item["loads"] for kind, item in facts["accelerators"].items()}
        return json.dumps([self.url, facts["hostname"], describe(facts["cpu"]), facts["python"], facts["runtimes"], loads])

    @property
    def via(self) -> str:
        return "ssh"

    @property
    def interpreter(self) -> str:
        return f"{self.address.python} on the device"

    def benchmark(self, path: Path, sample: np.ndarray, runs: int, threads: int, batch: int,
                  delegate: str | None = None, budget_s: float | None = DEFAULT_BUDGET_S,
                  target_width: float = 0.0) -> dict[str, Any]:
        """device_bench's method on the device, on the inputs the local harness would use;
        `budget_s` is DEFAULT_BUDGET_S or None (exactly `runs` calls), or the artifact's budget
        of the adaptive plan (`target_width`), which runs on the device like any other."""
        from toolkit.runtimes import runtime_for_file

        self.require(set(runtime_for_file(path, trust_extension=True).DEVICE_PACKAGES), f"for {Path(path).name}")
        model, inputs = self._copy(Path(path)), self._copy_array(sample[: max(batch, 1)])
        arguments = [f"../{model}", "--inputs", f"../{inputs}", "--runs", str(runs), "--threads", str(threads),
                     "--batch", str(batch), *(["--delegate", delegate] if delegate else []),
                     *plan_arguments(budget_s, target_width)]
        return {**self._device_bench(arguments), "latency_cpu": describe(self.facts["cpu"])}

    def predict(self, path: Path, x: np.ndarray) -> np.ndarray:
        """Scores of every sample, computed on the device."""
        import numpy as np

        model, inputs = self._copy(Path(path)), self._copy_array(x)
        result = self._device_bench([f"../{model}", "--inputs", f"../{inputs}", "--predict"])
        return np.load(io.BytesIO(base64.b64decode(result["scores_npy"])))

    def _device_bench(self, arguments: list[str]) -> dict[str, Any]:
        words = " ".join(shlex.quote(word) for word in [*arguments, "--json"])
        completed = self._call(f"cd {self._kit} && {self.address.python_command()} device_bench.py {words}",
                               timeout=self.address.timeout_s)
        result = last_json(completed.stdout.decode(errors="replace"))
        if "error" in result:
            raise MeasurementFailed(f"{self.url}: {result['error']}", result["fix"])
        if completed.returncode != 0 or not result:
            raise MeasurementFailed(f"{self.url}: the benchmark failed on the device ({_last_line(completed.stderr)})",
                                    f"run `edgesmith device probe {self.url}` and check the file runs there")
        return result

    def _copy(self, path: Path) -> str:
        """The artifact's name in the device's cache, copied there unless it already is."""
        from toolkit.files import sha256_file

        name = f"{sha256_file(path)}{runtime_suffix(path)}"
        if name not in self._present:
            self._copy_missing(name, path.read_bytes)
        return name

    def _copy_array(self, array: np.ndarray) -> str:
        data = float32_npy(array)
        name = f"{hashlib.sha256(data).hexdigest()}.npy"
        if name not in self._present:
            self._copy_missing(name, lambda: data)
        return name

    def _copy_missing(self, name: str, read: Callable[[], bytes]) -> None:
        present = self._call(f'mkdir -p {REMOTE_CACHE} && cd {REMOTE_CACHE} && [ -f {name} ] && echo present || true',
                             timeout=LIST_TIMEOUT_S)
        if b"present" not in present.stdout:
            data = read()
            self._call(f"cd {REMOTE_CACHE} && cat > {name}.part.$$ && mv {name}.part.$$ {name}", data,
                       timeout=LIST_TIMEOUT_S + len(data) / COPY_BYTES_PER_S)
        self._present.add(name)

    def _call(self, remote: str, data: bytes = b"", timeout: float = LIST_TIMEOUT_S) -> subprocess.CompletedProcess:
        """One ssh call; once the link is lost, every later call fails at once with that reason."""
        if self._lost is None:
            try:
                return run_ssh(self.address, remote, data, timeout)
            except LinkError as error:
                self._lost = error
        raise MeasurementFailed(self._lost.problem, self._lost.fix)


def run_ssh(address: SshAddress, remote: str, data: bytes, timeout: float) -> subprocess.CompletedProcess:
    """Run `remote` in the device's shell; ssh's own failures become a LinkError saying what to do."""
    try:
        completed = subprocess.run(address.command(remote), input=data, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise EdgesmithError("the OpenSSH client `ssh` is not installed", "install it (Debian: apt install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise LinkError(f"{address.url}: no answer within {timeout:.0f} s",
                        f"check the device and the link (`ssh {address.address_words}`); a slow model needs ?timeout=SECONDS") from None
    if completed.returncode == 255:
        raise LinkError(*_explain(address, completed.stderr.decode(errors="replace")))
    if completed.returncode == 127:
        raise LinkError(f"{address.url}: {address.python} was not found on the device",
                        "install Python 3 there (sudo apt install python3-numpy), or name it with ?python=PATH")
    return completed


def _explain(address: SshAddress, stderr: str) -> tuple[str, str]:
    """(problem, fix) for an ssh failure, from what the client printed."""
    url, login, last = address.url, f"ssh {address.address_words}", _last_line(stderr.encode())
    if "IDENTIFICATION HAS CHANGED" in stderr:
        known = f"[{address.host}]:{address.port}" if address.port else address.host
        return (f"{url}: the device's host key has changed since the last connection",
                f"if the device was reinstalled, run `ssh-keygen -R '{known}'` and connect once with `{login}`; "
                "if not, someone may be intercepting the connection")
    if "Host key verification failed" in stderr:
        return (f"{url}: the device's host key is not known (edgesmith never asks)",
                f"connect once with `{login}` and accept it, or set StrictHostKeyChecking accept-new for it in ~/.ssh/config")
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        return (f"{url}: the device refused the login ({last})",
                f"install your public key there with `ssh-copy-id {address.address_words}`, or name the key in ~/.ssh/config "
                "(edgesmith never types passwords)")
    return f"{url}: cannot reach the device ({last})", f"check that it is on and that `{login}` works"


def _last_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else "no message"
