"""Layered draping (issue 13): a bottom draping model and the intersection solver (thesis Eq. 2.9-2.11).

A tiny bottom draping model and a tiny intersection solver are trained once for the session
(conftest.layer_models, shared with the fitting tests) on the procedural body, the session's garment networks
(conftest.garment_models: 4 training bottoms, and the 4 tops test_drape's top model was
trained on) and the procedural motions, with the top model and skinning field of
conftest.drape_models. Everything asserted is measured on poses never trained on: the
validation poses of the training runs, and a procedural walk of another seed draped with a
held-out top and a held-out bottom through `nrtool drape`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

#: Frames of the held-out walk draped with and without the solver.
WALK_FRAMES = "0:12"




@pytest.fixture(scope="module")
def walk(layer_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The held-out walk draped (held-out top and bottom) without and with the solver: their
    --json summaries (``without``, ``with``) and output folders (``without_dir``, ``with_dir``)."""
    root = tmp_path_factory.mktemp("walk")
    runs: dict[str, object] = {}
    for name, extra in (("without", []), ("with", ["--model", layer_models["solver"]])):
        out = root / name
        result = run_cli("drape", "--top", layer_models["z"], "--bottom", layer_models["zb"], "--pose",
                         layer_models["motion"], "--model", layer_models["top"], "--model", layer_models["bottom"],
                         *extra, "--body-model", layer_models["body"], "--frames", WALK_FRAMES, "--sheet-frames", "0",
                         "--out", out, "--device", "cpu", "--json", "--quiet")
        runs[name], runs[f"{name}_dir"] = json.loads(result.stdout), out
    return runs


def test_bottom_model_beats_the_nearest_vertex_baseline(layer_models: dict[str, Path]) -> None:
    """Held-out poses and shapes: the physics-trained bottom field has a lower total energy than
    skinning each vertex like its nearest body vertex (B2G is printed, not asserted: on these
    coarse bottoms the two are within a few points of each other)."""
    report = json.loads(layer_models["bottom_report"].read_text())
    held = report["details"]["held_out"]
    ours, baseline = held["ours"], held["baseline"]
    print(json.dumps(held, indent=1))
    assert report["details"]["kind"] == "bottom" and report["details"]["garments"] == 4
    assert ours["energy"] < baseline["energy"], held
    assert ours["energy"] < held["skinning"]["energy"], held
    assert report["epochs"] == 8 and len(report["history"]) == 8


def test_solver_lowers_the_layer_energy_and_g2g(layer_models: dict[str, Path], walk: dict[str, object]) -> None:
    """The solver's training lowers the layer energy and G2G on its held-out bodies, and on the
    held-out walk (held-out top and bottom) `nrtool drape` reports a lower G2G with it than
    without it; the top is left as it was."""
    report = json.loads(layer_models["solver_report"].read_text())
    held = report["details"]["held_out"]
    print(json.dumps(held, indent=1))
    print("layer energy per epoch:", [round(h["layer"], 3) for h in report["history"]])
    assert report["details"]["kind"] == "intersection" and report["details"]["pairs"] == 16
    ours, alone = held["ours"], held["without_solver"]
    assert ours["layer"] < alone["layer"], held
    assert ours["g2g"] < alone["g2g"], held
    assert report["history"][-1]["layer"] < report["history"][0]["layer"], report["history"]

    without, with_solver = walk["without"], walk["with"]
    assert (without["intersection_solver"], with_solver["intersection_solver"]) == (False, True)
    print("walk G2G without / with the solver:", without["metrics"]["g2g"], with_solver["metrics"]["g2g"])
    print("walk B2G of the bottom without / with:", without["metrics"]["b2g_bottom"], with_solver["metrics"]["b2g_bottom"])
    assert with_solver["metrics"]["g2g"] < without["metrics"]["g2g"], (without["metrics"], with_solver["metrics"])
    for key in ("b2g_top", "strain_top", "gravity_top"):
        assert with_solver["metrics"][key] == pytest.approx(without["metrics"][key], rel=1e-6), key


