"""``nrtool body pose`` and ``nrtool synth body|poses|garments``: SMPL bodies, AMASS motion, garments."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import body_app, synth_app
from nrtool.cli.common import (
    FORCE_OPTION,
    OPTIONS,
    argv,
    check_outputs,
    note,
    print_json,
    progress,
)


@body_app.command("pose")
def body_pose(
    body_model: Path = typer.Option(..., "--body-model", "-m", help="Your SMPL model (.pkl or .npz, or a folder of SMPL_{GENDER} files), `nrtool synth body`'s .npz, or a rigged-mesh .npz (vertices, faces, weights, joints, parents; no betas)."),
    pose: Path = typer.Option(..., "--pose", "-p", help="AMASS-format motion .npz: poses (T, 72|156|165|66) or (T, 24|52|55|22, 3) axis-angle, optional trans, betas, mocap_framerate; or an .npy of poses."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist or be empty, unless --force)."),
    gender: str = typer.Option("auto", help="auto (the motion file's, when --body-model is a folder) | neutral | male | female."),
    fps: Optional[float] = typer.Option(None, help="Resample to this frame rate (e.g. 30); default: keep the file's."),
    source_fps: Optional[float] = typer.Option(None, help="Frame rate of the file when it does not say (or to override it)."),
    source_up: str = typer.Option("auto", help="Up axis of the motion file: auto (detected from the posed skeleton) | z (AMASS) | y."),
    y_up: bool = typer.Option(True, "--y-up/--keep-z-up", help="Write the bodies Y-up (SMPL's frame), or Z-up as AMASS stores them."),
    separate_arms: float = typer.Option(0.0, help="Rotate the arms this many degrees away from the torso."),
    fmt: str = typer.Option("obj", "--format", help="obj | ply (one mesh per frame) | h5 (one body-sequence artifact)."),
    every: int = typer.Option(1, help="Keep every N-th frame (after resampling)."),
    max_frames: Optional[int] = typer.Option(None, help="At most this many frames."),
    sheet_frames: int = typer.Option(6, help="Frames shown in contact_sheet.png (0: no sheet)."),
    renderer: str = typer.Option("auto", help="auto | matplotlib | pytorch3d (contact sheet rasterizer)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    force: bool = FORCE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Posed body meshes for a motion sequence, and a PNG contact sheet of a few frames.

    The first thing to run on your own SMPL and AMASS files: if the contact sheet shows a
    person moving upright, the model, the poses and the axis conversion all work. The file's
    up axis is detected (AMASS is Z-up, other tools often write Y-up); --source-up forces it,
    and a note warns when the posed body is not upright.

    Example: `nrtool body pose --body-model SMPL_NEUTRAL.pkl --pose walk.npz --out walk/ --fps 30`
    """
    from nrtool.body.sequence import pose_to_folder
    from nrtool.device import resolve_device
    from nrtool.errors import NrtoolError

    if gender not in ("auto", "neutral", "male", "female"):
        raise NrtoolError(f"--gender {gender!r}: choose auto, neutral, male or female")
    summary = pose_to_folder(
        body_model, pose, out, gender=gender, fps=fps, source_fps=source_fps, source_up=source_up.lower(), y_up=y_up,
        arms_degrees=separate_arms, fmt=fmt, every=every, max_frames=max_frames,
        sheet_frames=sheet_frames, renderer=renderer, device=resolve_device(device), force=force,
        progress=progress(), command=argv(),
    )  # fmt: skip
    for line in summary["notes"]:
        note(line)
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        sheet = f", {out / summary['contact_sheet']}" if summary["contact_sheet"] else ""
        print(f"{out}: {summary['frames']} posed frames ({summary['vertices']} vertices, {fmt}){sheet}")


