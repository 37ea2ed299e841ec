"""task = "regression": float targets scored by MAE and RMSE, from the data to `select`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.config import Experiment
from toolkit.data import load_dataset
from toolkit.errors import EdgesmithError
from toolkit.records import Record
from toolkit.report.html import build_html
from toolkit.report.tables import csv_text, text_table
from toolkit.selection import select_best
from toolkit.task import mean_predictor_mae, quality_change, score_outputs


def _regression_npz(path: Path, outputs: int = 2, train: int = 2000, test: int = 200) -> Path:
    """8×8 images whose targets are brightness contrasts: the zoo's MLP learns them in 20 epochs."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.random((n, 8, 8, 1)).astype(np.float32)
        y = np.stack([x[:, :4].mean(axis=(1, 2, 3)) - x[:, 4:].mean(axis=(1, 2, 3)),
                      x[:, :, :4].mean(axis=(1, 2, 3))], axis=1)[:, :outputs] * 10
        return x, y.astype(np.float32).reshape(n, -1) if outputs > 1 else y[:, 0].astype(np.float32)

    (x_train, y_train), (x_test, y_test) = split(train), split(test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def test_mae_rmse_and_their_change_against_the_full_model():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    scores = score_outputs(y + np.array([[0.5, -0.5], [1.5, 0.5]]), y, "regression")
    assert scores["mae"] == pytest.approx(0.75)
    assert scores["rmse"] == pytest.approx(np.sqrt((0.25 + 0.25 + 2.25 + 0.25) / 4))
    change = quality_change({"mae": 0.5, "rmse": 1.0}, {"mae": 0.6, "rmse": 0.9}, "regression")
    assert change == {"mae_increase_pct": pytest.approx(20.0), "rmse_increase_pct": pytest.approx(-10.0)}
    assert mean_predictor_mae(np.array([0.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(1.0)


def test_float_targets_load_as_one_column_per_output(tmp_path):
    data = load_dataset("npz", str(_regression_npz(tmp_path / "r.npz")), task="regression")
    assert data.task == "regression" and data.num_classes == 2
    assert data.y_train.dtype == np.float32 and data.y_train.shape == (len(data.x_train), 2)
    single = load_dataset("npz", str(_regression_npz(tmp_path / "one.npz", outputs=1)), task="regression")
    assert single.y_test.shape == (200, 1) and single.num_classes == 1


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(y_test=np.full((200, 2), np.nan, np.float32)), "y_test contains NaN"),
    (lambda a: a.update(y_test=a["y_test"][:, :1]), "y_train has 2 targets per sample but y_test 1"),
    (lambda a: a.update(y_train=np.zeros((2000, 2, 2), np.float32)), "regression targets must be numbers shaped"),
])
def test_bad_regression_targets_are_explained(tmp_path, change, message):
    arrays = dict(np.load(_regression_npz(tmp_path / "r.npz")))
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EdgesmithError, match=message):
        load_dataset("npz", str(tmp_path / "bad.npz"), task="regression")


def test_class_label_datasets_and_accuracy_only_features_refuse_regression(tmp_path):
    with pytest.raises(EdgesmithError, match="dataset 'digits' has class labels") as error:
        load_dataset("digits", task="regression")
    assert "--dataset npz" in error.value.fix
    with pytest.raises(EdgesmithError, match="float_fallback"):
        Experiment(task="regression", float_fallback="auto")
    with pytest.raises(EdgesmithError, match="device_accuracy"):
        Experiment(task="regression", device_accuracy=True)
    with pytest.raises(EdgesmithError, match="unknown task 'regresion'"):
        Experiment(task="regresion")


def _record(variant: str, mae: float, base: float, p50: float, size: int, target: str = "cpu") -> dict:
    change = quality_change({"mae": base, "rmse": base}, {"mae": mae, "rmse": mae}, "regression")
    return {"variant": variant, "target": target, "format": "tflite", "precision": "int8", "path": f"{target}/{variant}__int8.tflite",
            "task": "regression", "mae": mae, "rmse": mae, **change, "sqnr_db": 30.0, "cosine": 0.99,
            "latency_ms": {"p50": p50, "p99": p50 * 2, "repeat95_p50": [p50 * 0.99, p50 * 1.01]},
            "size_bytes": size, "gzip_bytes": size, "latency_measured_on": "this machine"}


