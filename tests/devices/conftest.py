"""A real OpenSSH server on 127.0.0.1 and a "device" Python holding only numpy and the runtimes.

The server runs `sshd -D` on a free port with a generated host key, a temporary authorized key
and its own home folder for the device's cache; clients reach it through an ssh config file
named by EDGESMITH_SSH_OPTIONS, as a user's ~/.ssh/config would. The device Python is a venv
with numpy, ai-edge-litert and onnxruntime only (no TensorFlow, no edgesmith), so these tests
prove a device needs nothing else.
"""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
DEVICE_PACKAGES = ("numpy", "ai-edge-litert", "onnxruntime")  # pinned to this machine's versions


class SshServer:
    """sshd in a temporary folder: start, stop (a lost device), start again (the same device)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.home = folder, folder / "device-home"
        self.home.mkdir()
        for name in ("host_key", "client_key", "stranger_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
        shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        (folder / "sshd_config").write_text("\n".join([
            "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}", f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            "PidFile none", "UsePAM no", "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", f"SetEnv HOME={self.home}", "LogLevel ERROR", "",
        ]))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        log = open(self.folder / "sshd.log", "ab")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config"), "-p", str(self.port)],
                                        stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {(self.folder / 'sshd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop listening: sessions already open finish, new connections are refused."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def url(self, python: str) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}?python={python}"

    def client_config(self, name: str = "ssh_config", key: str = "client_key", strict: str = "accept-new",
                      known_hosts: str = "known_hosts") -> str:
        """An ssh config file for the client; returns the EDGESMITH_SSH_OPTIONS that selects it."""
        path = self.folder / name
        path.write_text("\n".join([
            "Host *", f"  IdentityFile {self.folder / key}", "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.folder / known_hosts}", f"  StrictHostKeyChecking {strict}", "  LogLevel ERROR", "",
        ]))
        return f"-F {path}"


def _venv(folder: Path, packages: tuple[str, ...]) -> str:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    if packages:
        pins = [f"{name}=={version(name)}" for name in packages]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True, timeout=900)
    return str(python)


@pytest.fixture(scope="session")
def device_python(tmp_path_factory) -> str:
    """A Python with only numpy, ai-edge-litert and onnxruntime: what a Raspberry Pi needs."""
    return _venv(tmp_path_factory.mktemp("device") / "venv", DEVICE_PACKAGES)


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> str:
    """A Python without numpy or the runtimes."""
    return _venv(tmp_path_factory.mktemp("bare") / "venv", ())


def _server(folder: Path):
    if not os.path.exists(SSHD):
        pytest.skip("needs OpenSSH's server (Debian: apt-get install openssh-server)")
    server = SshServer(folder)
    server.start()
    return server


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A running server, shared by a module's tests; clients use its ssh config."""
    server = _server(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def own_sshd(tmp_path):
    """A server of this test's own, to stop and start again."""
    server = _server(tmp_path)
    yield server
    server.stop()
