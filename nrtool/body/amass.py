"""AMASS motion files: read, convert to SMPL 72-d poses, resample, change axes, separate arms.

An AMASS sequence is an ``.npz`` with

- ``poses (T, D)``: axis-angle per joint, root first. ``D`` = 156 (SMPL+H: 22 body joints +
  2 x 15 hand joints), 165 (SMPL-X: 22 body, jaw, 2 eyes, 2 x 15 hand joints), 72 (SMPL) or
  66 (22 body joints only). The same numbers stored per joint, ``(T, J, 3)`` with ``J`` = 52,
  55, 24 or 22, are flattened to ``(T, 3 J)``. SMPL-X files may instead hold
  ``root_orient (T, 3)`` and ``pose_body (T, 63)``.
- ``trans (T, 3)``: root translation (missing: zeros, with a note).
- ``betas``: shape coefficients (16 for SMPL+H; missing: zeros, with a note); ``gender``.
- ``mocap_framerate`` (``mocap_frame_rate`` in SMPL-X files): frames per second.

A bare ``.npy`` holding only the poses array is read the same way (no trans, betas or frame
rate). Anything else is refused with what the file is (a mesh, an image, HDF5, a pickle, ...).

The first 22 joints of SMPL+H and SMPL-X are SMPL's first 22, in the same order, so the 72-d
SMPL pose is those 66 numbers followed by zeros for SMPL's two hand joints (22, 23).

Up axis. AMASS is Z-up; SMPL's canonical frame (and nrtool's) is Y-up. :func:`z_up_to_y_up`
rotates the world by -90 degrees about X: the root rotation becomes ``R @ R_root`` and, because
SMPL rotates the body about its rest pelvis ``p`` (not the origin), the translation becomes
``R (trans + p) - p``. With the body model's pelvis this is exact (the posed vertices are those
of the Z-up sequence, rotated); without it ``p = 0`` is assumed (an offset of a few cm).
Files from other tools are often Y-up already, and rotating those lays the body flat, so the
file's up axis is detected (:func:`detect_up_axis`): the skeleton is posed for a few frames and
the direction from pelvis to head, which is the body's up in SMPL's rest frame, says which world
axis is up. The translation cannot say it (its origin and vertical offset are arbitrary), the
root rotation alone tilts with the hips; the spine chain is what stays upright in almost every
motion. When it points along neither +Z nor +Y (lying down, an unusual frame) Z-up is assumed
with a note, and :func:`upright_warning` checks the posed result.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nrtool.body.body_model import SMPL_PARENTS
from nrtool.body.filetypes import is_numpy_file, sniff
from nrtool.errors import InputFileError, NrtoolError

__all__ = [
    "MotionSequence",
    "POSE_LAYOUTS",
    "JOINT_COUNTS",
    "SOURCE_UP_AXES",
    "MOTION_FORMATS",
    "read_amass",
    "to_smpl_poses",
    "resample",
    "z_up_to_y_up",
    "y_up_to_z_up",
    "to_up_axis",
    "separate_arms",
    "skeleton_joints",
    "body_up_direction",
    "detect_up_axis",
    "resolve_up_axis",
    "upright_warning",
    "prepare_motion",
    "load_motion",
    "write_amass",
    "Z_UP_TO_Y_UP",
]

PathLike = str | os.PathLike[str]

#: Width of ``poses`` -> what it is.
POSE_LAYOUTS: dict[int, str] = {72: "smpl", 156: "smplh", 165: "smplx", 66: "body22"}
#: Joints of a ``(T, J, 3)`` pose array -> the width of the same poses flattened.
JOINT_COUNTS: dict[int, int] = {width // 3: width for width in POSE_LAYOUTS}
#: What ``--source-up`` accepts: detect, or the file's up axis.
SOURCE_UP_AXES = ("auto", "z", "y")
#: What a motion file may be, for messages.
MOTION_FORMATS = (
    "an AMASS-format .npz (poses (T, 72|156|165|66) or (T, 24|52|55|22, 3) axis-angle; "
    "optional trans, betas, gender, mocap_framerate) or an .npy of poses"
)
_BODY_WIDTH = 66  # 22 joints: pelvis + 21 body joints
#: World rotation taking AMASS's Z-up frame to SMPL's Y-up frame: -90 degrees about X.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Resampling may add at most this many frames per input frame (a tiny stored frame rate would
#: otherwise make the output, and its allocation, arbitrarily large).
MAX_UPSAMPLING = 100
_PELVIS, _HEAD = 0, 15  # SMPL joint indices: the body's up in the rest pose is pelvis -> head
_SPINE_CHAIN = (0, 3, 6, 9, 12, 15)  # pelvis, spine1-3, neck, head
#: The fraction of a unit vector the mean pelvis -> head direction must have along one axis to
#: call that axis up (0.7: within ~45 degrees, on average over the sampled frames).
_UP_CONFIDENCE = 0.7


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
        up_axis: ``"z"`` (as AMASS stores) or ``"y"`` (SMPL canonical): the world axis the
            body's up points along; :func:`read_amass` says ``"z"`` (AMASS's convention),
            :func:`resolve_up_axis` replaces that by the file's, detected or given.
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


def _flat_poses(poses: np.ndarray, where: PathLike, notes: list[str]) -> np.ndarray:
    """Stored poses -> ``(T, D)``: per-joint ``(T, J, 3)`` flattened, a single frame as ``T = 1``."""
    joints = ", ".join(f"{j} ({POSE_LAYOUTS[w]})" for j, w in JOINT_COUNTS.items())
    if poses.ndim == 3:
        if poses.shape[2] != 3 or poses.shape[1] not in JOINT_COUNTS:
            raise InputFileError(where, f"poses has shape {poses.shape}; per-joint poses must be (T, J, 3) with J one of {joints}")
        return poses.reshape(poses.shape[0], 3 * poses.shape[1])
    if poses.ndim == 2 and poses.shape[1] == 3 and poses.shape[0] in JOINT_COUNTS:
        # Width 3 is no layout: this is one frame stored per joint.
        notes.append(f"poses has shape {poses.shape}: read as a single frame of {poses.shape[0]} joints")
        return poses.reshape(1, -1)
    if poses.ndim == 1:
        notes.append("poses is 1-D: read as a single frame")
        return poses[None]
    if poses.ndim != 2:
        raise InputFileError(where, f"poses must have shape (T, D) or (T, J, 3), got {poses.shape}")
    return poses


def _gender(value: object, notes: list[str]) -> str:
    text = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text).strip().lower()
    if text in ("male", "female", "neutral"):
        return text
    notes.append(f"unknown gender {text!r}: using neutral")
    return "neutral"


def _read_arrays(p: Path, notes: list[str]) -> dict[str, np.ndarray]:
    """The arrays of a motion ``.npz`` (or of a bare ``.npy``, as ``poses``); never unpickles."""
    if not is_numpy_file(p):
        # numpy would try to unpickle it and report "pickled data": say what it is instead.
        raise InputFileError(p, f"{sniff(p)}, not a motion file; expected {MOTION_FORMATS}")
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            notes.append("a bare .npy: read as poses (no trans, betas or frame rate)")
            return {"poses": loaded}
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputFileError(p, "cannot read without unpickling objects (it holds object arrays); store numeric arrays") from exc
        raise InputFileError(p, f"not a readable .npz/.npy file ({exc})") from exc
    except Exception as exc:  # a damaged zip, a truncated .npy
        raise InputFileError(p, f"not a readable .npz/.npy file ({type(exc).__name__}: {exc})") from exc


def read_amass(path: PathLike, source_fps: float | None = None) -> MotionSequence:
    """Read an AMASS (or AMASS-format) ``.npz``/``.npy`` into a :class:`MotionSequence`.

    ``source_fps`` replaces a missing (or overrides the stored) frame rate. The sequence is
    marked Z-up (AMASS's convention); :func:`resolve_up_axis` detects the file's real one.

    Raises:
        InputFileError: missing/unreadable file, not an ``.npz``/``.npy`` (the message says
            what it is), no ``poses``, wrong shapes, non-finite values.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "no such file")
    if p.is_dir():
        raise InputFileError(p, f"is a folder, expected {MOTION_FORMATS}")
    if p.stat().st_size == 0:
        raise InputFileError(p, "file is empty")
    notes: list[str] = []
    data = _read_arrays(p, notes)
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
    poses = _flat_poses(poses, p, notes)
    if poses.shape[0] == 0:
        raise InputFileError(p, f"poses must have shape (T, D) with T >= 1, got {poses.shape}")
    smpl_poses, layout = to_smpl_poses(poses, p)
    frames = len(smpl_poses)
    try:
        trans = np.asarray(data["trans"], dtype=np.float64) if "trans" in data else None
        betas = np.asarray(data["betas"], dtype=np.float64) if "betas" in data else None
    except (TypeError, ValueError) as exc:
        raise InputFileError(p, f"trans/betas are not numeric ({exc})") from exc
    if trans is not None:
        if trans.shape != (frames, 3):
            raise InputFileError(p, f"trans has shape {trans.shape}, expected ({frames}, 3) to match poses")
    else:
        trans = np.zeros((frames, 3))
        notes.append("no trans: root translation set to zero")
    if betas is None:
        betas = np.zeros(10)
        notes.append("no betas: mean body shape (zero betas)")
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
    wanted = duration * fps  # bounded before it sizes an allocation: the frame rate is the file's
    if not np.isfinite(wanted) or wanted + 1 > MAX_UPSAMPLING * frames:
        raise NrtoolError(
            f"resampling {frames} frames from {seq.fps:g} to {fps:g} fps would make more than {MAX_UPSAMPLING}x as many; "
            "check the file's mocap_framerate (or --source-fps) and --fps"
        )
    count = int(np.floor(wanted + 1e-9)) + 1
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


