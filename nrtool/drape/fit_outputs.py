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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError
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


@dataclass
class Observation:
    """What a fit is compared with, as :func:`fit_to_folder` needs it (built by the scan and image front ends)."""

    kind: str  # "scan" | "image"
    source: str  # the scan or image path (the artifact's attribute, the figure's title)
    inputs: list[str]  # files read: provenance and the resume fingerprint
    objective: Any
    refine_targets: dict[str, np.ndarray]  # scan points per garment for Eq. A.3 (none: Eq. A.2)
    figure: Callable[[list[tuple[str, Any]], Path, str], None]  # (rows of (label, state-like), png, title)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # added to the summary


@dataclass
class FittingSetup:
    """The loaded models, body and starting point shared by the front ends."""

    models: dict[str, Any]
    model_paths: list[str]
    body: Any
    body_path: Path
    skinning: dict[str, Any]
    categories: list[str]
    device: Any
    notes: list[str]


def load_fitting(model_paths: list[str | os.PathLike[str]], body_model: str | os.PathLike[str] | None,
                 device: str) -> FittingSetup:
    from nrtool.device import resolve_device
    from nrtool.drape.outputs import load_body_for, load_models

    torch_device = resolve_device(device)
    models = load_models(list(model_paths), torch_device)
    body, body_path, skinning, notes = load_body_for(models, body_model, torch_device)
    return FittingSetup(models, [str(p) for p in model_paths], body, body_path, skinning,
                        [k for k in ("top", "bottom") if k in models], torch_device, notes)


@dataclass
class StateMeshes:
    """The meshes of a chain state as numpy (what figures and OBJ files take)."""

    body_vertices: np.ndarray
    body_faces: np.ndarray
    garments: dict[str, np.ndarray]
    faces: dict[str, np.ndarray]

    @classmethod
    def of(cls, state: Any) -> StateMeshes:
        return cls(state.body.vertices[0].detach().cpu().numpy(), state.body_faces.cpu().numpy(),
                   {c: v[0].detach().cpu().numpy() for c, v in state.garments.items()},
                   {c: f.cpu().numpy() for c, f in state.faces.items()})


