"""``nrtool train skinning``, ``nrtool train drape`` and ``nrtool drape`` (DrapeNet's draping network)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    note,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.drape.config import (
    PRESETS,
    TRAIN_PRESETS,
    DrapeConfig,
    DrapeTrainSettings,
    skinning_preset,
)

BODY_OPTION_HELP = ("Body model: your SMPL .pkl/.npz (or a folder of SMPL_{GENDER} files), `nrtool synth body`'s "
                    ".npz, or a rigged-mesh .npz.")
JSON_OPTION = typer.Option(False, "--json", help="Print a JSON summary.")
#: ``--poses procedural``: the built-in motions (``nrtool.synth.poses.procedural_training_poses``).
PROCEDURAL = "procedural"
def _skinning_path(out: Path, skinning: Optional[Path]) -> Path:
    return skinning if skinning is not None else out.with_name(out.stem + ".skinning.pt")


def _check_drape_inputs(garment_model: Optional[Path], top_model: Optional[Path], bottom_model: Optional[Path],
                        bottom_codes: Optional[Path], skinning: Optional[Path]) -> bool:
    """Which `train drape` this is, refusing incomplete or mixed forms in one line (before torch
    is imported): True for the intersection solver (--top-model and --bottom-model), False for a
    garment category's draping model (--garment-model)."""
    from nrtool.errors import NrtoolError

    if top_model is not None or bottom_model is not None:
        if garment_model is not None:
            raise NrtoolError("--garment-model trains a top or bottom draping model, --top-model/--bottom-model the "
                              "intersection solver: give one form, not both")
        if top_model is None or bottom_model is None:
            given, missing = ("--top-model", "--bottom-model") if bottom_model is None else ("--bottom-model", "--top-model")
            raise NrtoolError(f"{given} needs {missing} too: the intersection solver is trained for a pair of draping models")
        if skinning is not None:
            raise NrtoolError("--skinning is not used with --top-model/--bottom-model (the draping models embed theirs)")
        return True
    if garment_model is None:
        raise NrtoolError("pass --garment-model (a garment checkpoint), or --top-model and --bottom-model to train "
                          "the intersection solver")
    if bottom_codes is not None:
        raise NrtoolError("--bottom-codes goes with --top-model/--bottom-model (give a bottom model's codes as --codes)")
    return False


