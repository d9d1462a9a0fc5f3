"""The draping network (issue 13): `nrtool train skinning`, `nrtool train drape`, `nrtool drape`.

One tiny skinning field and one tiny top draping model are trained once for the session on the
procedural body, the session's procedural garment model (conftest.garment_models) and the
procedural motions, and cached (conftest.drape_models). What the tests check is measured on
held-out poses and shapes: the trained field drapes with lower energy and less body
penetration than the nearest-vertex baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import assert_clean_failure, run_cli


def test_trained_model_beats_the_nearest_vertex_baseline(drape_models: dict[str, Path]) -> None:
    """Held-out poses and shapes: the physics-trained field has lower total energy and lower B2G
    than skinning each vertex like its nearest body vertex."""
    report = json.loads(drape_models["report"].read_text())
    held = report["details"]["held_out"]
    ours, baseline = held["ours"], held["baseline"]
    print(json.dumps(held, indent=1))
    assert ours["energy"] < baseline["energy"], held
    assert ours["b2g"] < baseline["b2g"], held
    assert report["epochs"] == 8 and len(report["history"]) == 8


def test_drape_writes_frames_artifact_and_sheet(drape_models: dict[str, Path], tmp_path: Path) -> None:
    from nrtool.artifacts.drape import read_drape

    out = tmp_path / "walk"
    summary = json.loads(run_cli("drape", "--top", drape_models["z"], "--pose", drape_models["motion"], "--model",
                                 drape_models["top"], "--body-model", drape_models["body"], "--out", out, "--baseline",
                                 "--frames", "0:12", "--device", "cpu", "--json", "--quiet").stdout)
    assert summary["frames"] == 12
    assert set(summary["baseline"]) == set(summary["metrics"]) >= {"b2g_top", "strain_top", "bending_top", "gravity_top"}
    objs = sorted(out.glob("frame_*.obj"))
    assert [p.name for p in objs[:2]] == ["frame_0000.obj", "frame_0001.obj"] and len(objs) == 12
    assert [line for line in objs[0].read_text().splitlines() if line.startswith("o ")] == ["o body", "o top"]
    data = read_drape(out / "drape.h5")
    assert data["garments"]["top"].shape[:2] == (12, summary["garments"]["top"]["vertices"])
    assert data["body_vertices"].shape[0] == 12 and np.all(np.isfinite(data["garments"]["top"]))
    assert (out / "contact_sheet.png").stat().st_size > 10_000
    # The garment moves with the body: it stays within 0.3 m of the posed body in every frame.
    from scipy.spatial import cKDTree

    for t in (0, 11):
        distance, _ = cKDTree(data["body_vertices"][t]).query(data["garments"]["top"][t])
        assert distance.max() < 0.3, distance.max()
    # Gravity's zero is the body's lowest vertex: a top hangs above it, so its energy is positive.
    assert np.all(data["metrics"]["gravity_top"] > 0)


def test_cached_and_uncached_draping_agree(drape_models: dict[str, Path], tmp_path: Path) -> None:
    from nrtool.artifacts.drape import read_drape

    args = ["--top", drape_models["z"], "--pose", drape_models["motion"], "--model", drape_models["top"],
            "--body-model", drape_models["body"], "--frames", "3:7", "--sheet-frames", "0", "--device", "cpu", "--quiet"]
    run_cli("drape", *args, "--out", tmp_path / "cached")
    run_cli("drape", *args, "--out", tmp_path / "plain", "--no-cache")
    cached = read_drape(tmp_path / "cached" / "drape.h5")["garments"]["top"]
    plain = read_drape(tmp_path / "plain" / "drape.h5")["garments"]["top"]
    np.testing.assert_allclose(cached, plain, atol=1e-5)


def test_drape_refuses_wrong_inputs_in_one_line(drape_models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = ["--model", drape_models["top"], "--body-model", drape_models["body"], "--out", out, "--device", "cpu"]
    short = tmp_path / "z16.npy"
    np.save(short, np.zeros(16, dtype=np.float32))
    assert_clean_failure(run_cli("drape", "--top", short, "--pose", drape_models["motion"], *base, check=False),
                         str(short), out)
    bottom_codes = tmp_path / "bottom.h5"
    run_cli("garment", "encode", drape_models["held"] / "bottoms" / "bottom_0000.obj", "--model",
            drape_models["garment_bottom"], "--out", bottom_codes, "--device", "cpu", "--quiet")
    refused = run_cli("drape", "--top", bottom_codes, "--pose", drape_models["motion"], *base, check=False)
    assert_clean_failure(refused, str(bottom_codes), out)
    assert "bottom" in refused.stderr
    not_motion = tmp_path / "shirt.obj"
    not_motion.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    assert_clean_failure(run_cli("drape", "--top", drape_models["z"], "--pose", not_motion, *base, check=False),
                         str(not_motion), out)
    no_bottom_model = run_cli("drape", "--bottom", drape_models["z"], "--pose", drape_models["motion"], *base, check=False)
    assert_clean_failure(no_bottom_model, "bottom draping model", out)
    not_a_model = tmp_path / "model.pt"
    not_a_model.write_text("hello")
    assert_clean_failure(run_cli("drape", "--top", drape_models["z"], "--pose", drape_models["motion"], "--model",
                                 not_a_model, "--out", out, check=False), str(not_a_model), out)


def test_drape_refuses_another_body(drape_models: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other_body.npz"
    run_cli("synth", "body", "--out", other, "--resolution", "0.05")
    out = tmp_path / "out"
    result = run_cli("drape", "--top", drape_models["z"], "--pose", drape_models["motion"], "--model", drape_models["top"],
                     "--body-model", other, "--out", out, "--device", "cpu", check=False)
    assert_clean_failure(result, str(other), out)
    assert "vertices" in result.stderr


def test_train_drape_refuses_a_bad_pose_file_before_any_training(drape_models: dict[str, Path], tmp_path: Path) -> None:
    """A file that is not a motion is refused in one line before the skinning stage (which
    `train drape` would otherwise run first, for a minute, without --skinning)."""
    not_motion = tmp_path / "walk.obj"
    not_motion.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    out = tmp_path / "drape.pt"
    result = run_cli("train", "drape", "--garment-model", drape_models["garment_top"], "--body-model",
                     drape_models["body"], "--poses", "procedural", "--poses", not_motion, "--out", out, "--device",
                     "cpu", check=False)
    assert_clean_failure(result, str(not_motion), out)
    assert not out.with_name("drape.skinning.pt").exists()
