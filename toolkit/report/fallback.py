"""int8-mixed in the reports: what int8 lost, which layer is to blame, what float fallback bought.

Built from the int8-mixed records alone (their `fallback` holds the per-layer error of the plain
int8 file and each measured step), so `edgesmith report` rebuilds it from results.json.
"""
from __future__ import annotations

from html import escape
from typing import Any, Mapping

from toolkit.quant_debug.mixed import MIXED
from toolkit.quant_debug.result import int8_change
from toolkit.records import Record

BAR_WIDTH = 320  # px of the longest bar in the per-layer chart
CHART_ROWS = 10


def fallback_findings(records: list[Record], run_info: Mapping[str, Any]) -> list[str]:
    """"baseline on cpu: int8 lost 3.1 pp; 80% of the error comes from `dense_2`; keeping
    `dense_2` in float recovers 2.8 pp at +4% size", one per int8-mixed record, then the targets
    that refused fallback."""
    sentences = [_sentence(record) for record in records if record["precision"] == MIXED and record["fallback"]]
    refused = (run_info.get("float_fallback") or {}).get("refused") or {}
    sentences += [f"no int8-mixed on {target}: {reason}; quantization-aware training (qat) makes int8 "
                  "itself accurate there" for target, reason in refused.items()]
    return sentences


def _sentence(record: Record) -> str:
    fallback = record["fallback"]
    steps, layers = fallback["steps"], fallback["layers"]
    int8, chosen = steps[0], steps[-1]
    lost = (fallback["float_accuracy"] - int8["accuracy"]) * 100
    text = f"{record['variant']} on {record['target']}: {int8_change(lost)}"
    if layers:
        text += f"; {layers[0]['share'] * 100:.0f}% of the error comes from `{layers[0]['name']}`"
    kept = record["float_layers"] or ()
    if not kept:
        return f"{text}; within the {fallback['max_accuracy_drop']:g} pp budget, so no layer is kept float"
    names = ", ".join(f"`{name}`" for name in kept)
    recovered = (chosen["accuracy"] - int8["accuracy"]) * 100
    growth = (chosen["size_bytes"] / int8["size_bytes"] - 1) * 100
    return f"{text}; keeping {names} in float recovers {recovered:.2f} pp at {growth:+.0f}% size"


def per_layer_section(records: list[Record]) -> str:
    """One bar chart per int8 file that was explained: each layer's share of the int8 error."""
    charts = [_chart(record) for record in records if record["precision"] == MIXED and record["fallback"]]
    if not charts:
        return ""
    return ('<section id="per-layer"><h2>Per-layer int8 error</h2><p>Each quantized layer\'s share of the '
            'error int8 adds (its own, not what it inherits), with its SQNR; the layers kept float in '
            'int8-mixed are marked. `edgesmith explain` shows the same table for any model.</p>'
            + "".join(charts) + "</section>")


def _chart(record: Record) -> str:
    fallback = record["fallback"]
    kept = set(record["float_layers"] or ())
    rows = []
    for layer in fallback["layers"][:CHART_ROWS]:
        width = max(1, round(layer["share"] * BAR_WIDTH))
        sqnr = "exact" if layer["sqnr_db"] is None else f"{layer['sqnr_db']:.1f} dB"
        mark = " (kept float)" if layer["name"] in kept else ""
        rows.append(f'<tr><td><code>{escape(layer["name"])}</code>{escape(mark)}</td><td>{escape(layer["op"])}</td>'
                    f'<td><span class="bar" style="display:inline-block;height:10px;width:{width}px;'
                    f'background:{"#3a9a5b" if mark else "#d1495b"}"></span> {layer["share"] * 100:.1f}%</td>'
                    f'<td>{sqnr}</td></tr>')
    title = f"{record['variant']} on {record['target']} ({record['format']}), {fallback['samples']} test samples"
    return (f"<h3>{escape(title)}</h3><table><thead><tr><th>layer</th><th>op</th><th>share of error</th>"
            f"<th>SQNR</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
