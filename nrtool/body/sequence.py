"""Pose a body model with a motion file and write the result: meshes per frame or one artifact,
plus a contact sheet (``nrtool body pose``).

The output folder appears complete or not at all: everything is written into a hidden temporary
folder beside it, which is renamed onto the final name at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.artifacts.core import atomic_folder, check_output_folder
from nrtool.body.amass import (
    SOURCE_UP_AXES,
    prepare_motion,
    read_amass,
    resolve_up_axis,
    upright_warning,
)
from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress

__all__ = ["FORMATS", "atomic_folder", "check_output_folder", "pick_frames", "pose_to_folder"]

FORMATS = ("obj", "ply", "h5")
SHEET_NAME = "contact_sheet.png"
SEQUENCE_NAME = "body_sequence.h5"


def pick_frames(count: int, wanted: int) -> list[int]:
    """Up to ``wanted`` frame indices spread evenly over ``count`` frames, first and last included."""
    if count <= 0 or wanted <= 0:
        return []
    if wanted >= count:
        return list(range(count))
    return sorted({int(round(x)) for x in np.linspace(0, count - 1, wanted)})


def pose_to_folder(
    body_model: str | os.PathLike[str],
    pose_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    gender: str = "auto",
    fps: float | None = None,
    source_fps: float | None = None,
    source_up: str = "auto",
    y_up: bool = True,
    arms_degrees: float = 0.0,
    fmt: str = "obj",
    every: int = 1,
    max_frames: int | None = None,
    sheet_frames: int = 6,
    renderer: str = "auto",
    device: Any = "cpu",
    force: bool = False,
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Pose ``body_model`` with the AMASS file ``pose_file``; write meshes/artifact + contact sheet.

    ``gender="auto"`` takes the motion file's gender when ``body_model`` is a folder of
    per-gender files (a single file is used as it is). ``source_up`` is the file's up axis
    (``auto``: detected from the posed skeleton, see :func:`~nrtool.body.amass.detect_up_axis`);
    the bodies are written Y-up (``y_up``) or Z-up. Frames are resampled to ``fps`` (if given),
    then every ``every``-th frame is kept, at most ``max_frames``. A rigged-mesh body keeps its
    own shape (the motion's betas are dropped, with a note). Returns a summary whose ``notes``
    say what was assumed, including a warning when the posed body is not upright.
    """
    from nrtool.body.body_model import BodyModel
    from nrtool.body.render import contact_sheet

    progress = progress or SilentProgress()
    if fmt not in FORMATS:
        raise NrtoolError(f"unknown --format {fmt!r}; choose {', '.join(FORMATS)}")
    if every < 1 or (max_frames is not None and max_frames < 1) or sheet_frames < 0:
        raise NrtoolError("--every and --max-frames must be at least 1, --sheet-frames at least 0")
    if source_up not in SOURCE_UP_AXES:
        raise NrtoolError(f"--source-up {source_up!r}: choose {', '.join(SOURCE_UP_AXES)}")
    check_output_folder(out, force)
    raw = read_amass(pose_file, source_fps=source_fps)  # validate before loading the model
    if fps is not None and raw.fps is None:
        raise InputFileError(pose_file, "no mocap_framerate (or mocap_frame_rate) to resample from; pass the source fps")
    model_gender = raw.gender if gender == "auto" else gender
    model = BodyModel(body_model, gender=model_gender, device=device)
    betas = raw.betas[: model.num_betas]
    rest_joints = model.rest_joints(betas)
    located = resolve_up_axis(raw, source_up, rest_joints, model.parents)  # the file's own up axis
    file_up = located.up_axis
    seq = prepare_motion(located, fps, file_up, y_up, arms_degrees, rest_joints, model.parents)
    index = np.arange(seq.num_frames)[::every]
    if max_frames is not None:
        index = index[:max_frames]
    poses, trans = seq.poses[index], seq.trans[index]
    notes = [*model.notes, *seq.notes]
    if not model.has_shape_space and np.any(raw.betas != 0):
        notes.append(f"the motion's betas are ignored: {model.path.name} is a rigged mesh without a shape space (it keeps its own shape)")
    with progress.task("posing", total=len(index), unit="frames") as advance:
        posed = model.pose_sequence(poses, betas, trans, advance=advance)
    warning = upright_warning(posed["joints"], seq.up_axis) if len(index) else None
    if warning:
        notes.append(warning)
    times = index / seq.fps if seq.fps else np.full(len(index), np.nan)
    out = Path(out)
    with atomic_folder(out, force=force) as tmp:
        files: list[str] = []
        if fmt == "h5":
            from nrtool.artifacts.body_sequence import write_body_sequence

            arrays = {
                **posed,
                "faces": model.faces,
                "poses": poses,
                "trans": trans,
                "betas": betas,
                "frame_index": index,
                "time": times,
            }
            attrs = {
                "fps": float(seq.fps / every) if seq.fps else float("nan"),
                "gender": model_gender,
                "up_axis": seq.up_axis,
                "source_up_axis": file_up,
                "source_layout": seq.source_layout,
                "body_model": str(model.path),
                "body_kind": model.kind,
                "motion": str(pose_file),
                "separate_arms_degrees": float(arms_degrees),
                "notes": notes,
            }
            write_body_sequence(tmp / SEQUENCE_NAME, arrays, attrs, [model.path, pose_file], command)
            files.append(SEQUENCE_NAME)
        else:
            from nrtool.io import save_mesh

            with progress.task("writing meshes", total=len(index), unit="files") as advance:
                for k, frame in enumerate(index):
                    name = f"frame_{frame:05d}.{fmt}"
                    save_mesh(tmp / name, posed["vertices"][k], model.faces)
                    files.append(name)
                    advance()
        shown = pick_frames(len(index), sheet_frames)
        if shown:
            titles = [f"frame {index[k]}" + (f"\n{times[k]:.2f} s" if np.isfinite(times[k]) else "") for k in shown]
            contact_sheet(
                [posed["vertices"][k] for k in shown],
                model.faces,
                tmp / SHEET_NAME,
                titles=titles,
                joints=[posed["joints"][k] for k in shown],
                suptitle=f"{Path(pose_file).name} on {model.path.name} ({model.num_vertices} vertices)",
                backend=renderer,
            )
    return {
        "out": str(out),
        "frames": int(len(index)),
        "fps": float(seq.fps / every) if seq.fps else None,
        "vertices": model.num_vertices,
        "faces": int(len(model.faces)),
        "gender": model_gender,
        "source_layout": seq.source_layout,
        "up_axis": seq.up_axis,
        "source_up_axis": file_up,
        "body_kind": model.kind,
        "files": files,
        "contact_sheet": SHEET_NAME if shown else None,
        "notes": notes,
    }
