"""`edgesmith device probe`: the facts that decide int8 behaviour, printed and as JSON."""
from __future__ import annotations

import json

from toolkit.cli import main
from toolkit.cpu_features import cpu_features, describe


def test_probe_prints_cpu_features_and_runtimes(capsys):
    assert main(["device", "probe"]) == 0
    text = capsys.readouterr().out
    assert f"cpu        {describe(cpu_features())}" in text
    assert "onnxruntime 1." in text and "ai-edge-litert" in text and "CPUExecutionProvider" in text
    expected = "can saturate here" if cpu_features()["u8s8_saturation"] else "accumulate in 32 bits"
    assert expected in text


def test_probe_json_has_every_fact(capsys):
    assert main(["device", "probe", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["cpu"] == cpu_features()
    assert facts["cores"] >= 1 and facts["runtimes"]["onnxruntime"] and facts["python"].startswith("3.")
