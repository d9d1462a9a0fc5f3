"""``nrtool fit-scan``: a labelled scan and draping models in, a folder with the recovered body and garments out.

The folder (complete or absent, :func:`nrtool.artifacts.core.atomic_folder`): ``body.obj``,
``top.obj`` / ``bottom.obj`` (draped, as fitted), ``*_refined.obj`` after the post-refinement,
``fitted.obj`` (every part, objects ``body``/``top``/``bottom``), ``fit.h5`` (the ``fit``
artifact), ``fit.png`` (the scan over the meshes before and after the fit, front and side) and
``losses.png`` (the loss terms per epoch). An interrupted fit resumes from ``OUT.partial``
(``OUT.refine.partial`` for the post-refinement).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError
from nrtool.progress import Progress, SilentProgress

ARTIFACT_NAME = "fit.h5"
FIGURE_NAME = "fit.png"
CURVES_NAME = "losses.png"
PART_COLOURS = {"body": (0.78, 0.78, 0.78), "top": (0.25, 0.45, 0.85), "bottom": (0.85, 0.45, 0.2)}
POINT_COLOURS = {"body": (0.25, 0.25, 0.25), "top": (0.05, 0.15, 0.45), "bottom": (0.5, 0.15, 0.0)}


def read_init(path: str | os.PathLike[str] | None, body: Any) -> dict[str, np.ndarray]:
    """``--init`` (an ``.npz`` with any of ``betas``, ``pose`` (72,), ``trans`` (3,), e.g. an AMASS
    frame or a detector's estimate); missing values: zero shape, arms-down pose, no translation."""
    from nrtool.drape.fitting import rest_fitting_pose

    init = {"betas": np.zeros(10), "pose": rest_fitting_pose(), "trans": None}
    if path is None:
        return init
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file")
    try:
        with np.load(p, allow_pickle=False) as data:
            found = {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputFileError(p, f"is not an .npz of betas/pose/trans ({exc})") from None
    sizes = {"betas": None, "pose": 72, "trans": 3}
    for key, size in sizes.items():
        if key not in found:
            continue
        value = found[key].reshape(-1) if found[key].ndim <= 1 else found[key][0]
        if size is not None and len(value) != size:
            raise InputFileError(p, f"'{key}' has {len(value)} values, expected {size}")
        if not np.all(np.isfinite(value)):
            raise InputFileError(p, f"'{key}' contains NaN or infinite values")
        if key == "betas":
            padded = np.zeros(10)
            padded[: min(10, len(value))] = value[:10]
            value = padded
        init[key] = value
    if not any(k in found for k in sizes):
        raise InputFileError(p, f"holds none of betas, pose, trans (found: {', '.join(found) or 'nothing'})")
    if not body.has_shape_space:
        init["betas"] = np.zeros(10)
    return init


def build_clothed(models: dict[str, Any], body: Any, skinning: dict[str, Any], settings: Any, device: Any
                  ) -> tuple[Any, dict[str, np.ndarray]]:
    """The chain for the given draping models, and each garment's starting code (the mean of its
    garment network's training codes, as the thesis starts)."""
    from nrtool.drape.fitting import ClothedBody, GarmentChain
    from nrtool.garments.model import training_codes

    chains, codes = {}, {}
    for category in ("top", "bottom"):
        if category not in models:
            continue
        model = models[category]
        resolution = settings.resolution or model.field.config.garment_resolution
        chains[category] = GarmentChain(category, model, skinning[category], resolution, device, drape=settings.drape)
        codes[category] = training_codes(model.checkpoint["garment"]).mean(0)
    solver = models["intersection"].field if "intersection" in models and len(chains) == 2 and settings.drape else None
    return ClothedBody(body, chains, solver), codes


def _parts(state_or_outcome: Any, refined: dict[str, np.ndarray] | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    o = state_or_outcome
    parts = [("body", o.body_vertices, o.body_faces)]
    for category in o.garments:
        vertices = refined[category] if refined is not None and category in refined else o.garments[category]
        parts.append((category, vertices, o.faces[category]))
    return parts


def fit_sheet(rows: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]], points: dict[str, np.ndarray],
              png: str | os.PathLike[str], title: str = "", size: int = 360, max_points: int = 4000) -> None:
    """Rows of meshes (parts coloured) with the observed points over them, front and side views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.body.render import _camera_coords, render_mesh
    from nrtool.figures import save_figure

    every = np.vstack([v for _, parts in rows for _, v, _ in parts] + [p for p in points.values() if len(p)])
    centre = (every.min(0) + every.max(0)) / 2
    half = float(np.max(every.max(0) - every.min(0))) / 2 * 1.05
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(len(rows), 2, figsize=(7, 3.6 * len(rows)), squeeze=False)
    for r, (label, parts) in enumerate(rows):
        offsets = np.cumsum([0] + [len(v) for _, v, _ in parts])
        vertices = np.vstack([v for _, v, _ in parts])
        faces = np.vstack([f + o for (_, _, f), o in zip(parts, offsets)])
        colours = np.vstack([np.tile(PART_COLOURS[name], (len(f), 1)) for name, _, f in parts])
        for c, view in enumerate(("front", "side")):
            ax = axes[r, c]
            image = render_mesh(vertices, faces, view, (size, size), centre, half, face_colours=colours)
            ax.imshow(image, extent=(-1, 1, -1, 1))
            for name, cloud in points.items():
                if len(cloud) == 0:
                    continue
                shown = cloud[rng.choice(len(cloud), min(len(cloud), max_points // max(len(points), 1)), replace=False)]
                cam = _camera_coords(shown, view, centre, half)
                ax.scatter(cam[:, 0], cam[:, 1], s=0.6, c=[POINT_COLOURS[name]], alpha=0.6, linewidths=0)
            ax.set_axis_off()
            ax.set_title(f"{label}, {view}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, png)


def fit_scan_to_folder(
    out: str | os.PathLike[str],
    scan_path: str | os.PathLike[str],
    model_paths: list[str | os.PathLike[str]],
    settings: Any,
    labels: str | None = None,
    body_model: str | os.PathLike[str] | None = None,
    init_path: str | os.PathLike[str] | None = None,
    time_limit: float | None = None,
    restart: bool = False,
    force: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Fit body and garments to a labelled scan (Eq. 2.13), post-refine (Eq. A.3), write the folder."""

    from nrtool.artifacts.core import (
        atomic_folder,
        check_output_folder,
        provenance,
        sha256_file,
    )
    from nrtool.artifacts.fit import write_fit
    from nrtool.device import resolve_device
    from nrtool.drape.fitting import (
        FitParameters,
        ScanObjective,
        final_state,
        initial_translation,
        refine_garments,
        run_fit,
    )
    from nrtool.drape.outputs import load_body_for, load_models
    from nrtool.drape.scan_input import check_scan_parts, load_labelled_scan
    from nrtool.figures import training_curves
    from nrtool.io import save_obj_parts

    progress = progress or SilentProgress()
    settings.validate()
    check_output_folder(out, force)
    scan = load_labelled_scan(scan_path, labels)
    torch_device = resolve_device(device)
    models = load_models(list(model_paths), torch_device)
    categories = [k for k in ("top", "bottom") if k in models]
    check_scan_parts(scan, categories)
    body, body_path, skinning, notes = load_body_for(models, body_model, torch_device)
    notes += scan.notes
    init = read_init(init_path, body)
    points = {part: scan.parts[part] for part in ("body", *categories) if part in scan.parts}
    if init["trans"] is None:
        init["trans"] = initial_translation(body, init["betas"], init["pose"], np.vstack(list(points.values())))
    clothed, codes = build_clothed(models, body, skinning, settings, torch_device)
    params = FitParameters(init["betas"], init["pose"], init["trans"], codes, shape_space=body.has_shape_space)
    params.to(torch_device)
    before = final_state(clothed, params)
    before_parts = [("body", before.body.vertices[0].cpu().numpy(), np.asarray(body.faces))] + [
        (c, v[0].cpu().numpy(), before.faces[c].cpu().numpy()) for c, v in before.garments.items()]
    objective = ScanObjective(points, settings, torch_device)
    inputs = [str(scan_path), *(str(p) for p in model_paths), str(body_path)]
    if labels is not None and Path(labels).is_file():
        inputs.append(str(labels))
    fingerprint = {"settings": settings.to_dict(), "inputs": {p: sha256_file(p) for p in inputs if Path(p).is_file()},
                   "init": {k: np.asarray(v).tolist() for k, v in init.items()}}
    outcome = run_fit(clothed, params, objective, settings, torch_device, Path(out), fingerprint, progress, restart,
                      time_limit, "fitting body and garments")
    runs = [outcome.run]
    summary = {
        "out": str(out), "metrics": outcome.metrics, "betas": outcome.params["betas"].tolist(),
        "trans": outcome.params["trans"].tolist(),
        "garments": {c: {"vertices": int(len(v)), "faces": int(len(outcome.faces[c]))} for c, v in outcome.garments.items()},
        "steps": int(sum(h.get("steps", 0) for h in outcome.history)), "seconds": outcome.seconds,
        "seconds_per_step": outcome.seconds / max(1, sum(h.get("steps", 0) for h in outcome.history)),
        "remeshes": outcome.remeshes, "resumed_from_epoch": outcome.resumed_from_epoch,
        "stopped_by_time_limit": outcome.stopped_by_time_limit, "scan_points": {k: int(len(v)) for k, v in points.items()},
        "notes": notes, "device": str(torch_device), "drape": settings.drape, "refine": None,
    }
    if outcome.stopped_by_time_limit:  # nothing written: OUT.partial stays, the same command continues
        notes.append(f"stopped by --time-limit: {out} is not written; run the same command again to continue")
        return summary
    if settings.refine_steps > 0 and outcome.garments:
        refined, measures, run = refine_garments(outcome, final_state(clothed, params).body, points, settings, torch_device,
                                                 Path(f"{out}.refine"), {**fingerprint, "fit": outcome.metrics},
                                                 progress, restart)
        outcome.refined, outcome.refine_metrics = refined, {k: measures[k] for k in ("before", "after")}
        runs.append(run)
    with atomic_folder(out, force=force) as tmp:
        save_obj_parts(tmp / "body.obj", [("body", outcome.body_vertices, outcome.body_faces)])
        for category in outcome.garments:
            save_obj_parts(tmp / f"{category}.obj", [(category, outcome.garments[category], outcome.faces[category])])
            if outcome.refined is not None:
                save_obj_parts(tmp / f"{category}_refined.obj",
                               [(category, outcome.refined[category], outcome.faces[category])])
        save_obj_parts(tmp / "fitted.obj", _parts(outcome, outcome.refined))
        write_fit(tmp / ARTIFACT_NAME, outcome, {"objective": "scan", "settings": settings.to_dict(), "notes": notes,
                                                  "scan": str(scan_path), "body_model": str(body_path),
                                                  "models": [str(p) for p in model_paths]},
                  provenance(inputs), command)
        rows = [("before", before_parts), ("after the fit", _parts(outcome))]
        if outcome.refined is not None:
            rows.append(("post-refined", _parts(outcome, outcome.refined)))
        fit_sheet(rows, points, tmp / FIGURE_NAME, title=f"{Path(scan_path).name}: " + ", ".join(
            f"{k.removeprefix('chamfer_').removesuffix('_mm')} {v:.1f} mm" for k, v in outcome.metrics.items()))
        training_curves(outcome.history, tmp / CURVES_NAME, title="fit-scan: loss terms per epoch")
    for run in runs:
        run.finish()
    summary["refine"] = outcome.refine_metrics
    return summary