def fit_to_folder(out: str | os.PathLike[str], setup: FittingSetup, observation: Observation, settings: Any,
                  init: dict[str, Any], time_limit: float | None, restart: bool, force: bool,
                  progress: Progress | None, command: list[str] | None) -> dict[str, Any]:
    """Fit (both stages), post-refine, write the folder; return a summary (the front ends' common part)."""
    from nrtool.artifacts.core import atomic_folder, provenance
    from nrtool.artifacts.fit import write_fit
    from nrtool.drape.fitting import (
        FitParameters,
        final_state,
        refine_garments,
        run_fit,
    )
    from nrtool.figures import training_curves
    from nrtool.io import save_obj_parts

    progress = progress or SilentProgress()
    notes = setup.notes + observation.notes
    clothed, codes = build_clothed(setup.models, setup.body, setup.skinning, settings, setup.device)
    params = FitParameters(init["betas"], init["pose"], init["trans"], codes, shape_space=setup.body.has_shape_space)
    params.to(setup.device)
    before_state = final_state(clothed, params)
    before = StateMeshes.of(before_state)
    before_metrics = observation.objective.final_metrics(before_state, torch_generator(settings.seed + 1))
    inputs = provenance([*observation.inputs, *setup.model_paths, str(setup.body_path)])  # hashed once
    fingerprint = {"settings": settings.to_dict(), "inputs": {item["path"]: item["sha256"] for item in inputs},
                   "init": {k: np.asarray(v).tolist() for k, v in init.items()}}
    outcome = run_fit(clothed, params, observation.objective, settings, setup.device, Path(out), fingerprint, progress,
                      restart, time_limit, "fitting body and garments")
    runs = [outcome.run]
    steps = int(sum(h.get("steps", 0) for h in outcome.history))
    summary = {
        "out": str(out), "objective": observation.kind, "metrics": outcome.metrics, "initial_metrics": before_metrics,
        "betas": outcome.params["betas"].tolist(), "trans": outcome.params["trans"].tolist(),
        "garments": {c: {"vertices": int(len(v)), "faces": int(len(outcome.faces[c]))} for c, v in outcome.garments.items()},
        "steps": steps, "seconds": outcome.seconds, "seconds_per_step": outcome.seconds / max(1, steps),
        "remeshes": outcome.remeshes, "resumed_from_epoch": outcome.resumed_from_epoch,
        "stopped_by_time_limit": outcome.stopped_by_time_limit, "notes": notes, "device": str(setup.device),
        "drape": settings.drape, "refine": None, **observation.extra,
    }
    if outcome.stopped_by_time_limit:  # nothing written: OUT.partial stays, the same command continues
        notes.append(f"stopped by --time-limit: {out} is not written; run the same command again to continue")
        return summary
    if settings.refine_steps > 0 and outcome.garments:
        refined, measures, run = refine_garments(outcome, outcome.state.body, observation.refine_targets,
                                                 settings, setup.device, Path(f"{out}.refine"),
                                                 {**fingerprint, "fit": outcome.metrics}, progress, restart)
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
        write_fit(tmp / ARTIFACT_NAME, outcome, {"objective": observation.kind, "settings": settings.to_dict(),
                                                  "notes": notes, "source": observation.source,
                                                  "body_model": str(setup.body_path), "models": setup.model_paths,
                                                  "initial_metrics": before_metrics},
                  inputs, command)
        rows: list[tuple[str, Any]] = [("before", before), ("after the fit", outcome)]
        if outcome.refined is not None:
            rows.append(("post-refined", StateMeshes(outcome.body_vertices, outcome.body_faces, outcome.refined,
                                                     outcome.faces)))
        observation.figure(rows, tmp / FIGURE_NAME, f"{Path(observation.source).name}: " + metric_text(outcome.metrics))
        training_curves(outcome.history, tmp / CURVES_NAME, title=f"fit-{observation.kind}: loss terms per epoch")
    for run in runs:
        run.finish()
    summary["refine"] = outcome.refine_metrics
    return summary


def torch_generator(seed: int) -> Any:
    import torch

    return torch.Generator().manual_seed(seed)


def metric_text(metrics: dict[str, float]) -> str:
    """``body 3.5 mm, top 14.8 mm`` / ``iou top 0.91``: a fit's final metrics in one line."""
    parts = []
    for key, value in metrics.items():
        if key.endswith("_mm"):
            parts.append(f"{key.removeprefix('chamfer_').removesuffix('_mm')} {value:.1f} mm")
        else:
            parts.append(f"{key.replace('_', ' ')} {value:.3f}")
    return ", ".join(parts)


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
    from nrtool.artifacts.core import check_output_folder
    from nrtool.drape.fitting import ScanObjective, initial_translation
    from nrtool.drape.scan_input import check_scan_parts, load_labelled_scan

    settings.validate()
    check_output_folder(out, force)
    scan = load_labelled_scan(scan_path, labels)
    setup = load_fitting(model_paths, body_model, device)
    check_scan_parts(scan, setup.categories)
    init = read_init(init_path, setup.body)
    points = {part: scan.parts[part] for part in ("body", *setup.categories) if part in scan.parts}
    if init["trans"] is None:
        init["trans"] = initial_translation(setup.body, init["betas"], init["pose"], np.vstack(list(points.values())))
    inputs = [str(scan_path)] + ([str(labels)] if labels is not None and Path(labels).is_file() else [])

    def figure(rows: list[tuple[str, Any]], png: Path, title: str) -> None:
        fit_sheet([(label, _parts(meshes)) for label, meshes in rows], points, png, title=title)

    observation = Observation("scan", str(scan_path), inputs, ScanObjective(points, settings, setup.device), points,
                              figure, scan.notes, {"scan_points": {k: int(len(v)) for k, v in points.items()}})
    return fit_to_folder(out, setup, observation, settings, init, time_limit, restart, force, progress, command)


