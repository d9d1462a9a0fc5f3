"""`nrtool fit-scan`: body, pose and garment recovered from a synthetic labelled scan of known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

#: The truth: the held-out top draped on the shared body, walking (frame 15), with a non-mean shape.
BETAS = ("1.0", "-0.8", "0.6")
FIT = ("--steps", "150", "--device", "cpu", "--json", "--quiet")


@pytest.fixture(scope="module")
def fitted(drape_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One scan, fitted with the draping network (and post-refined) and without it (the baseline)."""
    root = tmp_path_factory.mktemp("fit-scan")
    scan = root / "scan.npz"
    betas = [a for b in BETAS for a in ("--betas", b)]
    run_cli("synth", "scan", "--model", drape_models["top"], "--top", drape_models["z"], "--pose", drape_models["motion"],
            "--frame", "15", *betas, "--body-model", drape_models["body"], "--out", scan, "--device", "cpu", "--quiet")
    common = ["fit-scan", scan, "--model", drape_models["top"], "--body-model", drape_models["body"], *FIT]
    ours = json.loads(run_cli(*common, "--out", root / "ours", "--refine-steps", "100").stdout)
    baseline = json.loads(run_cli(*common, "--out", root / "baseline", "--no-drape").stdout)
    return {"root": root, "scan": scan, "truth": np.load(root / "scan.truth.npz"), "ours": ours, "baseline": baseline}


def _top_to_truth_mm(fit_folder: Path, truth: dict, key: str = "vertices") -> float:
    from nrtool.artifacts.fit import read_fit
    from nrtool.geometry.metrics import chamfer_distance, sample_surface

    top = read_fit(fit_folder / "fit.h5")["garments"]["top"]
    return 1000 * chamfer_distance(sample_surface(top[key], top["faces"], 20_000, 0),
                                   sample_surface(truth["top_vertices"], truth["top_faces"], 20_000, 1))


def test_fit_scan_recovers_garment_shape_and_joints(fitted: dict, drape_models: dict[str, Path]) -> None:
    from nrtool.artifacts.fit import read_fit
    from nrtool.body.body_model import BodyModel

    truth, folder = fitted["truth"], fitted["root"] / "ours"
    for name in ("body.obj", "top.obj", "top_refined.obj", "fitted.obj", "fit.h5", "fit.png", "losses.png"):
        assert (folder / name).is_file(), name
    fit = read_fit(folder / "fit.h5")
    assert fit["attrs"]["nrtool_kind"] == "fit" and set(fit["codes"]) == {"top"}
    assert set(np.unique(fit["history"]["stage"])) == {0.0, 1.0}
    steps = fit["step_losses"]  # the loss of every iteration, both stages
    assert len(steps) == 300 and np.all(np.isfinite(steps)) and steps[-10:].mean() < steps[:10].mean()
    # Garment: Chamfer to the true draped top (not to the noisy, partial scan). Measured 6.4 mm.
    top_error = _top_to_truth_mm(folder, truth)
    assert top_error < 9.0, top_error
    # Joints and the posed body. Measured 4.4 / 4.5 mm.
    joint_error = 1000 * np.linalg.norm(fit["joints"] - truth["joints"], axis=1).mean()
    assert joint_error < 10.0, joint_error
    assert 1000 * np.linalg.norm(fit["body_vertices"] - truth["body_vertices"], axis=1).mean() < 10.0
    # Shape: the rest-pose bodies of the fitted and the true betas (this body's betas are
    # correlated, so single coefficients are not identifiable; the shapes they make are).
    body = BodyModel(drape_models["body"])
    rest = [body.forward(np.zeros((1, 72)), np.asarray(b)[None]).vertices[0].detach().numpy()
            for b in (fit["betas"], truth["betas"])]
    start = body.forward(np.zeros((1, 72))).vertices[0].detach().numpy()
    shape_error = 1000 * np.linalg.norm(rest[0] - rest[1], axis=1).mean()
    assert shape_error < 0.5 * 1000 * np.linalg.norm(start - rest[1], axis=1).mean(), shape_error