@synth_app.command("body")
def synth_body(
    out: Path = typer.Option(..., "--out", "-o", help="The .npz to write (SMPL model format)."),
    resolution: float = typer.Option(0.02, help="Marching-cubes step in metres: 0.02 ~ 5.9k vertices, 0.03 ~ 2.6k."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """A procedural, watertight humanoid in the SMPL model format (a stand-in for SMPL).

    SMPL's 24 joints and kinematic tree, smooth skinning weights, an exact joint regressor and
    10 hand-made shape directions (height, girth, shoulder width, hip width, leg length, arm
    length, belly, head size, torso length, limb thickness); no pose correctives. It loads
    through the same code as a real SMPL file: use it wherever `--body-model` is asked for.

    Example: `nrtool synth body --out body.npz`
    """
    from nrtool.synth.body import SHAPE_DIRECTIONS, write_body

    check_outputs(files=[out])
    data = write_body(out, resolution)
    summary = {
        "out": str(out),
        "vertices": int(len(data["v_template"])),
        "faces": int(len(data["f"])),
        "joints": 24,
        "betas": len(SHAPE_DIRECTIONS),
        "shape_directions": list(SHAPE_DIRECTIONS),
        "height_m": float(data["v_template"][:, 1].max() - data["v_template"][:, 1].min()),
    }
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        print(f"{out}: procedural SMPL-format body, {summary['vertices']} vertices, {summary['faces']} faces, 24 joints, 10 betas")


@synth_app.command("poses")
def synth_poses(
    out: Path = typer.Option(..., "--out", "-o", help="An .npz (one motion) or a folder (one MOTION.npz per --motion)."),
    motion: Optional[list[str]] = typer.Option(None, "--motion", help="walk | arm_raise | squat | twist (repeatable; default: walk for a file, all for a folder)."),
    seconds: float = typer.Option(2.0, help="Length of each sequence."),
    fps: float = typer.Option(120.0, help="Frame rate written (AMASS: mostly 120)."),
    layout: str = typer.Option("smplh", help="Pose columns: smplh (156, as AMASS) | smplx (165) | smpl (72)."),
    betas_scale: float = typer.Option(0.0, help="Random shape: standard deviation of the first 10 betas (0: mean shape)."),
    seed: int = typer.Option(0, help="Random seed (same seed, same files)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    force: bool = FORCE_OPTION,
) -> None:
    """AMASS-format motion sequences (Z-up, like AMASS) within plausible joint limits.

    Example: `nrtool synth poses --out walk.npz --motion walk --seconds 2`
    """
    from nrtool.errors import NrtoolError
    from nrtool.synth.poses import MOTIONS, write_motion

    motions = list(motion or [])
    for name in motions:
        if name not in MOTIONS:
            raise NrtoolError(f"--motion {name!r}: choose {', '.join(MOTIONS)}")
    written = []

    def write(path: Path, name: str, final: Path) -> None:
        seq = write_motion(path, name, seconds=seconds, fps=fps, seed=seed, layout=layout, betas_scale=betas_scale)
        written.append({"path": str(final), "motion": name, "frames": seq.num_frames, "fps": fps, "layout": layout})

    if out.suffix.lower() == ".npz":
        if len(motions) > 1:
            raise NrtoolError("one --motion per .npz; give a folder as --out for several")
        check_outputs(files=[out])
        write(out, motions[0] if motions else "walk", out)
    else:
        from nrtool.artifacts.core import atomic_folder

        with atomic_folder(out, force=force) as staging:
            for name in motions or list(MOTIONS):
                write(staging / f"{name}.npz", name, out / f"{name}.npz")
    if json_out:
        print_json(written)
    elif not OPTIONS.quiet:
        for item in written:
            print(f"{item['path']}: {item['motion']}, {item['frames']} frames at {fps:g} fps ({layout})")



@synth_app.command("garments")
def synth_garments(
    body: Path = typer.Option(..., "--body", "-b", help="The body the garments are made around: `nrtool synth body`'s .npz or your SMPL model."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: tops/, bottoms/ and garments.json (must not exist or be empty, unless --force)."),
    tops: int = typer.Option(4, help="Number of tops (t-shirt, shirt with front opening, tank top, long sleeves, in turn)."),
    bottoms: int = typer.Option(2, help="Number of bottoms (trousers, shorts, in turn)."),
    seed: int = typer.Option(0, help="Random seed for the attributes (same seed, same files)."),
    resolution: float = typer.Option(0.015, help="Marching-cubes step of the offset surface, metres."),
    fmt: str = typer.Option("obj", "--format", help="obj | ply."),
    gender: str = typer.Option("neutral", help="Which file of a folder of SMPL models (neutral | male | female)."),
    force: bool = FORCE_OPTION,
    preview: bool = typer.Option(True, "--preview/--no-preview", help="Write preview.png: every garment (up to 12) on the body."),
    json_out: bool = typer.Option(False, "--json", help="Print the garment index as JSON."),
) -> None:
    """Open-surface garment meshes around the body in its rest pose, labelled with attributes.

    Each garment is the body's offset surface at its looseness, cut at hem, neckline, sleeves
    (or armholes), front opening, waist and legs; it has boundaries (not watertight) and stays
    outside the body. garments.json lists type, attributes (sleeve_length, hem_length,
    neckline_depth, front_open, leg_length, looseness, ...) and the normalisation that puts tops
    in the upper and bottoms in the lower half of [-1,1]^3.

    Example: `nrtool synth garments --body body.npz --out garments/ --tops 4 --bottoms 2`
    """
    from nrtool.synth.garments import make_garments

    garments = make_garments(
        body, out, tops=tops, bottoms=bottoms, seed=seed, resolution=resolution, fmt=fmt,
        gender=gender, force=force, preview=preview, progress=progress(),
    )  # fmt: skip
    if json_out:
        print_json([
            {"name": g.name, "category": g.category, "type": g.type, "vertices": len(g.vertices),
             "faces": len(g.faces), "attributes": g.attributes, "normalise": g.normalise}
            for g in garments
        ])  # fmt: skip
    elif not OPTIONS.quiet:
        kinds = ", ".join(sorted({g.type for g in garments}))
        print(f"{out}: {tops} tops and {bottoms} bottoms ({kinds}), index in {out / 'garments.json'}")
