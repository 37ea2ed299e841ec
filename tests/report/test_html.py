import re
from html.parser import HTMLParser

from toolkit.report.html import build_html, write_report


class _Page(HTMLParser):
    """Collects table rows (attributes + cell texts), svg count and any external reference."""

    def __init__(self):
        super().__init__()
        self.rows, self.svgs, self.external, self._cells = [], 0, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-path" in attrs:
            self.rows.append({"attrs": attrs, "cells": []})
        if tag == "td" and self.rows:
            self._cells = []
        if tag == "svg":
            self.svgs += 1
        self.external += [value for key, value in attrs.items() if key in ("src", "href")]

    def handle_data(self, data):
        if self._cells is not None:
            self._cells.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cells is not None:
            self.rows[-1]["cells"].append("".join(self._cells).strip())
            self._cells = None


def parse(page):
    parser = _Page()
    parser.feed(page)
    return parser


def test_every_record_has_one_table_row_with_its_numbers(records, run_info):
    page = parse(build_html(records, run_info))
    assert len(page.rows) == len(records)
    for row, record in zip(page.rows, records):
        assert row["attrs"]["data-path"] == record["path"]
        assert row["attrs"]["data-target"] == record["target"]
        variant, target, fmt, precision, accuracy, drop, _, p50 = row["cells"][:8]
        assert variant.split()[0] == record["variant"]
        assert (target, fmt, precision) == (record["target"], record["format"],
                                            record["precision"])
        assert accuracy == f"{record['accuracy'] * 100:.2f}%"
        assert drop == f"{record['accuracy_drop_pp']:+.2f}"
        assert p50.startswith(f"{record['latency_ms']['p50']:#.3g} [")
        assert row["cells"][-1] == record["latency_measured_on"]


def test_page_has_two_plots_per_target_with_frontier_and_tooltips(records, run_info):
    page = build_html(records, run_info)
    assert parse(page).svgs == 2 * 4
    assert page.count("<title>") == 1 + 2 * len(records)  # page title + one per marker
    assert page.count('class="frontier-line"') == 8
    assert "cpu: accuracy vs latency" in page and "onnx-cpu: accuracy vs size" in page


def test_best_compatibility_findings_and_skipped_sections(records, run_info):
    page = build_html(records, run_info)
    best = page[page.index('id="best"'):page.index('id="findings"')]
    assert "distill-small__int8.tflite" in best and "no artifact met the budget" in best
    assert len(re.findall(r'<tr [^>]*class="best"', page)) == 3
    compat = page[page.index('id="compatibility"'):page.index('id="skipped"')]
    assert "<b>edgetpu</b> — 4 of 6 artifacts run fully on the Edge TPU" in compat
    assert "<details class=\"compat\" open>" in compat  # opened: something is not accelerated
    assert "blocker: tensor dense/kernel is float32" in compat
    assert "unsupported ops: MEAN" in compat
    assert compat.count("<b>edgetpu/") == 6
    assert "CONV_2D" not in compat  # the per-op table belongs to `check`, not to the report
    assert "distillation bought +1.2 pp" in page
    assert "prune95" in page[page.index('id="skipped"'):]
    assert "fashion-mnist" in page and "96.20%" in page and "100,000" in page


def test_page_is_self_contained_and_escapes_names(records, run_info):
    records[0]["variant"] = "<script>alert(1)</script>"
    run_info["name"] = "a&b"
    page = build_html(records, run_info)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "edgesmith report — a&amp;b" in page
    assert parse(page).external == []
    assert "http://" not in page and "https://" not in page and "@import" not in page


def test_artifacts_without_latency_or_compatibility_still_render(records):
    records[0]["latency_ms"] = None
    for record in records:
        record["compatibility"] = None
    page = build_html(records, {"name": "bare"})
    row = parse(page).rows[0]
    assert row["cells"][7] == "—"
    assert page.count("<title>") == 1 + 2 * len(records) - 1
    assert 'id="compatibility"' not in page and 'id="best"' not in page
    assert parse(build_html([], {"name": "empty"})).rows == []


def test_write_report_writes_the_page_atomically(tmp_path, records, run_info):
    path = write_report(tmp_path, records, run_info)
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == build_html(records, run_info)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_compatibility_comes_from_the_records_when_run_info_has_none(records, run_info):
    del run_info["compatibility"]
    page = build_html(records, run_info)
    compat = page[page.index('id="compatibility"'):page.index('id="skipped"')]
    assert compat.count("<details") == 4
    assert "<b>cpu</b> — 24 of 24 artifacts run fully on the XNNPACK" in compat
    assert "<b>cluster16__int8.tflite</b> — not compatible with edgetpu" in compat


def test_latency_frontier_judges_speed_by_intervals_like_select():
    """A 2% faster but less accurate artifact whose interval overlaps is not on the frontier."""
    from tests.report.conftest import make_record
    from toolkit.report.html import _frontiers

    accurate, quick = make_record("baseline", "cpu", "int8"), make_record("baseline", "cpu", "fp32")
    accurate.update(accuracy=0.95, latency_ms={"p50": 1.00, "repeat95_p50": [0.95, 1.05], "ci95_p50": [0.99, 1.01]})
    quick.update(accuracy=0.90, latency_ms={"p50": 0.98, "repeat95_p50": [0.93, 1.03], "ci95_p50": [0.975, 0.985]})
    assert {i for i, on in _frontiers([accurate, quick]).items() if "latency" in on} == {0}
    quick["latency_ms"].update(p50=0.5, repeat95_p50=[0.45, 0.55])  # measurably faster: a real trade-off
    assert {i for i, on in _frontiers([accurate, quick]).items() if "latency" in on} == {0, 1}


def test_plots_of_targets_timed_off_device_say_host_cpu(records, run_info):
    page = build_html(records, run_info)
    assert "p50 latency on the host CPU, not the device (ms)" in page  # gpu and edgetpu here


def test_tooltips_say_how_many_runs_and_sessions_a_p50_took(records, run_info):
    adaptive = {**records[0], "latency_ms": {**records[0]["latency_ms"], "runs": 360, "sessions": 12, "stopped_by": "width"}}
    noisy = {**records[1], "latency_ms": {**records[1]["latency_ms"], "runs": 900, "sessions": 30, "stopped_by": "budget"}}
    page = build_html([adaptive, noisy, *records[2:]], run_info)
    assert "(360 runs in 12 sessions, interval narrow)" in page and "(900 runs in 30 sessions, budget spent)" in page
    assert " sessions" not in build_html(records, run_info), "records without sessions (older runs) say nothing"


def test_a_regressions_predicted_values_are_named(records, run_info):
    page = build_html(records, {**run_info, "data_source": {"targets": ["bright", "dark"], "layout": "targets.csv manifest"}})
    assert "<dt>Predicted values</dt><dd>bright, dark</dd>" in page
    assert "Predicted values" not in build_html(records, run_info)