def test_fit_scan_beats_fitting_the_undraped_garment(fitted: dict) -> None:
    """The draped fit recovers the body better than skinning alone (joints, measured 4.4 against
    6.1 mm here; 2.7 against 5.4 mm with the shipped models). The garment too (6.4 against 7.4
    mm here, 4.75 against 5.41), but runs vary by ~1 mm and before the code prior it was a tie: the
    draped garment must not be worse by more than a tenth."""
    from nrtool.artifacts.fit import read_fit

    truth = fitted["truth"]
    joints = {name: 1000 * np.linalg.norm(read_fit(fitted["root"] / name / "fit.h5")["joints"] - truth["joints"],
                                          axis=1).mean() for name in ("ours", "baseline")}
    assert joints["ours"] < joints["baseline"], joints
    ours = _top_to_truth_mm(fitted["root"] / "ours", truth)
    baseline = _top_to_truth_mm(fitted["root"] / "baseline", truth)
    assert ours < 1.1 * baseline, (ours, baseline)
    assert fitted["baseline"]["drape"] is False and fitted["ours"]["drape"] is True


def test_post_refinement_lowers_energy_and_scan_chamfer_at_once(fitted: dict) -> None:
    before, after = fitted["ours"]["refine"]["before"]["top"], fitted["ours"]["refine"]["after"]["top"]

    def energy(m: dict) -> float:
        return sum(v for k, v in m.items() if k.endswith("_j"))

    assert energy(after) < energy(before), (before, after)
    assert after["chamfer_mm"] < before["chamfer_mm"], (before, after)


def test_fit_scan_resumes_and_refuses_bad_scans(fitted: dict, drape_models: dict[str, Path], tmp_path: Path) -> None:
    base = ["--model", drape_models["top"], "--body-model", drape_models["body"], "--device", "cpu"]
    out = tmp_path / "fit"
    with np.load(fitted["scan"]) as data:
        points, labels = data["points"], data["labels"]
    # Labels whose count differs from the points'.
    short = tmp_path / "short.npy"
    np.save(short, labels[:-5])
    xyz = tmp_path / "scan.xyz"
    np.savetxt(xyz, points)
    assert_clean_failure(run_cli("fit-scan", xyz, "--labels", short, *base, "--out", out, check=False), "labels for", out)
    # No labels at all for a bare cloud; unknown labels; no top points while a top model is given.
    assert_clean_failure(run_cli("fit-scan", xyz, *base, "--out", out, check=False), "has no labels", out)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full(len(points), 7))
    assert_clean_failure(run_cli("fit-scan", xyz, "--labels", bad, *base, "--out", out, check=False), "unknown part", out)
    no_top = tmp_path / "no_top.npz"
    np.savez(no_top, points=points[labels == 0], labels=labels[labels == 0])
    assert_clean_failure(run_cli("fit-scan", no_top, *base, "--out", out, check=False), "has no top points", out)
    nan = tmp_path / "nan.npz"
    broken = points.copy()
    broken[3] = np.nan
    np.savez(nan, points=broken, labels=labels)
    assert_clean_failure(run_cli("fit-scan", nan, *base, "--out", out, check=False), "NaN", out)
    assert_clean_failure(run_cli("fit-scan", fitted["scan"], *base, "--out", out, "--lr", "-1", check=False), "lr", out)
    # A time limit stops after the first epoch, writes nothing and leaves OUT.partial; the
    # same command then continues from there to the end.
    args = ["fit-scan", fitted["scan"], *base, "--out", out, "--steps", "30", "--steps-per-epoch", "10", "--quiet"]
    run_cli(*args, "--time-limit", "0.01")
    assert not out.exists() and (tmp_path / "fit.partial").is_file()
    resumed = json.loads(run_cli(*args, "--json").stdout)
    assert resumed["resumed_from_epoch"] == 2 and (out / "fit.h5").is_file()
    assert not (tmp_path / "fit.partial").exists()


# ---------------------------------------------------------------- fit-image (Eq. 2.12)


