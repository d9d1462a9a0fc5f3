"""``nrtool fit-scan`` (body, pose and garments from a labelled scan) and ``nrtool synth scan``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, garment_app, synth_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    note,
    note_resumed,
    print_json,
    progress,
)
from nrtool.config import override_options
from nrtool.drape.fit_config import FIT_PRESETS, FitSettings

FIT_OPTIONS = ["body_steps", "garment_steps", "steps_per_epoch", "lr", "remesh_every", "resolution", "samples", "pose_weight", "code_weight",
               "beta_weight", "inside_weight", "refine_steps", "refine_lr", "refine_chamfer_weight", "seed"]


#: The clothed body ``synth scan`` and ``synth image`` observe (one set of options for both).
TRUTH_MODELS = typer.Option(..., "--model", "-m", help="Draping checkpoint(s) of the garments to dress (repeatable).")
TRUTH_TOP = typer.Option(None, "--top", help="Top code .npy (default: the top model's first training code).")
TRUTH_BOTTOM = typer.Option(None, "--bottom", help="Bottom code .npy (default: the bottom model's first training code).")
TRUTH_POSE = typer.Option(None, "--pose", "-p", help="Motion .npz (AMASS format) to take the pose and translation from "
                          "(default: arms down at the origin).")
TRUTH_FRAME = typer.Option(0, help="Frame of --pose.")
TRUTH_BETAS = typer.Option(None, "--betas", help="Body shape (repeat: up to 10 values).")
TRUTH_BODY = typer.Option(None, "--body-model", "-b", help="The body model (default: the draping model's).")


def fit_settings(preset: str, steps: Optional[int], no_drape: bool, overrides: dict) -> FitSettings:
    """The preset with ``--steps`` (both stages) and the per-field overrides applied, validated."""
    from nrtool.errors import NrtoolError

    if preset not in FIT_PRESETS:
        raise NrtoolError(f"unknown --preset {preset!r}; choose {', '.join(FIT_PRESETS.names())}")
    if steps is not None:
        overrides = {"body_steps": steps, "garment_steps": steps, **{k: v for k, v in overrides.items() if v is not None}}
    return FIT_PRESETS[preset].with_overrides(drape=False if no_drape else None, **overrides)


def _report(summary: dict, json_out: bool) -> None:
    for line in summary["notes"]:
        note(line)
    note_resumed(summary["resumed_from_epoch"])
    if json_out:
        print_json(summary)
        return
    if OPTIONS.quiet or summary["stopped_by_time_limit"]:
        return
    from nrtool.drape.fit_outputs import metric_text

    text = (f"{summary['out']}: {metric_text(summary['metrics'])} (at the start: {metric_text(summary['initial_metrics'])}); "
            f"{summary['steps']} steps, {summary['seconds_per_step']:.3f} s/step")
    refine = summary.get("refine")
    if refine:
        for category, after in refine["after"].items():
            before = refine["before"][category]
            energy = lambda m: sum(v for k, v in m.items() if k.endswith("_j"))  # noqa: E731
            text += f"; refined {category}: energy {energy(before):.3f} -> {energy(after):.3f} J"
            if "chamfer_mm" in after:
                text += f", Chamfer to the scan {before['chamfer_mm']:.2f} -> {after['chamfer_mm']:.2f} mm"
    print(text)


@app.command("fit-scan")
@override_options(FitSettings, FIT_OPTIONS)
def fit_scan_cmd(
    scan: Path = typer.Argument(..., help="Labelled scan: SCAN.npz (points + labels), a cloud/mesh with --labels, or a folder of body.*, top.*, bottom.* files."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Per-point labels: L.npy or L.txt (0 body, 1 top, 2 bottom, or the names), or `colours` (the file's vertex colours)."),
    model: list[Path] = typer.Option(..., "--model", "-m", help="Draping checkpoint(s) (`nrtool train drape`; each embeds its garment network): one per garment fitted, plus the intersection solver (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: body.obj, top.obj, bottom.obj, fitted.obj, fit.h5, fit.png, losses.png."),
    body_model: Optional[Path] = typer.Option(None, "--body-model", "-b", help="The body model (default: the file the draping model was trained on, if it is still there)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Starting body: an .npz with any of betas, pose (72), trans (3) (default: mean shape, arms down, centred on the scan)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (step counts and samples)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps of each stage (sets --body-steps and --garment-steps)."),
    no_drape: bool = typer.Option(False, "--no-drape", help="Skin the garments without the draping network's displacement (the baseline)."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many seconds (the state stays in OUT.partial; rerun to continue)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    force: bool = FORCE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    overrides: dict = None,  # type: ignore[assignment]  # filled by override_options
) -> None:
    """Recover body shape, pose and garments from a labelled 3D scan (thesis Eq. 2.13), then post-refine
    the garments with the draping energies and the scan (Eq. A.3, --refine-steps).

    The scan is in metres, y up, facing +z, in the body model's frame.

    Example: `nrtool fit-scan scan.npz --model drape-top.pt --body-model body.npz --out fit/`
    """
    check_device(device)
    settings = fit_settings(preset, steps, no_drape, overrides)
    check_outputs(folders=[out])
    from nrtool.drape.fit_outputs import fit_scan_to_folder

    summary = fit_scan_to_folder(out, scan, list(model), settings, labels, body_model, init, time_limit, restart,
                                 force, device, progress(), argv())
    _report(summary, json_out)


@synth_app.command("scan")
def synth_scan_cmd(
    model: list[Path] = TRUTH_MODELS,
    out: Path = typer.Option(..., "--out", "-o", help="Scan .npz to write (points, labels); the truth goes beside it as NAME.truth.npz."),
    top: Optional[Path] = TRUTH_TOP,
    bottom: Optional[Path] = TRUTH_BOTTOM,
    pose: Optional[Path] = TRUTH_POSE,
    frame: int = TRUTH_FRAME,
    betas: Optional[list[float]] = TRUTH_BETAS,
    body_model: Optional[Path] = TRUTH_BODY,
    points: int = typer.Option(20000, help="Points drawn on all surfaces before the cuts."),
    noise: float = typer.Option(0.003, help="Gaussian noise (m)."),
    back_cut: float = typer.Option(0.05, help="Drop points more than this (m) behind the body's centre (the scanner saw the front)."),
    seed: int = typer.Option(0, help="Seed of the samples and the noise."),
    device: str = DEVICE_OPTION,
) -> None:
    """A labelled scan of a clothed body of known shape, pose and garments (the ground truth of `fit-scan`).

    Example: `nrtool synth scan --model drape-top.pt --pose walk.npz --frame 15 --betas 1 --out scan.npz`
    """
    check_device(device)
    check_outputs(files=[out])
    from nrtool.drape.synthetic_scan import write_synthetic_scan

    summary = write_synthetic_scan(out, list(model), top, bottom, pose, frame, betas, body_model, points, noise,
                                   back_cut, seed, device)
    if not OPTIONS.quiet:
        print(f"{out}: " + ", ".join(f"{k} {v} points" for k, v in summary["points"].items()) +
              f"; truth in {summary['truth']}")


@app.command("fit-image")
@override_options(FitSettings, FIT_OPTIONS)
def fit_image_cmd(
    image: Path = typer.Argument(..., help="The photo (any OpenCV-readable image; shown in fit.png, its size is checked)."),
    mask: Path = typer.Option(..., "--mask", help="Part masks, same size as the image: a PNG of labels (0 background, 1 body, 2 top, 3 bottom) or RGB in the part colours on black."),
    camera: Path = typer.Option(..., "--camera", help="Camera JSON: width, height, fx, fy, cx, cy and world_to_camera (4x4, OpenCV axes) or R + t."),
    init: Path = typer.Option(..., "--init", help="Starting body: an .npz of betas, pose (72), trans (3), e.g. a detector's estimate (none ships offline)."),
    model: list[Path] = typer.Option(..., "--model", "-m", help="Draping checkpoint(s), one per garment in the mask (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: body.obj, top.obj, bottom.obj, fitted.obj, fit.h5, fit.png, losses.png."),
    body_model: Optional[Path] = typer.Option(None, "--body-model", "-b", help="The body model (default: the file the draping model was trained on)."),
    render_size: int = typer.Option(64, help="Longer side (pixels) the silhouettes are rendered and compared at (CPU cost grows with its square)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (step counts)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps of each stage (sets --body-steps and --garment-steps)."),
    no_drape: bool = typer.Option(False, "--no-drape", help="Skin the garments without the draping network's displacement (the baseline)."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many seconds (the state stays in OUT.partial; rerun to continue)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    force: bool = FORCE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    overrides: dict = None,  # type: ignore[assignment]  # filled by override_options
) -> None:
    """Recover body shape, pose and garments from an image's part masks (thesis Eq. 2.12): 1 - IoU of
    soft silhouettes rendered by PyTorch3D, then post-refine the garments with the draping energies (Eq. A.2).

    Example: `nrtool fit-image photo.png --mask mask.png --camera camera.json --init init.npz --model drape-top.pt --out fit/`
    """
    check_device(device)
    settings = fit_settings(preset, steps, no_drape, overrides)
    check_outputs(folders=[out])
    from nrtool.drape.fit_outputs import fit_image_to_folder

    summary = fit_image_to_folder(out, image, mask, camera, list(model), settings, init, render_size, body_model,
                                  time_limit, restart, force, device, progress(), argv())
    _report(summary, json_out)


@synth_app.command("image")
def synth_image_cmd(
    model: list[Path] = TRUTH_MODELS,
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write image.png, mask.png, camera.json, init.npz, truth.npz into."),
    top: Optional[Path] = TRUTH_TOP,
    bottom: Optional[Path] = TRUTH_BOTTOM,
    pose: Optional[Path] = TRUTH_POSE,
    frame: int = TRUTH_FRAME,
    betas: Optional[list[float]] = TRUTH_BETAS,
    body_model: Optional[Path] = TRUTH_BODY,
    size: str = typer.Option("240x320", help="Image size WxH."),
    init_noise: float = typer.Option(0.08, help="Gaussian noise (rad) on the joint angles of init.npz (the detector's error)."),
    seed: int = typer.Option(0, help="Seed of the init's noise."),
    device: str = DEVICE_OPTION,
    force: bool = FORCE_OPTION,
) -> None:
    """A clothed body of known shape, pose and garments seen by a camera in front of it: part masks,
    the camera and a disturbed starting body (the ground truth of `fit-image`).

    Example: `nrtool synth image --model drape-top.pt --pose walk.npz --frame 15 --out photo/`
    """
    check_device(device)
    check_outputs(folders=[out])
    from nrtool.cli.common import image_size
    from nrtool.drape.synthetic_scan import write_synthetic_image

    width, height = image_size(size)
    summary = write_synthetic_image(out, list(model), top, bottom, pose, frame, betas, body_model, width, height,
                                    init_noise, seed, force, device)
    if not OPTIONS.quiet:
        print(f"{out}: " + ", ".join(f"{k} {v} pixels" for k, v in summary["pixels"].items()))


@garment_app.command("fit")
def garment_fit_cmd(
    target: Optional[Path] = typer.Argument(None, help="Point cloud to fit (.ply .obj .xyz .pts .npy .npz), in the garment's frame (metres, the canonical body's); or give --mask and --camera."),
    model: Path = typer.Option(..., "--model", "-m", help="Garment checkpoint (`nrtool train garment`), or a draping checkpoint (its garment network)."),
    out: Path = typer.Option(..., "--out", "-o", help="The fitted code (.npy); the decoded garment (.obj) and a figure (.png) go beside it."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="A silhouette to fit instead (any non-zero pixel is garment)."),
    camera: Optional[Path] = typer.Option(None, "--camera", help="Camera JSON of the silhouette (as `fit-image`)."),
    partial: bool = typer.Option(False, "--partial", help="The cloud covers part of the garment: garment points more than --observed-radius from it do not count."),
    observed_radius: float = typer.Option(0.02, help="With --partial: the radius (m)."),
    steps: int = typer.Option(1000, help="Adam steps (the thesis: 1000)."),
    lr: float = typer.Option(0.01, help="Adam learning rate (the thesis: 0.01)."),
    resolution: Optional[int] = typer.Option(None, help="MeshUDF grid cells (default 48)."),
    remesh_every: int = typer.Option(10, help="Re-mesh every this many steps (first-order motion in between)."),
    render_size: int = typer.Option(64, help="Longer side (pixels) the silhouette is compared at."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many seconds (OUT.partial stays; rerun to continue)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Fit one garment code to a sparse or partial point cloud, or to a silhouette (latent optimisation,
    thesis App. A.3.1): the garment network is frozen, the code starts at the training codes' mean.

    Example: `nrtool garment fit cloud.xyz --model top.pt --out z.npy --partial`
    """
    check_device(device)
    check_outputs(files=[out])
    from nrtool.drape.garment_fit import fit_garment_code

    summary = fit_garment_code(model, out, target, mask, camera, steps, lr, observed_radius if partial else None,
                               resolution, remesh_every, render_size=render_size, time_limit=time_limit,
                               restart=restart, device=device, progress=progress())
    note_resumed(summary["resumed_from_epoch"])
    if summary["stopped_by_time_limit"]:
        note(f"stopped by --time-limit: {out} is not written; run the same command again to continue")
        return
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        key = "chamfer_mm" if summary["target"] == "cloud" else "iou"
        unit = " mm Chamfer" if key == "chamfer_mm" else " IoU"
        print(f"{out}: {summary[key + '_start']:.3f} -> {summary[key]:.3f}{unit} after {summary['steps']} steps; "
              f"{summary['obj']}, {summary['figure']}")