def to_up_axis(seq: MotionSequence, up_axis: str, pelvis: np.ndarray | None = None) -> MotionSequence:
    """The sequence in a world with ``up_axis`` (``"y"`` or ``"z"``) up; ``pelvis`` as above."""
    if up_axis not in ("y", "z"):
        raise NrtoolError(f"up axis must be 'y' or 'z', got {up_axis!r}")
    return z_up_to_y_up(seq, pelvis) if up_axis == "y" else y_up_to_z_up(seq, pelvis)


# --------------------------------------------------------------------------------------------
# Which way is up
# --------------------------------------------------------------------------------------------


def _straight_spine() -> np.ndarray:
    """Rest joints good enough to find the pelvis -> head direction without a body model.

    In SMPL's rest pose the spine chain (pelvis, spine1-3, neck, head) is nearly straight
    along +Y; the other joints do not affect that direction and are left at the origin.
    """
    joints = np.zeros((len(SMPL_PARENTS), 3))
    for k, j in enumerate(_SPINE_CHAIN):
        joints[j, 1] = 0.1 * k
    return joints


def skeleton_joints(poses: np.ndarray, rest_joints: np.ndarray, parents: Sequence[int] = SMPL_PARENTS) -> np.ndarray:
    """Forward kinematics of the skeleton alone: ``(T, 72)`` poses -> ``(T, 24, 3)`` joints.

    ``rest_joints (24, 3)`` are the rest-pose joints, ``parents`` the kinematic tree (root
    first). The root stays at its rest position (no translation): enough to tell directions.
    """
    from scipy.spatial.transform import Rotation

    poses = np.asarray(poses, dtype=np.float64)
    frames, count = len(poses), len(parents)
    local = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(frames, count, 3, 3)
    world = np.empty_like(local)
    joints = np.empty((frames, count, 3))
    world[:, 0] = local[:, 0]
    joints[:, 0] = rest_joints[0]
    for j in range(1, count):
        parent = int(parents[j])
        world[:, j] = world[:, parent] @ local[:, j]
        joints[:, j] = joints[:, parent] + world[:, parent] @ (rest_joints[j] - rest_joints[parent])
    return joints