@pytest.fixture(scope="module")
def fitted_image(drape_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Part masks of the same clothed body from a camera in front of it, and a fit from a disturbed start."""
    root = tmp_path_factory.mktemp("fit-image")
    photo = root / "photo"
    betas = [a for b in BETAS for a in ("--betas", b)]
    run_cli("synth", "image", "--model", drape_models["top"], "--top", drape_models["z"], "--pose", drape_models["motion"],
            "--frame", "15", *betas, "--body-model", drape_models["body"], "--out", photo, "--device", "cpu", "--quiet")
    summary = json.loads(run_cli("fit-image", photo / "image.png", "--mask", photo / "mask.png", "--camera",
                                 photo / "camera.json", "--init", photo / "init.npz", "--model", drape_models["top"],
                                 "--body-model", drape_models["body"], "--out", root / "fit", "--body-steps", "40",
                                 "--garment-steps", "60", "--refine-steps", "25", "--device", "cpu", "--json",
                                 "--quiet").stdout)
    return {"root": root, "photo": photo, "summary": summary}


def test_fit_image_raises_the_silhouette_iou(fitted_image: dict) -> None:
    from nrtool.artifacts.fit import read_fit

    summary, folder = fitted_image["summary"], fitted_image["root"] / "fit"
    before, after = summary["initial_metrics"], summary["metrics"]
    # Measured here: person 0.55 -> 0.96, body 0.36 -> 0.89, top 0.56 -> 0.87.
    for key in ("iou_person", "iou_body", "iou_top"):
        assert after[key] > before[key] + 0.1, (key, before, after)
    assert after["iou_person"] > 0.85 and after["iou_top"] > 0.75, after
    fit = read_fit(folder / "fit.h5")
    assert fit["attrs"]["objective"] == "image" and "refined" in fit["garments"]["top"]
    for name in ("body.obj", "top.obj", "fit.png", "losses.png"):
        assert (folder / name).is_file(), name
    refine = summary["refine"]
    energy = [sum(v for k, v in refine[when]["top"].items() if k.endswith("_j")) for when in ("before", "after")]
    # Eq. A.2: the energies alone. Measured on the 2-core VM over garment-steps 50-80 and repeated
    # 2-thread runs: 5.4-10.3 J -> 2.2-3.1 J (before the fitted mesh was welded, one run in three
    # blew up to 15-18,000 J on a MeshUDF needle).
    assert energy[1] < 0.6 * energy[0], refine


def test_refinement_welds_the_needles_that_adam_would_invert() -> None:
    """The post-refinement's rest mesh: an edge ~1e-4 of the median (MeshUDF puts near-duplicate
    vertices where the surface passes by a grid corner) collapses, and its needle faces go. On the
    raw mesh one Adam-sized step (1e-3 on every coordinate) makes the needle's strain explode."""
    import torch

    from nrtool.drape.fitting import group_means, weld_fitted_garment
    from nrtool.drape.physics import ClothRest, Material, strain_energy

    # A 6 x 6 grid (2 cm cells) with vertex 14 split into itself and a copy 2 um away that takes
    # over one of its faces, joined to it by a needle.
    n, cell = 6, 0.02
    grid = np.array([[i * cell, j * cell, 0.0] for j in range(n) for i in range(n)])
    faces = []
    for j in range(n - 1):
        for i in range(n - 1):
            a = j * n + i
            faces += [[a, a + 1, a + n + 1], [a, a + n + 1, a + n]]
    faces = np.array(faces)
    copy = len(grid)
    vertices = np.vstack([grid, grid[14] + [2e-6, 1e-6, 0.0]])
    taker = np.flatnonzero((faces == 14).any(1))[0]
    faces[taker][faces[taker] == 14] = copy
    third = faces[taker][faces[taker] != copy][0]
    faces = np.vstack([faces, [14, copy, third]])
    groups, welded = weld_fitted_garment(vertices, faces)
    assert groups[copy] == groups[14] and len(np.unique(groups)) == n * n
    assert len(welded) == len(faces) - 1 and (np.diff(np.sort(welded, 1), axis=1) > 0).all()  # the needle alone went
    material = Material()
    rng = np.random.default_rng(0)
    step = 1e-3 * np.sign(rng.standard_normal(vertices.shape))
    raw = ClothRest.from_mesh(torch.tensor(vertices), torch.tensor(faces), material)
    raw_strain = float(strain_energy(torch.tensor(vertices + step)[None], raw, material)[0])
    g = torch.as_tensor(groups)
    rest = group_means(torch.tensor(vertices), g)
    merged = ClothRest.from_mesh(rest, torch.as_tensor(welded), material)
    welded_strain = float(strain_energy((rest + group_means(torch.tensor(step), g))[None], merged, material)[0])
    print(f"strain after one step: raw {raw_strain:.3g} J, welded {welded_strain:.3g} J")
    assert welded_strain < 0.1 and raw_strain > 1e6 * welded_strain


