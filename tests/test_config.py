"""Experiment options: TOML loader, did-you-mean for unknown keys, type and range checks."""
from __future__ import annotations

import pytest

from toolkit.config import Experiment, Variant, from_dict, load_experiment
from toolkit.errors import EdgesmithError


def test_defaults_include_compression_variants():
    experiment = Experiment()
    assert experiment.dataset == "digits"
    chains = [variant.chain for variant in experiment.variants]
    assert ("prune:0.8", "qat") in chains and ("distill",) in chains


def test_toml_file_sets_every_kind_of_value(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        'name = "mine"\nmodel = "cnn"\nepochs = 3\nlearning_rate = 0.01\n'
        'targets = ["cpu"]\nprecisions = ["fp32", "int8"]\n'
        'variants = [["prune:0.5", "qat"], {chain = ["distill"], precisions = ["int8"]}]\n'
    )
    experiment = load_experiment(path, overrides={"epochs": 5})
    assert experiment.run_name == "mine" and experiment.model == "cnn"
    assert experiment.epochs == 5, "command-line values override the file"
    assert experiment.targets == ("cpu",) and experiment.precisions == ("fp32", "int8")
    assert experiment.variants == (Variant(("prune:0.5", "qat")), Variant(("distill",), ("int8",)))


def test_learning_rate_int_is_range_checked(tmp_path):
    with pytest.raises(EdgesmithError, match="learning_rate 1.0 is out of range"):
        from_dict({"learning_rate": 1})


def test_unknown_key_gets_did_you_mean():
    with pytest.raises(EdgesmithError, match="unknown key 'epoch'.*did you mean 'epochs'"):
        from_dict({"epoch": 3})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"epochs": "ten"}, "'epochs' must be int"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"targets": [1, 2]}, "'targets' must be a list of strings"),
        ({"dataset": "fasion-mnist"}, "did you mean 'fashion-mnist'"),
        ({"precisions": ["int4"]}, "unknown precisions 'int4'"),
        ({"variants": "qat"}, "'variants' must be a list of chains"),
        ({"variants": [{"steps": ["qat"]}]}, "a variant table needs 'chain'"),
        ({"dataset": "npz"}, "needs a file"),
        ({"opset": 9}, "opset 9 is not supported"),
        ({"bench_target_width": -0.02}, "bench_target_width -0.02 is not a share of p50"),
        ({"bench_target_width": 2}, "is not a share of p50.*or 0 \\(fixed plan"),
        ({"bench_budget_s": 0}, "bench_budget_s must be positive"),
    ],
)
def test_bad_values_are_explained(raw, message):
    with pytest.raises(EdgesmithError, match=message):
        from_dict(raw)


def test_bad_toml_syntax_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("epochs = = 3\n")
    with pytest.raises(EdgesmithError, match="bad.toml is not valid TOML"):
        load_experiment(path)


def test_resolved_config_is_plain_data():
    data = Experiment().to_dict()
    assert data["variants"][0] == {"chain": ["prune:0.8", "qat"], "precisions": ["fp32", "fp16", "dynamic", "int8"]}
