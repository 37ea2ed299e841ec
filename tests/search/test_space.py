"""The [search] table: parsing, the errors a user gets, and the chains a trial builds."""
from __future__ import annotations

import sys

import pytest

from toolkit.config import load_experiment
from toolkit.errors import EdgesmithError
from toolkit.passes import chain_id, parse_chain
from toolkit.search.space import SearchSpace, load_search, parse_space

optuna = pytest.importorskip("optuna")

FULL = {"prune": [0.3, 0.9], "cluster": [8, 16], "distill_width": [0.25, 1.0], "qat": [True, False],
        "precision": ["fp16", "dynamic", "int8"], "objectives": ["accuracy", "size"]}


def test_full_table_parses_and_objectives_set_directions():
    space = parse_space(FULL)
    assert space == SearchSpace(prune=(0.3, 0.9), cluster=(8, 16), distill_width=(0.25, 1.0), qat=(True, False),
                                precision=("fp16", "dynamic", "int8"), objectives=("accuracy", "size"))
    assert space.directions == ["maximize", "minimize"]
    assert parse_space({"qat": [True]}).objectives == ("accuracy", "latency")


@pytest.mark.parametrize(("table", "message", "fix"), [
    ({"prnue": [0.3, 0.9]}, "unknown key 'prnue'", "did you mean 'prune'?"),
    ({"objectives": ["accuracy", "latency"]}, "nothing to search", "at least one of"),
    ({"prune": [0.9, 0.3]}, "is not a range", "low first"),
    ({"prune": [0.3, 1.0]}, "is not a range", "prune = [0.3, 0.9]"),
    ({"prune": 0.5}, "must be a range [low, high]", "prune = [0.3, 0.9]"),
    ({"prune": [0.31, 0.34]}, "holds no multiple of 0.05", "widen it"),
    ({"distill_width": [0.0, 1.0]}, "is not a range", "distill_width = [0.25, 1.0]"),
    ({"cluster": [16, "32"]}, "non-empty list of int", "cluster = [8, 16, 32]"),
    ({"cluster": [True]}, "non-empty list of int", "cluster = [8, 16, 32]"),
    ({"cluster": [2]}, "cluster count 2 is out of range", "use 3 to 256"),
    ({"cluster": [8, 8]}, "lists a value twice", "list each choice once"),
    ({"qat": "yes"}, "non-empty list of bool", "qat = [true, false]"),
    ({"precision": ["int9"]}, "unknown value 'int9'", "did you mean 'int8'?"),
    ({"precision": []}, "non-empty list of str", 'precision = ["fp16", "int8"]'),
    ({"qat": [True], "objectives": ["accuracy", "sise"]}, "unknown objective 'sise'", "did you mean 'size'?"),
    ({"qat": [True], "objectives": ["latency", "size"]}, "is not a supported pair", '["accuracy", "latency"]'),
])
def test_mistakes_name_the_problem_and_the_fix(table, message, fix):
    with pytest.raises(EdgesmithError) as caught:
        parse_space(table, "exp.toml")
    assert message in caught.value.problem and caught.value.problem.startswith("exp.toml")
    assert fix in caught.value.fix


def test_a_table_that_is_not_a_table_is_rejected():
    with pytest.raises(EdgesmithError, match="'search' must be a table"):
        parse_space(["prune"])


@pytest.mark.parametrize(("params", "chain", "precision"), [
    ({"distill": False, "prune": False, "cluster": False, "qat": False, "precision": "fp16"}, [], "fp16"),
    ({"distill": True, "distill_width": 0.5, "prune": True, "sparsity": 0.45, "cluster": True, "clusters": 16,
      "qat": True}, ["distill:width=0.5", "prune:0.45", "cluster:16", "qat"], "int8"),
    ({"distill": False, "prune": True, "sparsity": 0.9, "cluster": False, "qat": False, "precision": "dynamic"},
     ["prune:0.9"], "dynamic"),
])
def test_a_trial_builds_a_valid_chain_in_order(params, chain, precision):
    built, chosen = parse_space(FULL).sample(optuna.trial.FixedTrial(params), ("fp32",))
    assert (built, chosen) == (chain, precision)
    parse_chain(built)  # the order the passes require


def test_sampled_values_are_on_the_grid_and_every_switch_is_reached():
    space = parse_space({"prune": [0.32, 0.9], "distill_width": [0.3, 0.62], "cluster": [8, 32]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    ids, precisions = set(), set()
    for _ in range(80):
        trial = study.ask()
        chain, precision = space.sample(trial, ("fp32", "int8"))
        ids.add(chain_id(parse_chain(chain)))
        precisions.add(precision)
        sparsity, width = trial.params.get("sparsity"), trial.params.get("distill_width")
        assert sparsity is None or (0.35 <= sparsity <= 0.9 and round(sparsity * 20, 6).is_integer())
        assert width is None or (0.3 <= width <= 0.6 and round(width * 20, 6).is_integer())
        study.tell(trial, 0.0)
    assert "baseline" in ids and precisions == {"fp32", "int8"}  # the empty chain; the target's precisions
    assert any(i.startswith("distill") and "prune" in i and "cluster" in i for i in ids)


def test_the_experiment_file_serves_search_and_run(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('model = "mlp"\ntargets = ["cpu"]\n\n[search]\nprune = [0.3, 0.8]\nprecision = ["fp32", "int8"]\n')
    experiment, space = load_search(path)
    assert experiment.model == "mlp" and space.prune == (0.3, 0.8) and space.precision == ("fp32", "int8")
    assert load_experiment(path).model == "mlp"  # `edgesmith run` ignores the [search] table
    path.write_text('model = "mlp"\n')
    with pytest.raises(EdgesmithError, match="has no \\[search\\] table"):
        load_search(path)
    path.write_text('modle = "mlp"\n[search]\nqat = [true]\n')
    with pytest.raises(EdgesmithError, match="unknown key 'modle'"):
        load_search(path)


def test_without_optuna_the_error_names_the_extra(monkeypatch):
    from toolkit.search import require_optuna

    monkeypatch.setitem(sys.modules, "optuna", None)  # what `import optuna` meets when it is not installed
    with pytest.raises(EdgesmithError) as caught:
        require_optuna()
    assert 'pip install "edgesmith[search]"' in str(caught.value) and "\n" not in str(caught.value)


def test_several_targets_need_one_named_before_anything_runs(tmp_path):
    from toolkit.config import Experiment
    from toolkit.search.study import search

    experiment = Experiment(targets=("cpu", "gpu"), output=str(tmp_path))
    with pytest.raises(EdgesmithError) as caught:
        search(experiment, parse_space({"qat": [True]}), trials=1)
    assert "a search optimizes one" in caught.value.problem and "--target cpu" in caught.value.fix
    assert not any(tmp_path.iterdir())  # no run folder was made
