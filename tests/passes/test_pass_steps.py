"""Parsing and validating chain steps: no TensorFlow needed, so these run in milliseconds."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import EdgesmithError
from toolkit.passes import PASSES, chain_id, control_chain, is_qat_chain, parse_chain, parse_step


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_pass_parses_its_example_and_round_trips(name):
    technique = PASSES[name]
    example = technique.params.EXAMPLE.split(" or ")[0].replace("distill", name, 1)
    step = parse_step(example)
    assert step.name == name
    assert parse_step(step.text) == step
    assert parse_step({"pass": name, **dataclasses.asdict(step.params)}).params == step.params
    assert step.id().startswith(name) and "+" not in step.id() and " " not in step.id()


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_pass_has_defaults_and_a_summary(name):
    technique = PASSES[name]
    assert parse_step(name).params == technique.params()
    assert technique.summary


@pytest.mark.parametrize(
    "text, expected_id, fields",
    [
        ("prune:0.8", "prune80", {"sparsity": 0.8, "pattern": None}),
        ("prune", "prune50", {"sparsity": 0.5}),
        ("prune:2:4", "prune2of4", {"pattern": "2:4", "sparsity": None}),
        ("prune2:4", "prune2of4", {"pattern": "2:4"}),
        ("prune:pattern=1:4", "prune1of4", {"pattern": "1:4"}),
        ("cluster:16", "cluster16", {"clusters": 16}),
        ("qat", "qat", {}),
        ("distill", "distill", {"student": None, "width": 0.5}),
        ("distill:student=mlp,width=0.25,temperature=2,alpha=0.5", "distill-mlp-w25-t2-a50", {"temperature": 2.0}),
        ("scratch:cnn", "scratch-cnn", {"student": "cnn"}),
        ("distill:params=0.25", "distill-p25", {"params": 0.25, "width": 0.5}),
    ],
)
def test_step_text_forms(text, expected_id, fields):
    step = parse_step(text)
    assert step.id() == expected_id
    for key, value in fields.items():
        assert getattr(step.params, key) == value


def test_table_form_matches_text_form():
    table = parse_step({"pass": "prune", "sparsity": 0.8})
    assert table.params == parse_step("prune:0.8").params
    assert table.text == "prune:sparsity=0.8" and parse_step(table.text) == table


def test_chain_id_joins_readable_ids():
    assert chain_id(parse_chain(["distill", "prune:0.5", "qat"])) == "distill+prune50+qat"
    assert chain_id(parse_chain(["prune2:4", "cluster:16"])) == "prune2of4+cluster16"
    assert chain_id(()) == "baseline"


@pytest.mark.parametrize(
    "item, message",
    [
        ("prnue:0.8", "did you mean 'prune'?"),
        ("qta", "did you mean 'qat'?"),
        ("prune:1.5", "step 'prune:1.5': prune sparsity 1.5 is out of range — use a fraction like 0.8"),
        ("prune:abc", "step 'prune:abc': sparsity must be a number, got 'abc'"),
        ("prune:3:2", "needs 0 < m < n"),
        ("prune:sparsity=0.5,pattern=2:4", "not both"),
        ("cluster:2", "step 'cluster:2': cluster count 2 is out of range"),
        ("cluster:8.5", "clusters must be a whole number"),
        ("distill:widht=0.3", "unknown setting 'widht' — did you mean 'width'?"),
        ("distill:alpha=2", "alpha 2 is out of range"),
        ("distill:params=1", "params 1 is out of range"),
        ("distill:width=0.3,params=0.25", "width or params, not both"),
        ("qat:8", "too many arguments"),
        ("prune:,", "empty argument"),
        ({"sparsity": 0.8}, "no 'pass' name"),
        ({"pass": "cluster", "clusters": True}, "must be a whole number"),
    ],
)
def test_bad_steps_say_what_and_how(item, message):
    with pytest.raises(EdgesmithError) as error:
        parse_step(item)
    assert message in str(error.value)
    assert error.value.fix


@pytest.mark.parametrize(
    "chain, message",
    [
        (["qat", "prune:0.5"], "step 'qat' must be last"),
        (["prune:0.5", "distill"], "step 'distill' must be first"),
        (["prune:0.5", "scratch"], "step 'scratch' must be first"),
        (["cluster:16", "prune:0.5"], "put prune before cluster"),
        (["prune:0.5", "prune:0.8"], "prune appears twice"),
    ],
)
def test_chain_order_rules(chain, message):
    with pytest.raises(EdgesmithError, match=message):
        parse_chain(chain)


def test_valid_chains_pass_the_rules():
    assert len(parse_chain(["distill", "prune:0.5", "cluster:16", "qat"])) == 4
    assert is_qat_chain(parse_chain(["prune:0.8", "qat"]))
    assert not is_qat_chain(parse_chain(["prune:0.8"])) and not is_qat_chain(())


def test_control_chain_swaps_distill_for_scratch_with_the_same_student():
    steps = parse_chain(["distill:student=mlp,width=0.25", "qat"])
    control = control_chain(steps)
    assert [step.name for step in control] == ["scratch", "qat"]
    assert control[0].params == steps[0].params
    assert chain_id(control) == "scratch-mlp-w25+qat"
    assert parse_step(control[0].text) == control[0]
    assert control_chain(parse_chain(["prune:0.5"])) is None


def test_parsing_does_not_import_tensorflow():
    """Validating an experiment file must stay instant: no TensorFlow until a pass runs."""
    code = (
        "import sys; from toolkit.passes import parse_chain, chain_id; "
        "chain_id(parse_chain(['distill', 'prune:0.5', 'cluster:16', 'qat'])); "
        "assert not [m for m in sys.modules if m.startswith(('tensorflow', 'tf_keras'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