def body_up_direction(joints: np.ndarray) -> np.ndarray:
    """Mean unit pelvis -> head direction of posed joints ``(T, 24, 3)``, ``(3,)``.

    Its length is near 1 when the direction is the same in every frame, smaller when it varies.
    """
    up = joints[:, _HEAD] - joints[:, _PELVIS]
    up = up / np.maximum(np.linalg.norm(up, axis=1, keepdims=True), 1e-12)
    return up.mean(axis=0)


def _signed_axis(direction: np.ndarray) -> str | None:
    """``"+y"``, ``"-z"``, ... when ``direction`` lies (on average) along one axis, else None."""
    k = int(np.argmax(np.abs(direction)))
    if abs(direction[k]) < _UP_CONFIDENCE:
        return None
    return ("+" if direction[k] > 0 else "-") + "xyz"[k]


def _describe(direction: np.ndarray) -> str:
    axis = _signed_axis(direction)
    return axis.upper() if axis else "(" + ", ".join(f"{c:+.2f}" for c in direction) + ")"


def detect_up_axis(
    poses: np.ndarray, rest_joints: np.ndarray | None = None, parents: Sequence[int] = SMPL_PARENTS, frames: int = 64
) -> tuple[str | None, str]:
    """The world up axis of poses as stored: ``("z" | "y" | None, the direction found)``.

    Poses up to ``frames`` evenly spaced frames of the skeleton (``rest_joints``: the body
    model's, or a straight spine when None) and takes the mean pelvis -> head direction. None
    when it is not within ~45 degrees of +Z or +Y (a motion lying down, a Y-down camera frame).
    """
    poses = np.asarray(poses, dtype=np.float64)
    index = np.unique(np.linspace(0, len(poses) - 1, min(frames, len(poses))).round().astype(int))
    rest = _straight_spine() if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    direction = body_up_direction(skeleton_joints(poses[index], rest, parents))
    axis = _signed_axis(direction)
    return {"+z": "z", "+y": "y"}.get(axis or ""), _describe(direction)


