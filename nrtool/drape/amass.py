"""AMASS motion files: read, convert to SMPL 72-d poses, resample, change axes, separate arms.

An AMASS sequence is an ``.npz`` with

- ``poses (T, D)``: axis-angle per joint, root first. ``D`` = 156 (SMPL+H: 22 body joints +
  2 x 15 hand joints), 165 (SMPL-X: 22 body, jaw, 2 eyes, 2 x 15 hand joints), 72 (SMPL) or
  66 (22 body joints only). SMPL-X files may instead hold ``root_orient (T, 3)`` and
  ``pose_body (T, 63)``.
- ``trans (T, 3)``: root translation (missing: zeros, with a note).
- ``betas``: shape coefficients (16 for SMPL+H; missing: zeros); ``gender``.
- ``mocap_framerate`` (``mocap_frame_rate`` in SMPL-X files): frames per second.

The first 22 joints of SMPL+H and SMPL-X are SMPL's first 22, in the same order, so the 72-d
SMPL pose is those 66 numbers followed by zeros for SMPL's two hand joints (22, 23).

AMASS is Z-up; SMPL's canonical frame (and nrtool's) is Y-up. :func:`z_up_to_y_up` rotates the
world by -90 degrees about X: the root rotation becomes ``R @ R_root`` and, because SMPL rotates
the body about its rest pelvis ``p`` (not the origin), the translation becomes
``R (trans + p) - p``. With the body model's pelvis this is exact (the posed vertices are those
of the Z-up sequence, rotated); without it ``p = 0`` is assumed (an offset of a few cm).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

__all__ = [
    "MotionSequence",
    "POSE_LAYOUTS",
    "read_amass",
    "to_smpl_poses",
    "resample",
    "z_up_to_y_up",
    "y_up_to_z_up",
    "separate_arms",
    "load_motion",
    "write_amass",
    "Z_UP_TO_Y_UP",
]

PathLike = str | os.PathLike[str]

#: Width of ``poses`` -> what it is.
POSE_LAYOUTS: dict[int, str] = {72: "smpl", 156: "smplh", 165: "smplx", 66: "body22"}
_BODY_WIDTH = 66  # 22 joints: pelvis + 21 body joints
#: World rotation taking AMASS's Z-up frame to SMPL's Y-up frame: -90 degrees about X.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass
class MotionSequence:
    """A body motion in SMPL parameters.

    Attributes:
        poses: ``(T, 72)`` axis-angle, SMPL joint order.
        trans: ``(T, 3)`` root translation.
        betas: ``(B,)`` shape coefficients (as stored; the body model uses the first 10).
        gender: ``neutral``, ``male`` or ``female``.
        fps: frames per second (None when the file does not say).
        source_layout: the stored pose layout (see :data:`POSE_LAYOUTS`).
        up_axis: ``"z"`` (as AMASS stores) or ``"y"`` (SMPL canonical).
        notes: what was assumed while reading (missing keys filled in, ...).
    """

    poses: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    gender: str = "neutral"
    fps: float | None = None
    source_layout: str = "smpl"
    up_axis: str = "z"
    notes: list[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def to_smpl_poses(poses: np.ndarray, where: PathLike = "poses") -> tuple[np.ndarray, str]:
    """``(T, D)`` AMASS poses -> ``(T, 72)`` SMPL poses and the layout name.

    Raises:
        InputFileError: an unknown width (the message lists the known ones).
    """
    poses = np.asarray(poses, dtype=np.float64)
    width = poses.shape[1]
    if width not in POSE_LAYOUTS:
        known = ", ".join(f"{w} ({name})" for w, name in POSE_LAYOUTS.items())
        raise InputFileError(where, f"poses has {width} columns; expected one of {known}")
    if width == 72:
        return poses.copy(), "smpl"
    out = np.zeros((len(poses), 72))
    out[:, :_BODY_WIDTH] = poses[:, :_BODY_WIDTH]
    return out, POSE_LAYOUTS[width]


def _gender(value: object, notes: list[str]) -> str:
    text = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text).strip().lower()
    if text in ("male", "female", "neutral"):
        return text
    notes.append(f"unknown gender {text!r}: using neutral")
    return "neutral"


def read_amass(path: PathLike, source_fps: float | None = None) -> MotionSequence:
    """Read an AMASS (or AMASS-format) ``.npz`` into a Z-up :class:`MotionSequence`.

    ``source_fps`` replaces a missing (or overrides the stored) frame rate.

    Raises:
        InputFileError: missing/unreadable file, no ``poses``, wrong shapes, non-finite values.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "no such file")
    if p.is_dir():
        raise InputFileError(p, "is a folder, expected an AMASS .npz")
    if p.stat().st_size == 0:
        raise InputFileError(p, "file is empty")
    try:
        with np.load(p, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        raise InputFileError(p, f"cannot read without unpickling objects ({exc})") from exc
    except Exception as exc:  # not a zip / not an npy
        raise InputFileError(p, f"not a readable .npz file ({type(exc).__name__}: {exc})") from exc
    notes: list[str] = []
    if "poses" in data:
        poses = np.asarray(data["poses"])
    elif "root_orient" in data and "pose_body" in data:
        try:
            poses = np.concatenate([np.asarray(data["root_orient"]), np.asarray(data["pose_body"])], axis=1)
        except ValueError as exc:
            raise InputFileError(p, f"root_orient and pose_body do not fit together ({exc})") from exc
    elif "betas" in data:
        raise InputFileError(p, "holds betas but no poses (an AMASS shape.npz, not a motion sequence)")
    else:
        raise InputFileError(p, f"no 'poses' array (found: {', '.join(sorted(data)) or 'nothing'})")
    if poses.dtype.kind not in "fiu":
        raise InputFileError(p, f"poses is not numeric ({poses.dtype})")
    if poses.ndim == 1:
        poses = poses[None]
        notes.append("poses is 1-D: read as a single frame")
    if poses.ndim != 2 or poses.shape[0] == 0:
        raise InputFileError(p, f"poses must have shape (T, D) with T >= 1, got {poses.shape}")
    smpl_poses, layout = to_smpl_poses(poses, p)
    frames = len(smpl_poses)
    try:
        trans = np.asarray(data["trans"], dtype=np.float64) if "trans" in data else None
        betas = np.asarray(data.get("betas", np.zeros(10)), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputFileError(p, f"trans/betas are not numeric ({exc})") from exc
    if trans is not None:
        if trans.shape != (frames, 3):
            raise InputFileError(p, f"trans has shape {trans.shape}, expected ({frames}, 3) to match poses")
    else:
        trans = np.zeros((frames, 3))
        notes.append("no trans: root translation set to zero")
    if betas.ndim == 2:
        betas = betas[0]
        notes.append("betas given per frame: using the first frame's")
    if betas.ndim != 1:
        raise InputFileError(p, f"betas must be a vector, got shape {betas.shape}")
    gender = _gender(data["gender"], notes) if "gender" in data else "neutral"
    fps: float | None = None
    for key in ("mocap_framerate", "mocap_frame_rate"):
        if key in data:
            try:
                fps = float(np.asarray(data[key]).reshape(-1)[0])
            except (TypeError, ValueError, IndexError) as exc:
                raise InputFileError(p, f"{key} is not a number ({exc})") from exc
    if source_fps is not None:
        fps = float(source_fps)
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputFileError(p, f"frame rate must be positive, got {fps}")
    for name, arr in (("poses", smpl_poses), ("trans", trans), ("betas", betas)):
        if not np.all(np.isfinite(arr)):
            raise InputFileError(p, f"{name} holds NaN or infinite values")
    return MotionSequence(smpl_poses, trans, betas, gender, fps, layout, "z", notes)


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def resample(seq: MotionSequence, fps: float) -> MotionSequence:
    """The sequence at ``fps`` frames per second.

    An integer ratio (120 -> 30) keeps every k-th frame, as AMASS tools do; any other ratio
    interpolates: rotations by slerp per joint, translation linearly. The first frame is kept.
    """
    from scipy.spatial.transform import Rotation, Slerp

    if not (np.isfinite(fps) and fps > 0):
        raise NrtoolError(f"target fps must be positive, got {fps}")
    if seq.fps is None:
        raise NrtoolError("the sequence has no frame rate (no mocap_framerate); pass the source fps to resample it")
    ratio = seq.fps / fps
    if abs(ratio - 1.0) < 1e-9:
        return replace(seq, notes=list(seq.notes))
    if abs(ratio - round(ratio)) < 1e-9 and ratio >= 1:
        step = int(round(ratio))
        return replace(seq, poses=seq.poses[::step].copy(), trans=seq.trans[::step].copy(), fps=float(fps), notes=list(seq.notes))
    frames = seq.num_frames
    duration = (frames - 1) / seq.fps
    count = int(np.floor(duration * fps + 1e-9)) + 1
    t_out = np.arange(count) / fps
    t_in = np.arange(frames) / seq.fps
    if frames == 1:
        return replace(seq, fps=float(fps), notes=list(seq.notes))
    poses = np.zeros((count, 72))
    for j in range(24):
        rots = Rotation.from_rotvec(seq.poses[:, 3 * j : 3 * j + 3])
        poses[:, 3 * j : 3 * j + 3] = Slerp(t_in, rots)(np.clip(t_out, 0, t_in[-1])).as_rotvec()
    trans = np.stack([np.interp(t_out, t_in, seq.trans[:, k]) for k in range(3)], axis=1)
    return replace(seq, poses=poses, trans=trans, fps=float(fps), notes=list(seq.notes))


def _rotate_world(seq: MotionSequence, rotation: np.ndarray, pelvis: np.ndarray | None, up_axis: str) -> MotionSequence:
    from scipy.spatial.transform import Rotation

    p = np.zeros(3) if pelvis is None else np.asarray(pelvis, dtype=np.float64).reshape(3)
    poses = seq.poses.copy()
    root = Rotation.from_matrix(rotation) * Rotation.from_rotvec(poses[:, :3])
    poses[:, :3] = root.as_rotvec()
    trans = (seq.trans + p) @ rotation.T - p
    notes = list(seq.notes)
    if pelvis is None:
        notes.append("axis change without the body's pelvis: translation exact up to the pelvis offset")
    return replace(seq, poses=poses, trans=trans, up_axis=up_axis, notes=notes)


def z_up_to_y_up(seq: MotionSequence, pelvis: np.ndarray | None = None) -> MotionSequence:
    """Rotate a Z-up (AMASS) sequence into SMPL's Y-up frame; ``pelvis`` = the rest root joint."""
    if seq.up_axis == "y":
        return seq
    return _rotate_world(seq, Z_UP_TO_Y_UP, pelvis, "y")


def y_up_to_z_up(seq: MotionSequence, pelvis: np.ndarray | None = None) -> MotionSequence:
    """The inverse of :func:`z_up_to_y_up` (how AMASS-format files are written)."""
    if seq.up_axis == "z":
        return seq
    return _rotate_world(seq, Z_UP_TO_Y_UP.T, pelvis, "z")


def separate_arms(seq: MotionSequence, degrees: float) -> MotionSequence:
    """Rotate both arms away from the torso by ``degrees`` (about the body's forward axis).

    The shoulders' local rotations are pre-multiplied by a rotation about the parent (collar)
    frame's Z axis: +angle for the left arm, -angle for the right, which lifts arms hanging
    along the body away from it. Draping methods use this so that garments simulated or
    predicted on such poses do not get caught between arm and torso.
    """
    from scipy.spatial.transform import Rotation

    if degrees == 0:
        return seq
    poses = seq.poses.copy()
    angle = np.deg2rad(degrees)
    for joint, sign in ((16, 1.0), (17, -1.0)):
        lift = Rotation.from_rotvec([0.0, 0.0, sign * angle])
        local = Rotation.from_rotvec(poses[:, 3 * joint : 3 * joint + 3])
        poses[:, 3 * joint : 3 * joint + 3] = (lift * local).as_rotvec()
    return replace(seq, poses=poses, notes=list(seq.notes))


def load_motion(
    path: PathLike,
    fps: float | None = None,
    y_up: bool = True,
    arms_degrees: float = 0.0,
    pelvis: np.ndarray | None = None,
    source_fps: float | None = None,
) -> MotionSequence:
    """Read an AMASS file and apply, in order: resampling to ``fps``, Z-up -> Y-up, arm separation."""
    seq = read_amass(path, source_fps=source_fps)
    if fps is not None:
        if seq.fps is None:
            raise InputFileError(path, "no mocap_framerate (or mocap_frame_rate) to resample from; pass the source fps")
        seq = resample(seq, fps)
    if y_up:
        seq = z_up_to_y_up(seq, pelvis)
    if arms_degrees:
        seq = separate_arms(seq, arms_degrees)
    return seq


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_amass(
    path: PathLike, seq: MotionSequence, layout: str = "smplh", num_betas: int = 16, pelvis: np.ndarray | None = None
) -> None:
    """Write ``seq`` as an AMASS-format ``.npz`` (atomically), Z-up as AMASS stores it.

    ``layout``: ``smplh`` (156 columns, zero hand poses), ``smplx`` (165) or ``smpl`` (72).
    ``pelvis``: the rest root joint used to convert a Y-up sequence exactly.
    """
    from nrtool.artifacts.core import atomic_output

    widths = {name: width for width, name in POSE_LAYOUTS.items()}
    if layout not in ("smplh", "smplx", "smpl"):
        raise NrtoolError(f"unknown pose layout {layout!r}; choose smplh, smplx or smpl")
    seq = y_up_to_z_up(seq, pelvis) if seq.up_axis == "y" else seq
    poses = np.zeros((seq.num_frames, widths[layout]))
    poses[:, :_BODY_WIDTH] = seq.poses[:, :_BODY_WIDTH]
    if layout == "smpl":
        poses[:, _BODY_WIDTH:] = seq.poses[:, _BODY_WIDTH:]
    betas = np.zeros(num_betas)
    betas[: min(num_betas, len(seq.betas))] = seq.betas[:num_betas]
    arrays = {
        "poses": poses,
        "trans": seq.trans,
        "betas": betas,
        "gender": np.array(seq.gender),
        "mocap_framerate": np.array(float(seq.fps if seq.fps is not None else 0.0)),
    }
    with atomic_output(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