def test_waist_pins_hold_with_the_solver(layer_models: dict[str, Path], walk: dict[str, object]) -> None:
    """On the held-out walk, the bottom's pinned waist vertices (draped with the solver) stay
    within 5 cm vertically of where plain skinning (W, Δx; no learnt displacement) puts them,
    and move less than the free vertices on average (under 0.8x); the draping rebuilt here
    is the one `nrtool drape` wrote."""
    import torch

    from nrtool.artifacts.drape import read_drape
    from nrtool.body.amass import load_motion
    from nrtool.body.body_model import BodyModel
    from nrtool.drape.outputs import _select_frames, load_models
    from nrtool.drape.physics import Material, waist_pins
    from nrtool.drape.sequence import SequenceDraper
    from nrtool.drape.skinning import skinning_from_checkpoint
    from nrtool.drape.train import pose_garment, training_templates

    device = torch.device("cpu")
    models = load_models([layer_models["top"], layer_models["bottom"], layer_models["solver"]], device)
    body = BodyModel(layer_models["body"])
    skinning = skinning_from_checkpoint(models["top"].checkpoint["skinning"], models["top"].path, body)
    templates = {category: training_templates(models[category], layer_models[code], 48, device, None)[0][0]
                 for category, code in (("top", "z"), ("bottom", "zb"))}
    motion = load_motion(layer_models["motion"], y_up=True, rest_joints=body.rest_joints())
    rows = _select_frames(motion.num_frames, WALK_FRAMES)
    poses, trans = motion.poses[rows].astype(np.float32), motion.trans[rows].astype(np.float32)
    betas = np.zeros(10, np.float32)  # the motion's own shape, as `nrtool drape` takes it
    betas[: min(10, len(motion.betas))] = motion.betas[:10]
    draper = SequenceDraper(models, templates, skinning, body, betas, Material(), device)
    posed, out = draper.drape(poses, trans)
    written = read_drape(Path(walk["with_dir"]) / "drape.h5")["garments"]["bottom"]
    np.testing.assert_allclose(posed["bottom"].numpy(), written, atol=1e-4)

    entry = draper.entries["bottom"]
    with torch.no_grad():
        skinned, _ = pose_garment(None, entry, skinning, out, torch.as_tensor(poses), draper.betas.expand(len(poses), -1),
                                  shape_dx=entry["shape_dx"][None].expand(len(poses), -1, -1))
    pins = waist_pins(templates["bottom"].vertices, body)
    rise = (posed["bottom"] - skinned)[..., 1].abs()
    pinned, free = rise[:, pins], rise[:, ~pins]
    print(f"{int(pins.sum())} pinned of {len(pins)}: vertical offset mean {float(pinned.mean()):.4f} m, max "
          f"{float(pinned.max()):.4f} m (free vertices: mean {float(free.mean()):.4f} m, max {float(free.max()):.4f} m)")
    assert int(pins.sum()) >= 10
    assert float(pinned.max()) < 0.05
    # The pins are what holds the waistband: the free vertices move more (measured: 1.4 cm
    # against 2.2 cm on average; 1.7 against 7.7 cm before the collision term took the face
    # centroids, when the free cloth sagged further into the body).
    assert float(pinned.mean()) < 0.8 * float(free.mean())


def test_a_top_model_as_bottom_model_is_refused(layer_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "is.pt"
    common = ["--body-model", layer_models["body"], "--poses", "procedural", "--out", out, "--device", "cpu"]
    refused = run_cli("train", "drape", "--top-model", layer_models["top"], "--bottom-model", layer_models["top"],
                      *common, check=False)
    assert_clean_failure(refused, str(layer_models["top"]), out)
    assert "--bottom-model needs a bottom" in refused.stderr
    swapped = run_cli("train", "drape", "--top-model", layer_models["bottom"], "--bottom-model", layer_models["top"],
                      *common, check=False)
    assert_clean_failure(swapped, str(layer_models["bottom"]), out)
