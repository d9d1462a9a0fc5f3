"""NetSpace of several architectures (Eq. 4.3-4.12) (issue 17): its own module, so that pytest-xdist can run it beside the
single-architecture chain of test_netspace.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import run_cli


def test_the_interpolation_loss_pairs_the_boundary_architectures() -> None:
    from nrtool.netspace.train import boundary_mixtures

    # A = 4 (LeNetLike, VanillaCNN, ResNet8, ResNet32): every (first, last) ClassId pair at g = 1/3, 2/3.
    assert boundary_mixtures([0, 3, 1, 0, 2], 4) == [(0, 1, 1 / 3, 1), (0, 1, 2 / 3, 2), (3, 1, 1 / 3, 1),
                                                      (3, 1, 2 / 3, 2)]
    assert boundary_mixtures([0, 1, 1], 3) == []  # no network of the last ClassId in the batch
    assert boundary_mixtures([0, 1], 2) == []  # two architectures: nothing between them


def test_several_architectures_share_one_space(tmp_path: Path) -> None:
    """Multi-architecture NetSpace (Eq. 4.3-4.12) end to end at a size a test affords (3 architectures x
    5 networks, 60 steps): the ClassIds, the teacher, every loss term, decoding into whichever
    architecture the ClassId head says as a plain checkpoint of that size, a line across architectures.
    Its quality at a size that learns (32 networks each, 1,000 steps) is measured in the README."""
    from nrtool.netspace.architectures import load_net

    run_cli("netspace", "zoo", "--out", tmp_path / "zoo.h5", "--architecture", "lenetlike", "--architecture",
            "vanillacnn", "--architecture", "resnet8", "--count", "5", "--val-nets", "1", "--test-nets", "1",
            "--min-epochs", "2", "--max-epochs", "3", "--lr", "1e-3", "--quiet")
    report = json.loads(run_cli("netspace", "train", tmp_path / "zoo.h5", "--out", tmp_path / "ns.pt", "--meta-batch",
                                "6", "--image-batch", "32", "--epochs", "2", "--steps", "30", "--json").stdout)
    print({k: round(v, 3) for k, v in report["best"].items()}, report["notes"])
    assert report["details"]["architectures"] == ["lenetlike", "vanillacnn", "resnet8"]  # ClassIds by size
    assert report["notes"][0].startswith("teacher: ") and report["details"]["teacher"]
    first, second = report["history"]
    for key in ("train_class", "train_kd", "train_interp_class", "train_interp_kd"):
        assert np.isfinite(first[key]) and np.isfinite(second[key])
    assert second["train_loss"] < first["train_loss"]
    assert 0 <= report["best"]["val_class_accuracy"] <= 1 and "val_interpolated_accuracy" in report["best"]
    run_cli("netspace", "encode", tmp_path / "zoo.h5", "--model", tmp_path / "ns.pt", "--split", "test", "--out",
            tmp_path / "test.h5")
    decoded = json.loads(run_cli("netspace", "decode", tmp_path / "test.h5", "--model", tmp_path / "ns.pt", "--out",
                                 tmp_path / "decoded", "--json").stdout)
    sizes = {"lenetlike": 62_006, "vanillacnn": 68_818, "resnet8": 77_706}
    assert len(decoded) == 3
    for item in decoded:
        model, checkpoint = load_net(item["path"])
        assert sum(p.numel() for p in model.parameters()) == sizes[item["architecture"]]
        assert checkpoint["fused"] and 0 <= item["test_accuracy"] <= 1
    line = json.loads(run_cli("netspace", "interpolate", tmp_path / "zoo.h5", "--model", tmp_path / "ns.pt", "--a",
                              "lenetlike-000", "--b", "resnet8-000", "--steps", "5", "--out", tmp_path / "line.png",
                              "--json").stdout)
    assert line["weight_accuracy"] == [] and len(line["architectures"]) == 5
    assert set(line["architectures"]) <= set(sizes)