def resolve_up_axis(
    seq: MotionSequence,
    source_up: str = "auto",
    rest_joints: np.ndarray | None = None,
    parents: Sequence[int] = SMPL_PARENTS,
) -> MotionSequence:
    """``seq`` marked with the file's up axis: ``source_up`` ("z" or "y"), or detected ("auto").

    Detection that finds neither axis keeps AMASS's Z-up and says so in a note.
    """
    if source_up not in SOURCE_UP_AXES:
        raise NrtoolError(f"source up axis {source_up!r}: choose {', '.join(SOURCE_UP_AXES)}")
    if source_up != "auto":
        return replace(seq, up_axis=source_up, notes=list(seq.notes))
    axis, found = detect_up_axis(seq.poses, rest_joints, parents)
    notes = list(seq.notes)
    if axis is None:
        notes.append(f"could not tell the file's up axis (the body's pelvis->head direction is {found}): assuming Z-up as in AMASS (--source-up z|y to choose)")
        axis = "z"
    elif axis == "y":
        notes.append(f"the file is Y-up, not Z-up as AMASS files are (the body's pelvis->head direction in it is {found})")
    return replace(seq, up_axis=axis, notes=notes)


def upright_warning(joints: np.ndarray, up_axis: str) -> str | None:
    """A note when posed joints ``(T, 24, 3)`` are not upright along ``+up_axis``, else None."""
    direction = body_up_direction(joints)
    if _signed_axis(direction) == "+" + up_axis:
        return None
    return (
        f"the posed body's pelvis->head direction is {_describe(direction)}, not +{up_axis.upper()}: it lies flat or "
        "upside down unless the motion does (if the file's up axis is not the one assumed, pass --source-up z|y)"
    )


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


def prepare_motion(
    seq: MotionSequence,
    fps: float | None = None,
    source_up: str = "auto",
    y_up: bool = True,
    arms_degrees: float = 0.0,
    rest_joints: np.ndarray | None = None,
    parents: Sequence[int] = SMPL_PARENTS,
    pelvis: np.ndarray | None = None,
) -> MotionSequence:
    """Apply, in order: the file's up axis (:func:`resolve_up_axis`), resampling to ``fps``,
    the axis change to Y-up (``y_up``) or Z-up, arm separation.

    ``rest_joints (24, 3)``: the body model's rest joints (for detection, and their root as
    the pelvis of an exact axis change unless ``pelvis`` is given).
    """
    seq = resolve_up_axis(seq, source_up, rest_joints, parents)
    if fps is not None:
        seq = resample(seq, fps)
    if pelvis is None and rest_joints is not None:
        pelvis = np.asarray(rest_joints)[0]
    seq = to_up_axis(seq, "y" if y_up else "z", pelvis)
    if arms_degrees:
        seq = separate_arms(seq, arms_degrees)
    return seq


def load_motion(
    path: PathLike,
    fps: float | None = None,
    y_up: bool = True,
    arms_degrees: float = 0.0,
    pelvis: np.ndarray | None = None,
    source_fps: float | None = None,
    source_up: str = "auto",
    rest_joints: np.ndarray | None = None,
) -> MotionSequence:
    """Read a motion file and :func:`prepare_motion` it (up axis, resampling, axes, arms)."""
    seq = read_amass(path, source_fps=source_fps)
    if fps is not None and seq.fps is None:
        raise InputFileError(path, "no mocap_framerate (or mocap_frame_rate) to resample from; pass the source fps")
    return prepare_motion(seq, fps, source_up, y_up, arms_degrees, rest_joints, pelvis=pelvis)


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