def fit_image_to_folder(
    out: str | os.PathLike[str],
    image_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    camera_path: str | os.PathLike[str],
    model_paths: list[str | os.PathLike[str]],
    settings: Any,
    init_path: str | os.PathLike[str],
    render_size: int = 64,
    body_model: str | os.PathLike[str] | None = None,
    time_limit: float | None = None,
    restart: bool = False,
    force: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Fit body and garments to an image's part masks (Eq. 2.12), post-refine (Eq. A.2), write the folder."""
    from nrtool.artifacts.core import check_output_folder
    from nrtool.drape.image_fit import Camera, ImageObjective, read_part_masks
    from nrtool.io.images import read_image

    settings.validate()
    if render_size < 16:
        raise NrtoolError(f"--render-size must be at least 16, got {render_size}")
    check_output_folder(out, force)
    image = read_image(image_path)
    camera = Camera.from_json(camera_path)
    if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
        raise InputFileError(camera_path, f"is for a {camera.width}x{camera.height} image, {image_path} is "
                             f"{image.shape[1]}x{image.shape[0]}")
    masks = read_part_masks(mask_path, (image.shape[1], image.shape[0]))
    setup = load_fitting(model_paths, body_model, device)
    for category in setup.categories:
        if category not in masks:
            raise InputFileError(mask_path, f"has no {category} pixels (a {category} model was given)")
    if "body" not in masks:
        raise InputFileError(mask_path, "has no body pixels (label 1)")
    init = read_init(init_path, setup.body)
    if init["trans"] is None:
        raise InputFileError(init_path, "has no 'trans': an image does not say how far the person is")
    objective = ImageObjective({p: m for p, m in masks.items() if p in ("body", *setup.categories)}, camera, render_size,
                               setup.device)

    def figure(rows: list[tuple[str, Any]], png: Path, title: str) -> None:
        silhouette_sheet(image, objective, rows, png, title)

    observation = Observation("image", str(image_path), [str(image_path), str(mask_path), str(camera_path), str(init_path)],
                              objective, {}, figure, [], {"render_size": [objective.camera.width, objective.camera.height]})
    return fit_to_folder(out, setup, observation, settings, init, time_limit, restart, force, progress, command)


def silhouette_sheet(image: np.ndarray, objective: Any, rows: list[tuple[str, Any]], png: Path, title: str) -> None:
    """The image, then each row's rendered part labels over the target masks (outlines), with IoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from nrtool.drape.image_fit import MASK_LABELS, hard_iou
    from nrtool.figures import save_figure

    fig, axes = plt.subplots(1, len(rows) + 1, figsize=(3.2 * (len(rows) + 1), 3.6))
    axes[0].imshow(image[..., ::-1])
    axes[0].set_title("image", fontsize=9)
    palette = np.asarray([(0, 0, 0), *PART_COLOURS.values()])
    target = np.zeros(objective.person.shape, dtype=np.int64)
    for part, mask in objective.masks.items():
        target[mask.cpu().numpy() > 0.5] = MASK_LABELS[part]
    for ax, (label, meshes) in zip(axes[1:], rows):
        parts = [("body", meshes.body_vertices, meshes.body_faces)] + [(c, meshes.garments[c], meshes.faces[c])
                                                                        for c in meshes.garments]
        tensors = [(n, torch.as_tensor(np.asarray(v), dtype=torch.float32), torch.as_tensor(np.asarray(f), dtype=torch.int64))
                   for n, v, f in parts]
        rendered = objective.hard.label_image(tensors)
        ax.imshow(palette[rendered])
        for part, value in MASK_LABELS.items():
            if np.any(target == value):
                ax.contour(target == value, levels=[0.5], colors="k", linewidths=0.7)
        ax.set_title(f"{label}: person IoU {hard_iou(rendered > 0, target > 0):.3f}", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    save_figure(fig, png)
