"""The PointNet baseline on clouds reconstructed from INRs, through the CLI (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import assert_clean_failure, run_cli


@pytest.fixture(scope="module")
def trained(shared_artifacts) -> tuple[Path, Path, dict]:
    """(inrs, checkpoint, training summary): 3 classes x 6 sdf INRs, one tiny PointNet (cached; read-only)."""

    def build(folder: Path) -> None:
        run_cli("synth", "shapes", "--out", folder / "shapes", "--classes", "3", "--per-class", "6", "--seed", "0", "-q")
        run_cli("fit-inr", folder / "shapes", "--out", folder / "inrs.h5", "--preset", "tiny", "--steps", "60", "-q")
        # 9+3 train items: a 1-per-class validation set is too small to pick an epoch by, so train
        # on all 12 and keep the last epoch (measured test accuracy 0.83-1.0 over seeds 0-2).
        result = run_cli("train", "pointnet", folder / "inrs.h5", "--out", folder / "pn.pt", "--preset", "tiny",
                         "--val-fraction", "0", "--json", "-q")
        (folder / "report.json").write_text(result.stdout)

    folder = shared_artifacts.get("pointnet", {}, build)
    report = json.loads((folder / "report.json").read_text())
    return folder / "inrs.h5", folder / "pn.pt", {**report, **report["details"]}


def test_train_then_classify_points_beats_chance(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    inrs, model, summary = trained
    assert summary["classes"] == ["box", "cylinder", "ellipsoid"] and summary["field"] == "sdf"
    assert summary["train_items"] == 12 and summary["val_items"] == 0  # split 'test' is never trained on
    assert summary["empty_reconstructions"] == []
    assert Path(summary["curves"]).stat().st_size > 0
    out = tmp_path / "pred.h5"
    report = json.loads(run_cli("classify-points", inrs, "--model", model, "--out", out, "--split", "test", "--json").stdout)
    assert report["items"] == 6 and report["evaluated"] == 6
    assert report["accuracy"] > 0.5, report  # chance is 1/3
    assert report["seconds_per_inr"] > 0
    with h5py.File(out, "r") as handle:
        assert handle.attrs["nrtool_kind"] == "predictions"
        assert json.loads(handle.attrs["classes"]) == summary["classes"]
        probabilities = handle["probabilities"][()]
        predicted = handle["predicted"][()]
        np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(predicted, probabilities.argmax(1))
        assert abs(float((predicted == handle["labels"][()]).mean()) - report["accuracy"]) < 1e-9


def test_checkpoint_loads_with_weights_only(trained: tuple[Path, Path, dict]) -> None:
    from nrtool.baselines.pointnet import load_pointnet

    _, model, summary = trained
    data = torch.load(model, map_location="cpu", weights_only=True)
    assert data["format"] == "nrtool-pointnet" and data["classes"] == summary["classes"]
    assert data["config"]["widths"] == [32, 32, 64, 128, 256] and data["config"]["head"] == [128, 64]
    classifier = load_pointnet(model)
    assert not classifier.model.training
    logits = classifier.model(torch.zeros(2, 100, 3))
    assert logits.shape == (2, 3)


def test_points_from_inrs_shapes(trained: tuple[Path, Path, dict]) -> None:
    from nrtool.baselines.pointnet import points_from_inrs

    inrs, _, _ = trained
    points, items = points_from_inrs(inrs, 64, resolution=24, splits=["test"])
    assert points.shape == (6, 64, 3) and points.dtype == np.float32 and len(items) == 6
    assert np.abs(points).max() <= 1.0 + 1e-5 and points.reshape(6, -1).any(axis=1).all()


def test_bad_inputs_fail_in_one_line(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    inrs, model, _ = trained
    out = tmp_path / "pred.h5"
    missing = tmp_path / "nope.pt"
    assert_clean_failure(run_cli("classify-points", inrs, "--model", missing, "--out", out, check=False), str(missing), out)
    # An HDF5 artifact handed over as the model, and a checkpoint handed over as the INRs.
    assert_clean_failure(run_cli("classify-points", inrs, "--model", inrs, "--out", out, check=False), str(inrs), out)
    assert_clean_failure(run_cli("classify-points", model, "--model", model, "--out", out, check=False), str(model), out)
    # Wrong artifact kind: predictions are not INRs.
    pred = tmp_path / "ok.h5"
    run_cli("classify-points", inrs, "--model", model, "--out", pred, "--split", "test", "-q")
    ckpt = tmp_path / "pn2.pt"
    assert_clean_failure(run_cli("train", "pointnet", pred, "--out", ckpt, check=False), str(pred), ckpt)