@train_app.command("skinning")
def train_skinning_cmd(
    body_model: Path = typer.Option(..., "--body-model", "-b", help=BODY_OPTION_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Skinning checkpoint to write (curves: the same name .png)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper."),
    epochs: Optional[int] = typer.Option(None, help="Override the preset's epochs."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many seconds of this run (validating once more)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Train the skinning stage of a body model: W(x) (blend weights) and Δx(x, β) (shape
    displacements) of the space around the body, from the body's own weights and shape space.

    Trained once per body; every draping model of that body shares it (`train drape` runs it
    when it finds none).

    Example: `nrtool train skinning --body-model SMPL_NEUTRAL.pkl --out smpl.skinning.pt --preset small`
    """
    settings = skinning_preset(preset, epochs=epochs, time_limit=time_limit)
    check_device(device)
    check_outputs(files=[out])
    from nrtool.drape.skinning import train_skinning

    report = train_skinning(body_model, out, settings, device=device, progress=progress(), restart=restart)
    best = report.best
    print_training(report, json_out, "held-out: body vertices skinned within {:.1f} mm, points near the body {:.1f} mm, "
                   "shape displacement {:.1f} mm, weights L1 {:.3f}".format(
                       best.get("val_vertex_mm", float("nan")), best.get("val_skin_mm", float("nan")),
                       best.get("val_shape_mm", float("nan")), best.get("val_weights_l1", float("nan"))))


@train_app.command("drape")
@override_options(DrapeConfig, ["batch", "lr", "beta_range", "garment_resolution", "layer_weight"], into="network")
@override_options(DrapeTrainSettings, ["epochs", "steps_per_epoch", "val_every", "val_poses", "time_limit", "seed"])
def train_drape_cmd(
    garment_model: Optional[Path] = typer.Option(None, "--garment-model", "-g", help="Garment checkpoint (`nrtool train garment`): its category is the draping model's (not with --top-model/--bottom-model)."),
    codes: Optional[Path] = typer.Option(None, "--codes", help="garment-codes artifact (or .npy) of the garments to train on; default: the garment model's training codes. With --top-model: the tops (default: the top model's training garments)."),
    top_model: Optional[Path] = typer.Option(None, "--top-model", help="Top draping checkpoint: with --bottom-model, train the intersection solver for a bottom worn under a top (both stay frozen)."),
    bottom_model: Optional[Path] = typer.Option(None, "--bottom-model", help="Bottom draping checkpoint (with --top-model; trained on the same body)."),
    bottom_codes: Optional[Path] = typer.Option(None, "--bottom-codes", help="With --bottom-model: garment-codes (or .npy) of the bottoms (default: the bottom model's training garments)."),
    body_model: Path = typer.Option(..., "--body-model", "-b", help=BODY_OPTION_HELP),
    poses: list[str] = typer.Option(..., "--poses", "-p", help=f"AMASS-format motion files or folders (repeatable), or `{PROCEDURAL}` for the built-in motions."),
    out: Path = typer.Option(..., "--out", "-o", help="Draping checkpoint to write (curves: the same name .png)."),
    skinning: Optional[Path] = typer.Option(None, "--skinning", help="Skinning checkpoint of this body (`nrtool train skinning`); trained first when missing. Default: OUT's name with .skinning.pt."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: 250k iterations of batch 18, Adam 1e-3)."),
    fps: float = typer.Option(30.0, help="Resample motion files to this frame rate."),
    separate_arms: float = typer.Option(0.0, help="Rotate the arms this many degrees away from the torso in the training poses."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = JSON_OPTION,
    overrides: dict = None,
    network: dict = None,
) -> None:
    """Train a draping network by physics alone (strain, bending, gravity, collision; waist pins
    for bottoms): no simulation data, only garment codes, a body model and poses.

    Shapes are drawn from U[-r, r]^10 each step; held-out poses (--val-poses, never trained on)
    with random shapes choose the kept epoch (lowest mean energy) and are reported beside the
    plain skinning and the nearest-vertex baseline. An interrupted run resumes (OUT.partial).

    With --top-model and --bottom-model instead of --garment-model it trains the intersection
    solver (Eq. 2.9-2.11): a correction of the bottom, read from both garments' codes, trained
    by the bottom's energies plus the layer energy (the bottom closer to the body than the top
    where both cover it), every top paired with every bottom; both models stay frozen.

    Example: `nrtool train drape --garment-model top.pt --body-model body.npz --poses procedural --out drape-top.pt`

    Example: `nrtool train drape --top-model drape-top.pt --bottom-model drape-bottom.pt --body-model body.npz --poses procedural --out drape-is.pt`
    """
    config = PRESETS(preset, **network)
    settings = TRAIN_PRESETS[preset].with_overrides(**overrides)
    check_device(device)
    layered = _check_drape_inputs(garment_model, top_model, bottom_model, bottom_codes, skinning)
    skin = _skinning_path(out, skinning)
    check_outputs(files=[out] + ([] if layered or skin.is_file() else [skin]))
    from nrtool.drape.poses import TrainingPoses
    from nrtool.drape.train import train_drape, train_intersection

    files = tuple(p for p in poses if p != PROCEDURAL)
    if PROCEDURAL in poses:
        from nrtool.synth.poses import procedural_training_poses

        generated, names = procedural_training_poses()
        pose_set = TrainingPoses(files, fps, separate_arms, generated, tuple(names))
    else:
        pose_set = TrainingPoses(files, fps, separate_arms)
    pose_set.check()
    if layered:
        report = train_intersection(top_model, bottom_model, body_model, pose_set, out, config, settings,
                                    device=device, progress=progress(), restart=restart, top_codes=codes,
                                    bottom_codes=bottom_codes)
        held = report.details["held_out"]
        ours, alone = held["ours"], held["without_solver"]
        print_training(report, json_out,
                       f"intersection solver on {report.details['pairs']} top/bottom pair(s); held-out G2G "
                       f"{100 * ours.get('g2g', float('nan')):.2f} % (without it {100 * alone['g2g']:.2f} %), "
                       f"layer energy {ours.get('layer', float('nan')):.4f} (without it {alone['layer']:.4f})")
        return
    if not skin.is_file():
        from nrtool.drape.skinning import train_skinning

        note(f"training the skinning stage of {body_model.name} first ({skin})")
        skin_report = train_skinning(body_model, skin, skinning_preset(preset), device=device, progress=progress())
        note(f"{skin}: {skin_report.ending()}")
    report = train_drape(garment_model, codes, body_model, skin, pose_set, out, config, settings,
                         device=device, progress=progress(), restart=restart)
    held = report.details["held_out"]
    ours, base = held["ours"], held["baseline"]
    print_training(report, json_out,
                   f"{report.details['kind']} on {report.details['garments']} garments; held-out energy "
                   f"{ours.get('energy', float('nan')):.3f} J (nearest-vertex baseline {base['energy']:.3f}), "
                   f"B2G {100 * ours.get('b2g', float('nan')):.2f} % (baseline {100 * base['b2g']:.2f} %)")


@app.command("drape")
def drape_cmd(
    top: Optional[str] = typer.Option(None, "--top", help="Top garment: a code .npy (`garment encode --npy`), CODES.h5:NAME, or a garment mesh (encoded on the fly)."),
    bottom: Optional[str] = typer.Option(None, "--bottom", help="Bottom garment, as --top."),
    pose: Path = typer.Option(..., "--pose", "-p", help="AMASS-format motion .npz (or an .npy of poses)."),
    model: list[Path] = typer.Option(..., "--model", "-m", help="Draping checkpoint(s) from `nrtool train drape`: one per category draped (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: frame_NNNN.obj, drape.h5, contact_sheet.png."),
    body_model: Optional[Path] = typer.Option(None, "--body-model", "-b", help="The body model (default: the file the model was trained on, if it is still there)."),
    betas: Optional[list[float]] = typer.Option(None, "--betas", help="Body shape (repeat: up to 10 values; default: the motion file's betas)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="A:B, the frames to drape (Python slice of the motion, after --fps)."),
    fps: Optional[float] = typer.Option(None, help="Resample the motion to this frame rate first."),
    source_up: str = typer.Option("auto", help="Up axis of the motion file: auto | z (AMASS) | y."),
    separate_arms: float = typer.Option(0.0, help="Rotate the arms this many degrees away from the torso."),
    resolution: Optional[int] = typer.Option(None, help="MeshUDF grid cells for decoding the garments (default: the model's training resolution)."),
    baseline: bool = typer.Option(False, "--baseline", help="Also drape by the nearest-vertex baseline and report its metrics beside ours."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute M(x, z) every frame (for benchmarking the per-sequence cache)."),
    video: Optional[Path] = typer.Option(None, "--video", help="Also render an .mp4 of the draped frames (front view)."),
    sheet_frames: int = typer.Option(6, help="Frames shown in contact_sheet.png (0: none)."),
    device: str = DEVICE_OPTION,
    force: bool = FORCE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Drape garments on a moving body: codes and a motion in, the garments worn frame by frame out.

    Per frame it reports B2G (garment area inside the body), G2G (bottom area outside the top)
    and the strain, bending and gravity energies; --baseline adds the nearest-vertex baseline's.

    Example: `nrtool drape --top z.npy --pose walk.npz --model drape-top.pt --body-model body.npz --out walk/`
    """
    check_device(device)
    if sheet_frames < 0:
        from nrtool.errors import NrtoolError

        raise NrtoolError(f"--sheet-frames must be 0 or more, got {sheet_frames}")
    check_outputs(files=[video], folders=[out])
    from nrtool.drape.outputs import drape_to_folder

    summary = drape_to_folder(out, list(model), pose, top, bottom, body_model, betas, frames, fps, source_up.lower(),
                              separate_arms, resolution, baseline, not no_cache, video, sheet_frames, force, device,
                              progress(), argv())
    for line in summary["notes"]:
        note(line)
    if json_out:
        print_json(summary)
        return
    if OPTIONS.quiet:
        return
    m, b = summary["metrics"], summary["baseline"]
    parts = []
    for category in summary["garments"]:
        text = f"{category} B2G {100 * m[f'b2g_{category}']:.2f} %"
        if b is not None:
            text += f" (baseline {100 * b[f'b2g_{category}']:.2f} %)"
        parts.append(text)
    if "g2g" in m:
        parts.append(f"G2G {100 * m['g2g']:.2f} %" + (f" (baseline {100 * b['g2g']:.2f} %)" if b is not None else ""))
    print(f"{out}: {summary['frames']} frames, {summary['ms_per_frame']:.1f} ms/frame; " + ", ".join(parts))