def test_select_holds_a_regression_to_its_mae_budget():
    records = [Record.from_dict(r) for r in (_record("baseline", 0.50, 0.50, 1.0, 4000),
                                             _record("prune80", 0.56, 0.50, 0.5, 2000),
                                             _record("prune50", 0.52, 0.50, 0.7, 3000))]
    selection = select_best(records, "cpu", None, max_mae_increase_pct=5.0)
    assert selection.winner["variant"] == "prune50"
    reasons = dict((record["variant"], reason) for record, reason in selection.rejected)
    assert reasons["prune80"] == "MAE +12.00% > budget 5%"
    assert "budget: MAE increase ≤ 5%" in selection.format_text()
    assert "MAE 0.52 (RMSE 0.52) (+4.00%)" in selection.format_text()
    assert selection.to_dict()["budget"]["max_mae_increase_pct"] == 5.0
    assert select_best(records, "cpu", None, max_mae_increase_pct=15.0).winner["variant"] == "prune80"
    with pytest.raises(EdgesmithError, match="regression's results") as error:
        select_best(records, "cpu", 1.0)
    assert "--max-mae-increase" in error.value.fix


def test_tables_and_report_show_mae_for_a_regression():
    records = [Record.from_dict(r) for r in (_record("baseline", 0.5, 0.5, 1.0, 4000), _record("prune80", 0.56, 0.5, 0.5, 2000))]
    header = text_table(records).splitlines()[0].split()
    assert header[4:8] == ["MAE", "MAE", "+%", "RMSE"] and "acc" not in header
    assert csv_text(records).splitlines()[0].startswith("variant,target,format,precision,path,task,mae,rmse,mae_increase_pct")
    page = build_html(records, {"name": "r", "baseline": {"task": "regression", "mae": 0.5, "rmse": 0.5, "params": 10},
                                "best": {}, "targets": ["cpu"], "measured_on": {}})
    assert "Full-model error" in page and "MAE 0.5 (RMSE 0.5)" in page and "MAE (lower is better)" in page
    assert "+12.00%" in page


