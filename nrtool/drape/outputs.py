"""``nrtool drape``: codes + a motion + draping models in, a folder of draped frames out.

The folder (complete or absent: written through :func:`nrtool.artifacts.core.atomic_folder`):
``frame_NNNN.obj`` (objects ``body``, ``top``, ``bottom``), ``drape.h5`` (the ``drape``
artifact: per-frame vertices and metrics), ``contact_sheet.png``; with ``video`` an ``.mp4``
rendered by OpenCV's writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress

BODY_COLOUR = (0.78, 0.78, 0.78)
GARMENT_COLOURS = {"top": (0.25, 0.45, 0.85), "bottom": (0.85, 0.45, 0.2)}
ARTIFACT_NAME = "drape.h5"
SHEET_NAME = "contact_sheet.png"


@dataclass
class CodeChoice:
    """One garment to drape: its code, and where it came from."""

    code: np.ndarray  # (C,)
    name: str
    source: str
    centre: np.ndarray  # (3,) the code's transform into the body frame
    scale: float
    category: str  # "top" | "bottom" | "unknown" (a bare .npy)


def resolve_code(spec: str, category: str, model: Any, garment_model: Any, progress: Progress) -> tuple[CodeChoice, list[str]]:
    """``z.npy``, ``codes.h5:NAME`` (or ``codes.h5`` holding one code), or a garment mesh
    (encoded with the draping model's garment network). Returns the code and notes."""
    from nrtool.artifacts.garment_codes import load_codes_any
    from nrtool.garments.data import MESH_SUFFIXES
    from nrtool.garments.model import check_category, check_code_width

    checkpoint = model.checkpoint["garment"]
    path, _, name = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file")
    notes: list[str] = []
    if p.suffix.lower() in MESH_SUFFIXES:
        from nrtool.garments.codes import encode_with_model

        encoded = encode_with_model([p], garment_model, checkpoint, f"{model.path} (its garment network)",
                                    progress=progress)
        codes, notes = encoded.codes, encoded.notes
    else:
        codes = load_codes_any(p)
        check_category(codes.category, checkpoint, p, model.path)
    check_code_width(codes.codes, checkpoint, p)
    if name:
        row = codes.index(name, p)
    elif len(codes.codes) == 1:
        row = 0
    else:
        raise InputFileError(p, f"holds {len(codes.codes)} codes: name one as {p}:NAME (e.g. {p}:{codes.names[0]})")
    from nrtool.drape.garments import code_transforms

    centres, scales = code_transforms(codes.select([row]), checkpoint)
    found = codes.category if codes.category in ("top", "bottom") else "unknown"
    if found == "unknown":
        notes.append(f"{p}: a bare code says not which garment it is; draped as a {category}")
    return CodeChoice(codes.codes[row], codes.names[row], str(p), centres[0], float(scales[0]), found), notes


def load_models(paths: list[str | os.PathLike[str]], device: Any) -> dict[str, Any]:
    """Draping models by kind; two of one kind, or models of different bodies, are refused."""
    from nrtool.drape.model import load_draping

    models: dict[str, Any] = {}
    for path in paths:
        model = load_draping(path, device)
        if model.kind in models:
            raise InputFileError(path, f"is a second {model.kind} draping model (the first: {models[model.kind].path})")
        models[model.kind] = model
    bodies = {m.body.get("identity") for m in models.values()}
    if len(bodies) > 1:
        raise InputFileError(paths[-1], "was trained on another body than the other --model files")
    return models


def load_body_for(models: dict[str, Any], body_model: str | os.PathLike[str] | None, device: Any
                  ) -> tuple[Any, Path, dict[str, Any], list[str]]:
    """The body the draping models were trained on (``body_model`` or the path they recorded) and
    each category's skinning field, checked against it; plus the body's loading notes."""
    from nrtool.body.body_model import BodyModel
    from nrtool.drape.skinning import check_skinning_body, skinning_from_checkpoint

    first = next((m for k, m in models.items() if k != "intersection"), None)
    if first is None:
        raise NrtoolError("--model: an intersection solver alone drapes nothing; add the top and bottom models")
    body_path = Path(body_model) if body_model is not None else Path(first.body.get("path", ""))
    if body_model is None and not body_path.is_file():
        raise NrtoolError(f"pass --body-model (the body {first.body.get('name', '?')} that {first.path} was trained on)")
    body = BodyModel(body_path, device=device)
    # Each garment is skinned by the field its model was trained with; every one must be of this
    # body (one line naming the body file if not).
    skinning = {kind: skinning_from_checkpoint(m.checkpoint["skinning"], m.path, body, body_path, device)
                for kind, m in models.items() if kind != "intersection"}
    if "intersection" in models:
        check_skinning_body(models["intersection"].checkpoint["skinning"], body, models["intersection"].path, body_path)
    return body, body_path, skinning, list(body.notes)


def _select_frames(count: int, frames: str | None) -> np.ndarray:
    if frames is None:
        return np.arange(count)
    start_text, sep, stop_text = frames.partition(":")
    try:
        start = int(start_text) if start_text else 0
        stop = int(stop_text) if stop_text else count
    except ValueError:
        raise NrtoolError(f"--frames {frames!r}: give A:B (frame numbers, either may be left out)") from None
    if not sep:
        stop = start + 1
    start, stop = max(0, start if start >= 0 else count + start), min(count, stop if stop >= 0 else count + stop)
    if start >= stop:
        raise NrtoolError(f"--frames {frames!r} selects no frame of the motion's {count}")
    return np.arange(start, stop)


def _render_video(path: Path, sequence: Any, fps: float, size: tuple[int, int] = (480, 480)) -> None:
    """An MP4 (OpenCV's writer, mp4v) of the draped frames, front view, one scale for all."""
    import cv2

    from nrtool.artifacts.core import atomic_output
    from nrtool.body.render import render_mesh

    vertices, faces, colours = _combined(sequence, range(len(sequence.body_vertices)))
    lo = np.min([v.min(0) for v in vertices], axis=0)
    hi = np.max([v.max(0) for v in vertices], axis=0)
    half = float((hi - lo).max()) / 2 * 1.05
    with atomic_output(path, suffix=".mp4") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
        if not writer.isOpened():
            raise InputFileError(path, "OpenCV cannot write an .mp4 video here")
        try:
            for v in vertices:
                centre = np.array([(v[:, 0].min() + v[:, 0].max()) / 2, (lo[1] + hi[1]) / 2, (v[:, 2].min() + v[:, 2].max()) / 2])
                image = render_mesh(v, faces, "front", (size[1], size[0]), centre, half, "matplotlib", colours)
                writer.write(cv2.cvtColor((np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()


def _combined(sequence: Any, frames: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per frame one mesh of body + garments, its faces and per-face colours."""
    faces = [sequence.body_faces]
    colours = [np.tile(BODY_COLOUR, (len(sequence.body_faces), 1))]
    offset = sequence.body_vertices.shape[1]
    for category, garment_faces in sequence.faces.items():
        faces.append(garment_faces + offset)
        colours.append(np.tile(GARMENT_COLOURS[category], (len(garment_faces), 1)))
        offset += sequence.garments[category].shape[1]
    vertices = [np.vstack([sequence.body_vertices[t], *(sequence.garments[c][t] for c in sequence.faces)]) for t in frames]
    return vertices, np.vstack(faces), np.vstack(colours)


def drape_to_folder(
    out: str | os.PathLike[str],
    model_paths: list[str | os.PathLike[str]],
    pose_path: str | os.PathLike[str],
    top: str | None = None,
    bottom: str | None = None,
    body_model: str | os.PathLike[str] | None = None,
    betas: list[float] | None = None,
    frames: str | None = None,
    fps: float | None = None,
    source_up: str = "auto",
    separate_arms: float = 0.0,
    resolution: int | None = None,
    baseline: bool = False,
    cache: bool = True,
    video: str | os.PathLike[str] | None = None,
    sheet_frames: int = 6,
    force: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Drape ``top`` and/or ``bottom`` on the motion; write the folder; return a summary."""

    from nrtool.artifacts.core import atomic_folder, check_output_folder, provenance
    from nrtool.artifacts.drape import write_drape
    from nrtool.body.amass import load_motion
    from nrtool.body.render import contact_sheet
    from nrtool.body.sequence import pick_frames
    from nrtool.device import resolve_device
    from nrtool.drape.garments import GarmentTemplate
    from nrtool.drape.physics import Material
    from nrtool.drape.sequence import SequenceDraper, drape_motion
    from nrtool.garments.meshing import decode_mesh
    from nrtool.garments.model import model_from_checkpoint
    from nrtool.io import save_obj_parts

    progress = progress or SilentProgress()
    if top is None and bottom is None:
        raise NrtoolError("nothing to drape: pass --top and/or --bottom")
    if resolution is not None and not 16 <= resolution <= 512:
        raise NrtoolError(f"--resolution must be between 16 and 512, got {resolution}")
    check_output_folder(out, force)
    if video is not None:
        from nrtool.artifacts.core import check_output_file

        check_output_file(video, "--video")
    torch_device = resolve_device(device)
    models = load_models(list(model_paths), torch_device)
    wanted = {"top": top, "bottom": bottom}
    for category, spec in wanted.items():
        if spec is not None and category not in models:
            kinds = ", ".join(models) or "none"
            raise NrtoolError(f"--{category} needs a {category} draping model among --model (given: {kinds})")
    body, body_path, skinning, notes = load_body_for(models, body_model, torch_device)
    # The motion before the garments: a wrong --pose file fails before seconds of decoding.
    motion = load_motion(pose_path, fps=fps, y_up=True, arms_degrees=separate_arms, source_up=source_up,
                         rest_joints=body.rest_joints())
    notes += motion.notes
    rows = _select_frames(motion.num_frames, frames)
    material = Material()
    templates: dict[str, GarmentTemplate] = {}
    choices: dict[str, CodeChoice] = {}
    for category, spec in wanted.items():
        if spec is None:
            continue
        model = models[category]
        garment_model = model_from_checkpoint(model.checkpoint["garment"], model.path, torch_device)
        choice, said = resolve_code(spec, category, model, garment_model, progress)
        notes += said
        res = resolution or model.field.config.garment_resolution
        with progress.task(f"decoding the {category}", 1, "garments") as advance:
            vertices, faces = decode_mesh(garment_model, choice.code, res)
            advance()
        if len(faces) == 0:
            raise InputFileError(choice.source, f"{choice.name}: its code decodes to no surface at {res}^3")
        canonical = vertices.astype(np.float64) * choice.scale + choice.centre
        templates[category] = GarmentTemplate(choice.name, choice.code, canonical, faces.astype(np.int64))
        choices[category] = choice
    if "intersection" in models and not {"top", "bottom"} <= set(templates):
        notes.append("the intersection solver is used only when a top and a bottom are draped together")
    poses, trans = motion.poses[rows].astype(np.float32), motion.trans[rows].astype(np.float32)
    if betas is not None:
        if len(betas) > 10:
            raise NrtoolError(f"--betas: at most 10 values, got {len(betas)}")
        shape = np.zeros(10, dtype=np.float32)
        shape[: len(betas)] = betas
    else:
        shape = np.zeros(10, dtype=np.float32)
        k = min(10, len(motion.betas))
        shape[:k] = motion.betas[:k]
    if not body.has_shape_space:
        if np.any(shape != 0) and betas is not None:
            raise InputFileError(body_path, "is a rigged mesh without a shape space: --betas cannot apply")
        if np.any(shape != 0):
            notes.append(f"{body_path.name} has no shape space: the motion's betas are ignored")
        shape[:] = 0
    draper = SequenceDraper({k: models[k] for k in (*templates, "intersection") if k in models}, templates,
                            {k: skinning[k] for k in templates}, body, shape, material, torch_device, cache=cache)
    with progress.task("draping", len(poses), "frames") as advance:
        sequence = drape_motion(draper, poses, trans, baseline=baseline, advance=advance)
    inputs = provenance([*model_paths, pose_path, body_path])
    with atomic_folder(out, force=force) as tmp:
        with progress.task("writing frames", len(poses), "frames") as advance:
            for t, frame in enumerate(rows):
                parts = [("body", sequence.body_vertices[t], sequence.body_faces)]
                parts += [(c, sequence.garments[c][t], sequence.faces[c]) for c in sequence.faces]
                save_obj_parts(tmp / f"frame_{frame:04d}.obj", parts)
                advance()
        write_drape(tmp / ARTIFACT_NAME, {
            "body_vertices": sequence.body_vertices, "body_faces": sequence.body_faces,
            "garments": sequence.garments, "faces": sequence.faces, "frame_index": rows, "poses": poses,
            "trans": trans, "betas": shape, "metrics": sequence.metrics, "baseline": sequence.baseline,
        }, {
            "motion": str(pose_path), "body_model": str(body_path), "models": [str(p) for p in model_paths],
            "codes": {c: {"source": ch.source, "name": ch.name} for c, ch in choices.items()}, "notes": notes,
            "seconds_per_frame": sequence.seconds_per_frame,
        }, inputs, command)
        sheet = None
        if sheet_frames > 0:
            picked = pick_frames(len(poses), sheet_frames)
            vertices, faces, colours = _combined(sequence, picked)
            contact_sheet(vertices, faces, tmp / SHEET_NAME, [f"frame {rows[i]}" for i in picked],
                          suptitle=f"{', '.join(f'{c}: {ch.name}' for c, ch in choices.items())} on {Path(pose_path).name}",
                          face_colours=colours)
            sheet = SHEET_NAME
    if video is not None:
        _render_video(Path(video), sequence, motion.fps or 30.0)

    def means(values: dict[str, np.ndarray] | None) -> dict[str, float] | None:
        return None if values is None else {k: float(np.mean(v)) for k, v in values.items()}

    return {
        "out": str(out), "frames": int(len(poses)), "first_frame": int(rows[0]), "body_model": str(body_path),
        "garments": {c: {"name": choices[c].name, "vertices": int(templates[c].vertices.shape[0]),
                         "faces": int(templates[c].faces.shape[0])} for c in templates},
        "intersection_solver": "intersection" in draper.models,
        "metrics": means(sequence.metrics), "baseline": means(sequence.baseline),
        "ms_per_frame": 1000 * sequence.seconds_per_frame, "setup_seconds": sequence.setup_seconds,
        "contact_sheet": sheet, "video": str(video) if video is not None else None, "notes": notes,
        "device": str(torch_device), "cached": cache,
    }
