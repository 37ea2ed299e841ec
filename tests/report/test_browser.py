"""Open report.html in a real headless Chromium: it must render, sort, and log no errors.

Chromium is driven from the command line (--dump-dom, --screenshot), so nothing beyond the
browser itself is needed. On Debian: `apt-get install -y chromium`.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from toolkit.report.html import write_report

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def open_in_browser(page: Path, profile: Path, *mode: str) -> tuple[str, list[str]]:
    """Run Chromium on `page`; return stdout and the console lines the page produced."""
    assert BROWSER, "Chromium is needed for this test: apt-get install -y chromium"
    done = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *mode, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def with_script(page: Path, script: str, name: str) -> Path:
    """A copy of `page` with `script` run after the page's own script (as a user click would)."""
    copy = page.with_name(name)
    copy.write_text(page.read_text().replace("</body>", f"<script>{script}</script></body>"))
    return copy


def untimed_first(synthetic_run) -> tuple[list[dict], dict]:
    """The synthetic run with its first artifact untimed: it must not break plots or sorting."""
    records, run_info = synthetic_run()
    records[0]["latency_ms"] = None
    return records, run_info


@pytest.fixture(scope="module")
def report(tmp_path_factory, synthetic_run) -> Path:
    return write_report(tmp_path_factory.mktemp("run"), *untimed_first(synthetic_run))


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chromium-profile")


def test_table_and_plots_render_without_console_errors(report, profile):
    dom, console = open_in_browser(report, profile, "--dump-dom")
    assert console == []
    assert re.search(r'<body [^>]*data-rendered="ok"', dom), dom[:500]
    assert "data-errors" not in dom
    assert len(re.findall(r"<tr data-path=", dom)) == 54
    assert len(re.findall(r'<svg class="plot"', dom)) == 8
    assert len(re.findall(r"<circle ", dom)) > 2 * 54
    assert dom.count('class="frontier-line"') == 8


def test_error_detection_is_real(report, profile):
    broken = with_script(report, "notDefinedAnywhere();", "broken.html")
    dom, console = open_in_browser(broken, profile, "--dump-dom")
    assert any("notDefinedAnywhere" in line for line in console)
    assert re.search(r'<html [^>]*data-errors="[^"]*notDefinedAnywhere', dom)


def test_clicking_a_header_sorts_numerically_with_unmeasured_rows_last(report, profile,
                                                                       synthetic_run):
    order = ("Array.from(document.querySelectorAll('#results tbody tr'))"
             ".map(function (r) { return r.dataset.target + '/' + r.dataset.path; }).join(',')")
    script = ("var th = document.querySelectorAll('#results th')[7];"
              f"th.click(); document.body.dataset.ascending = {order};"
              f"th.click(); document.body.dataset.descending = {order};")
    dom, console = open_in_browser(with_script(report, script, "sorted.html"), profile,
                                   "--dump-dom")
    assert console == []
    records, _ = untimed_first(synthetic_run)
    timed = [r for r in records if r["latency_ms"]]
    ascending = sorted(timed, key=lambda r: r["latency_ms"]["p50"]) + [records[0]]
    descending = sorted(timed, key=lambda r: r["latency_ms"]["p50"], reverse=True) + [records[0]]
    for name, expected in (("ascending", ascending), ("descending", descending)):
        found = re.search(rf'data-{name}="([^"]*)"', dom).group(1).split(",")
        assert found == [f"{r['target']}/{r['path']}" for r in expected]


def read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) to an array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    while position < len(data):
        (length,), kind = struct.unpack(">I", data[position:position + 4]), data[position + 4:
                                                                                  position + 8]
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    image, previous = np.zeros((height, stride), np.uint8), np.zeros(stride, np.int64)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if kind == 1:
            line = line.reshape(width, channels).cumsum(axis=0).reshape(-1)
        elif kind == 2:
            line = line + previous
        elif kind in (3, 4):
            line = _unfilter_slowly(kind, line.tolist(), previous.tolist(), channels)
        previous = np.asarray(line) % 256
        image[y] = previous
    return image.reshape(height, width, channels)[:, :, :3]


def _unfilter_slowly(kind: int, line: list[int], above: list[int], channels: int) -> list[int]:
    out = []
    for i, value in enumerate(line):
        left = out[i - channels] if i >= channels else 0
        upper_left = above[i - channels] if i >= channels else 0
        if kind == 3:
            out.append((value + (left + above[i]) // 2) % 256)
            continue
        guess = left + above[i] - upper_left
        distances = (abs(guess - left), abs(guess - above[i]), abs(guess - upper_left))
        out.append((value + (left, above[i], upper_left)[distances.index(min(distances))]) % 256)
    return out


def test_screenshot_shows_the_plots(report, profile, tmp_path):
    shot = tmp_path / "report.png"
    # Half-scale rendering of the top 1280×1600 CSS pixels (summary, findings, first plots)
    # keeps the pure-Python PNG decoding quick.
    open_in_browser(report, profile, f"--screenshot={shot}", "--window-size=1280,1600",
                    "--force-device-scale-factor=0.5")
    pixels = read_png(shot.read_bytes())
    assert pixels.shape == (800, 640, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # not a blank page

    def count(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(pixels.astype(int) - rgb).max(axis=2) <= 12).sum())

    assert count((0xd1, 0x49, 0x5b)) > 100  # int8 markers
    assert count((0x3b, 0x6f, 0xb6)) > 100  # fp32 markers