def test_fit_image_refuses_bad_inputs(fitted_image: dict, drape_models: dict[str, Path], tmp_path: Path) -> None:
    import cv2

    photo, out = fitted_image["photo"], tmp_path / "fit"
    base = ["--init", photo / "init.npz", "--model", drape_models["top"], "--body-model", drape_models["body"],
            "--out", out, "--device", "cpu"]
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.imread(str(photo / "mask.png"), cv2.IMREAD_UNCHANGED)[::2, ::2])
    assert_clean_failure(run_cli("fit-image", photo / "image.png", "--mask", small, "--camera", photo / "camera.json",
                                 *base, check=False), "the image is", out)
    no_top = tmp_path / "no_top.png"
    labels = cv2.imread(str(photo / "mask.png"), cv2.IMREAD_UNCHANGED)
    labels[labels == 2] = 1
    cv2.imwrite(str(no_top), labels)
    assert_clean_failure(run_cli("fit-image", photo / "image.png", "--mask", no_top, "--camera", photo / "camera.json",
                                 *base, check=False), "no top pixels", out)
    camera = tmp_path / "camera.json"
    camera.write_text('{"width": 240}')
    assert_clean_failure(run_cli("fit-image", photo / "image.png", "--mask", photo / "mask.png", "--camera", camera,
                                 *base, check=False), "not a camera JSON", out)


# ---------------------------------------------------------------- garment-only latent optimisation (App. A.3.1)