def edgesmith(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    data = _regression_npz(folder / "r.npz")
    result = edgesmith("run", "--dataset", "npz", "--data", str(data), "--task", "regression", "--model", "mlp",
                       "--epochs", "20", "--finetune-epochs", "1", "--calibration-samples", "64", "--targets", "cpu,onnx-cpu",
                       "--variant", "prune:0.5+qat", "--variant", "distill", "--output", str(folder), "--name", "reg", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "reg", result


@pytest.mark.slow
def test_a_regression_runs_end_to_end_scored_by_mae(regression_run):
    from toolkit.model_files import load_saved

    run_dir, result = regression_run
    records = json.loads((run_dir / "results.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    assert {r["task"] for r in records} == {"regression"} and all(r["accuracy"] is None for r in records)
    assert {r["variant"] for r in records} == {"baseline", "prune50+qat", "distill", "scratch"}
    data = load_dataset("npz", str(run_dir.parent / "r.npz"), task="regression")
    keras_mae = score_outputs(load_saved(run_dir / "baseline" / "model.h5").predict(data.x_test, verbose=0), data.y_test, "regression")
    assert info["baseline"]["mae"] == pytest.approx(keras_mae["mae"], rel=1e-6)
    # The model learned the targets: far better than always answering their mean.
    assert info["baseline"]["mae"] < 0.5 * info["baseline"]["mean_predictor_mae"]
    fp32 = next(r for r in records if (r["variant"], r["target"], r["precision"]) == ("baseline", "cpu", "fp32"))
    assert fp32["mae"] == pytest.approx(keras_mae["mae"], rel=1e-4) and abs(fp32["mae_increase_pct"]) < 0.01
    for record in records:
        assert record["mae_increase_pct"] == pytest.approx((record["mae"] / info["baseline"]["mae"] - 1) * 100, abs=1e-3)
        assert record["agreement"] is None
        assert record["sqnr_db"] is None or record["sqnr_db"] > 0
    steps = info["variants"]["prune50+qat"]["steps"]
    assert [set(step) & {"val_mae", "val_accuracy"} for step in steps] == [{"val_mae"}, {"val_mae"}]
    assert info["budget"] == {"max_mae_increase_pct": 5.0, "max_latency_ms": None, "max_size_kb": None}
    assert "MAE +%" in (run_dir / "report.md").read_text() and "MAE increase ≤ 5%" in result.stdout


@pytest.mark.slow
def test_select_on_a_regression_run_takes_the_mae_budget(regression_run):
    run_dir, _ = regression_run
    chosen = edgesmith("select", str(run_dir), "--target", "cpu", "--max-mae-increase", "1000", "--json", cwd=run_dir)
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["winner"]["task"] == "regression"
    refused = edgesmith("select", str(run_dir), "--target", "cpu", "--max-accuracy-drop", "1", cwd=run_dir)
    assert refused.returncode != 0 and "--max-mae-increase" in refused.stderr and "Traceback" not in refused.stderr
    explained = edgesmith("explain", str(run_dir), "--target", "cpu", cwd=run_dir)
    assert explained.returncode != 0 and "regression run is not supported yet" in explained.stderr


def test_search_refuses_a_regression_before_it_starts(tmp_path):
    from toolkit.search.space import parse_space
    from toolkit.search.study import search

    experiment = Experiment(task="regression", dataset="npz", data=str(_regression_npz(tmp_path / "r.npz")),
                            output=str(tmp_path / "runs"))
    with pytest.raises(EdgesmithError, match="a regression is not supported by search yet"):
        search(experiment, parse_space({"prune": [0.3, 0.9]}), trials=1)
    assert not (tmp_path / "runs").exists()


def test_a_model_whose_outputs_do_not_match_the_targets_is_refused(tmp_path):
    from toolkit import api
    from toolkit._tf import keras

    inputs = keras().layers.Input((8, 8, 1))
    model = keras().Model(inputs, keras().layers.Dense(3)(keras().layers.Flatten()(inputs)))
    model.save(tmp_path / "three.h5")
    arrays = dict(np.load(_regression_npz(tmp_path / "r.npz")))
    with pytest.raises(EdgesmithError, match=r"outputs \(3,\) per sample but the arrays data has 2 targets per sample"):
        api.run({"task": "regression", "model": str(tmp_path / "three.h5"), "output": str(tmp_path / "runs")}, data=arrays)


def _manifest_folder(root: Path, count: int = 60, split: bool = True) -> Path:
    """Grayscale PNGs whose targets are their own mean and spread of brightness, in [0, 1]."""
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "img").mkdir(parents=True)
    rows = ["file,brightness,contrast" + (",split" if split else "")]
    for i in range(count):
        pixels = np.clip(rng.normal(rng.integers(0, 256), 20, (12, 12)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "img" / f"{i:03d}.png")
        rows.append(f"img/{i:03d}.png,{pixels.mean() / 255:.6f},{pixels.std() / 255:.6f}"
                    + ("," + ("test" if i % 5 == 0 else "train") if split else ""))
    (root / "targets.csv").write_text("\n".join(rows) + "\n")
    return root


def test_an_image_folder_lists_its_regression_targets_in_targets_csv(tmp_path):
    from PIL import Image

    data = load_dataset("folder", str(_manifest_folder(tmp_path / "photos")), task="regression", color="grayscale")
    assert data.x_test.shape == (12, 12, 12, 1) and data.y_test.shape == (12, 2) and data.num_classes == 2
    assert data.source["targets"] == ["brightness", "contrast"] and data.source["layout"] == "targets.csv manifest"
    first = np.asarray(Image.open(tmp_path / "photos" / "img" / "000.png"), np.float32)
    assert data.y_test[0] == pytest.approx([first.mean() / 255, first.std() / 255], abs=1e-5)  # row 0 is a test row
    unsplit = load_dataset("folder", str(_manifest_folder(tmp_path / "all", split=False)), task="regression", seed=3)
    assert len(unsplit.x_test) == 12 and unsplit.x_train.shape[-1] == 3  # cut from the seed; rgb by default
    assert data.source["unlisted_images"] == 0
    manifest = tmp_path / "all" / "targets.csv"
    manifest.write_text("\n".join(manifest.read_text().splitlines()[:-2]) + "\n")  # two images left unlisted
    assert load_dataset("folder", str(tmp_path / "all"), task="regression").source["unlisted_images"] == 2


@pytest.mark.parametrize("edit, message", [
    (lambda text: None, "reads its targets from .*targets.csv, which does not exist"),
    (lambda text: text.replace("file,", "image,", 1), "has header"),
    (lambda text: text.replace("img/001.png,", "img/999.png,", 1), "line 3: .*img/999.png does not exist"),
    (lambda text: text.replace(",train\n", ",later\n", 1), "split 'later'"),
    (lambda text: text.replace("img/001.png,", "img/001.png,n/a,", 1), "line 3 has 5 values for 4 columns"),
    (lambda text: text.replace("\n", "\nimg/001.png,bright,0.1,train\n", 1), "line 2: brightness is 'bright', not a finite number"),
    (lambda text: text + "img/./003.png,0.5,0.1,test\n", "line 62 lists img/./003.png again \\(first on line 5\\)"),
])
def test_manifest_mistakes_name_the_line_and_the_fix(tmp_path, edit, message):
    folder = _manifest_folder(tmp_path / "photos")
    manifest = folder / "targets.csv"
    edited = edit(manifest.read_text())
    if edited is None:
        manifest.unlink()
    else:
        manifest.write_text(edited)
    with pytest.raises(EdgesmithError, match=message):
        load_dataset("folder", str(folder), task="regression")


@pytest.mark.slow
def test_an_image_folder_regression_runs_end_to_end(tmp_path):
    folder = _manifest_folder(tmp_path / "photos", count=150)
    result = edgesmith("run", "--dataset", "folder", "--data", str(folder), "--task", "regression", "--model", "mlp",
                       "--color", "grayscale", "--epochs", "5", "--no-variants", "--targets", "cpu", "--precisions", "fp32,int8",
                       "--output", str(tmp_path / "runs"), "--name", "photos", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "photos"
    records = json.loads((run_dir / "results.json").read_text())
    assert [(r["precision"], r["task"]) for r in records] == [("fp32", "regression"), ("int8", "regression")]
    assert "Targets (2, from targets.csv manifest): brightness, contrast." in (run_dir / "report.md").read_text()


def test_a_regression_no_better_than_the_mean_is_questioned_with_its_batchnorm_measurement():
    from toolkit.report.sanity import sanity_findings

    baseline = {"task": "regression", "mae": 1.3, "rmse": 1.7, "mean_predictor_mae": 0.47,
                "batchnorm": {"samples": 200, "batch": 64, "inference_mode_mae": 1.3, "train_mode_mae": 0.19}}
    info = {"baseline": baseline, "model": "mine.keras", "preprocessing": {"spec": "none"}}
    [finding] = sanity_findings([], info)
    assert finding.startswith("the full model's MAE on the test split is 1.3, no better than always predicting the "
                              "training mean (MAE 0.47)")
    assert "MAE on 200 test samples is 1.3 with BatchNorm in inference mode and 0.19 in train mode" in finding
    trained = {**baseline, "mae": 0.2, "batchnorm": {**baseline["batchnorm"], "inference_mode_mae": 0.2}}
    assert sanity_findings([], {**info, "baseline": trained}) == []
    better = Record.from_dict(_record("prune80", 0.15, 0.2, 1.0, 100))
    [beaten] = sanity_findings([better], {**info, "baseline": trained})
    assert beaten.startswith("prune80 (25.0% lower MAE) beats the full model's MAE by more than 10%: treat this as a warning")