def test_garment_fit_moves_the_code_towards_a_sparse_or_partial_cloud(garment_models: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    """500 points of a held-out top (all over it, or its front half only): the fitted code's garment is
    closer to the whole true top than the mean code's, where the fit starts (measured 26.0 -> 22.2 mm
    sparse, 23.8 mm partial at 300 steps; the encoder, which sees the whole dense garment, 17.3 mm)."""
    import torch
    import trimesh

    from nrtool.drape.garment_fit import garment_checkpoint
    from nrtool.garments.model import training_codes
    from nrtool.garments.surface import CodeSurface
    from nrtool.geometry.metrics import chamfer_distance, sample_surface

    truth = trimesh.load(garment_models["held"] / "tops" / "top_0000.obj", process=False)
    truth_points = sample_surface(np.asarray(truth.vertices), np.asarray(truth.faces), 20_000, 1)

    def to_truth(vertices: np.ndarray, faces: np.ndarray) -> float:
        return 1000 * chamfer_distance(sample_surface(vertices, faces, 20_000, 0), truth_points)

    checkpoint = garment_checkpoint(garment_models["top"])
    surface = CodeSurface(checkpoint, garment_models["top"], 48, torch.device("cpu"))
    mean = torch.as_tensor(training_codes(checkpoint).mean(0))
    surface.remesh(mean)
    start = to_truth(surface.vertices(mean).detach().numpy(), surface.faces.numpy())
    rng = np.random.default_rng(0)
    dense = sample_surface(np.asarray(truth.vertices), np.asarray(truth.faces), 20_000, 2)
    front = dense[dense[:, 2] > np.median(dense[:, 2])]
    clouds = {"sparse": dense[rng.choice(len(dense), 500, replace=False)],
              "partial": front[rng.choice(len(front), 500, replace=False)]}
    for name, cloud in clouds.items():
        np.savetxt(tmp_path / f"{name}.xyz", cloud)
        extra = ["--partial"] if name == "partial" else []
        summary = json.loads(run_cli("garment", "fit", tmp_path / f"{name}.xyz", "--model", garment_models["top"],
                                     "--out", tmp_path / f"{name}.npy", "--steps", "200", *extra, "--device", "cpu",
                                     "--json", "--quiet").stdout)
        assert summary["chamfer_mm"] < summary["chamfer_mm_start"], summary  # the loss it optimises
        assert np.load(tmp_path / f"{name}.npy").shape == (1, 32) and (tmp_path / f"{name}.png").is_file()
        fitted = trimesh.load(tmp_path / f"{name}.obj", process=False)
        assert to_truth(np.asarray(fitted.vertices), np.asarray(fitted.faces)) < start, name
    assert_clean_failure(run_cli("garment", "fit", tmp_path / "sparse.xyz", "--mask", tmp_path / "sparse.xyz", "--model",
                                 garment_models["top"], "--out", tmp_path / "x.npy", check=False), "give a target",
                         tmp_path / "x.npy")


def test_garment_fit_to_a_silhouette_raises_its_iou(garment_models: dict[str, Path], tmp_path: Path) -> None:
    import cv2
    import torch
    import trimesh

    from nrtool.drape.image_fit import Camera, SilhouetteRenderer

    truth = trimesh.load(garment_models["held"] / "tops" / "top_0000.obj", process=False)
    vertices, faces = np.asarray(truth.vertices), np.asarray(truth.faces)
    centre = (vertices.min(0) + vertices.max(0)) / 2
    R = np.diag([1.0, -1.0, -1.0])  # in front of the garment, looking along -z
    camera = Camera(np.array([[300.0, 0, 60], [0, 300.0, 60], [0, 0, 1]]), R, -R @ (centre + [0, 0, 2.5]), 120, 120)
    labels = SilhouetteRenderer(camera, torch.device("cpu"), soft=False).label_image(
        [("top", torch.as_tensor(vertices, dtype=torch.float32), torch.as_tensor(faces))])
    cv2.imwrite(str(tmp_path / "mask.png"), (labels > 0).astype(np.uint8) * 255)
    (tmp_path / "camera.json").write_text(json.dumps(camera.to_json()))
    summary = json.loads(run_cli("garment", "fit", "--mask", tmp_path / "mask.png", "--camera", tmp_path / "camera.json",
                                 "--model", garment_models["top"], "--out", tmp_path / "z.npy", "--steps", "100",
                                 "--device", "cpu", "--json", "--quiet").stdout)
    assert summary["iou"] > summary["iou_start"], summary


def test_fit_scan_recovers_a_top_over_a_bottom(layer_models: dict[str, Path], tmp_path: Path) -> None:
    """Both garments and the intersection solver (a third --model): each garment's code is fitted
    to its own labelled points, and each ends within a bound of its true drape.

    The bottom (its garment network trained on 4 bottoms) is the weak part. Before CPU runs were
    deterministic, 6 runs on two fixture builds ended it 6.1-16.0 mm from its truth (once 22.8 in
    CI); on the fixture as now built (2-core VM), seeds 0-3 end it 20.9-22.0 mm away and the joints
    17.1-21.0 mm, from 33.9 mm and 87.3 mm after one step; the top 5.5-6.1 mm, from 19.7 mm."""
    from nrtool.artifacts.fit import read_fit
    from nrtool.geometry.metrics import chamfer_distance, sample_surface

    models = ["--model", layer_models["top"], "--model", layer_models["bottom"], "--model", layer_models["solver"]]
    run_cli("synth", "scan", *models, "--top", layer_models["z"], "--bottom", layer_models["zb"], "--pose",
            layer_models["motion"], "--frame", "15", "--body-model", layer_models["body"], "--out", tmp_path / "scan.npz",
            "--device", "cpu", "--quiet")
    summary = json.loads(run_cli("fit-scan", tmp_path / "scan.npz", *models, "--body-model", layer_models["body"],
                                 "--out", tmp_path / "fit", "--steps", "100", "--device", "cpu", "--json",
                                 "--quiet").stdout)
    assert set(summary["metrics"]) == {"chamfer_body_mm", "chamfer_top_mm", "chamfer_bottom_mm"}
    truth, fit = np.load(tmp_path / "scan.truth.npz"), read_fit(tmp_path / "fit" / "fit.h5")
    assert set(fit["codes"]) == {"top", "bottom"}
    errors = {}
    for category in ("top", "bottom"):
        garment = fit["garments"][category]
        errors[category] = 1000 * chamfer_distance(sample_surface(garment["vertices"], garment["faces"], 20_000, 0),
                                                   sample_surface(truth[f"{category}_vertices"],
                                                                  truth[f"{category}_faces"], 20_000, 1))
    joints = 1000 * np.linalg.norm(fit["joints"] - truth["joints"], axis=1).mean()
    print(f"to the truth: top {errors['top']:.1f} mm, bottom {errors['bottom']:.1f} mm, joints {joints:.1f} mm")
    assert errors["top"] < 10.0 and errors["bottom"] < 26.0, errors
    assert joints < 26.0
