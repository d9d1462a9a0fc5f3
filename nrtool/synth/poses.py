"""Procedural motion in the AMASS format: walking, arm raises, squats, torso twists.

Each motion is built in SMPL's Y-up frame from a few sinusoids per joint (hip/knee/ankle
flexion, arm swing, shoulder abduction, spine twist), composed as rotation matrices and stored
as axis-angle. Every joint's rotation stays within :data:`JOINT_LIMITS` (a total angle per
joint, plus hinge joints — knees, elbows — that bend one way only); :func:`make_motion` checks
this. Files are written like AMASS's: ``poses (T, 156)`` (SMPL+H layout, zero hand poses) or the
SMPL/SMPL-X widths, ``trans`` Z-up, ``betas (16,)``, ``gender``, ``mocap_framerate``.

These are stand-ins for tests and demos, not captured motion: the timing is regular and the
feet are not contact-constrained (they may slide a little).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nrtool.body.amass import MotionSequence, write_amass
from nrtool.body.body_model import SMPL_JOINT_NAMES
from nrtool.body.pose_prior import HINGES, JOINT_LIMITS
from nrtool.errors import NrtoolError

__all__ = ["MOTIONS", "JOINT_LIMITS", "make_motion", "write_motion", "check_limits"]

_J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
_ARMS_DOWN = 1.2  # shoulder rotation (rad) from the T-pose to arms along the body


def _rx(a: np.ndarray) -> np.ndarray:
    return _axis_rot(a, 0)


def _ry(a: np.ndarray) -> np.ndarray:
    return _axis_rot(a, 1)


def _rz(a: np.ndarray) -> np.ndarray:
    return _axis_rot(a, 2)


def _axis_rot(angle: np.ndarray, axis: int) -> np.ndarray:
    """``(T, 3, 3)`` rotations by ``angle (T,)`` about a coordinate axis."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


class _Pose:
    """Per-joint rotation matrices for ``T`` frames, composed joint by joint."""

    def __init__(self, frames: int) -> None:
        self.rot = np.tile(np.eye(3), (frames, 24, 1, 1))
        self.trans = np.zeros((frames, 3))

    def apply(self, joint: str, rotation: np.ndarray) -> None:
        """Pre-multiply (rotate in the parent's frame) the joint's local rotation."""
        j = _J[joint]
        self.rot[:, j] = rotation @ self.rot[:, j]

    def rotvecs(self) -> np.ndarray:
        from scipy.spatial.transform import Rotation

        t = len(self.rot)
        return Rotation.from_matrix(self.rot.reshape(-1, 3, 3)).as_rotvec().reshape(t, 72)


def _arms_down(pose: _Pose, amount: float | np.ndarray = _ARMS_DOWN) -> None:
    pose.apply("left_shoulder", _rz(-np.broadcast_to(amount, (len(pose.rot),))))
    pose.apply("right_shoulder", _rz(np.broadcast_to(amount, (len(pose.rot),))))


def _walk(t: np.ndarray, rng: np.random.Generator) -> _Pose:
    period = 1.1 * rng.uniform(0.9, 1.1)
    stride = rng.uniform(0.85, 1.15)
    phase = 2 * np.pi * t / period
    pose = _Pose(len(t))
    hip = 0.42 * stride * np.sin(phase)
    pose.apply("left_hip", _rx(-hip))
    pose.apply("right_hip", _rx(hip))
    # Knees bend in the swing phase of each leg (and a little at heel strike).
    pose.apply("left_knee", _rx(0.08 + 0.65 * stride * np.clip(np.sin(phase - 1.2), 0, None)))
    pose.apply("right_knee", _rx(0.08 + 0.65 * stride * np.clip(np.sin(phase - 1.2 + np.pi), 0, None)))
    pose.apply("left_ankle", _rx(0.15 * np.sin(phase + 0.6)))
    pose.apply("right_ankle", _rx(-0.15 * np.sin(phase + 0.6)))
    _arms_down(pose)
    swing = 0.35 * stride * np.sin(phase)
    pose.apply("left_shoulder", _rx(swing))
    pose.apply("right_shoulder", _rx(-swing))
    pose.apply("left_elbow", _ry(-(0.25 + 0.15 * np.clip(-np.sin(phase), 0, None))))
    pose.apply("right_elbow", _ry(0.25 + 0.15 * np.clip(np.sin(phase), 0, None)))
    pose.apply("spine2", _ry(0.08 * np.sin(phase)))
    pose.apply("pelvis", _ry(-0.06 * np.sin(phase)))
    speed = 1.25 * stride / 1.1 * (1.1 / period)
    pose.trans[:, 2] = speed * t
    pose.trans[:, 1] = 0.015 * np.cos(2 * phase)
    return pose


def _arm_raise(t: np.ndarray, rng: np.random.Generator) -> _Pose:
    period = 2.0 * rng.uniform(0.9, 1.1)
    top = rng.uniform(1.1, 1.45)  # above the T-pose (rad)
    raise_ = 0.5 * (1 - np.cos(2 * np.pi * t / period))  # 0 -> 1 -> 0
    angle = -_ARMS_DOWN + (_ARMS_DOWN + top) * raise_
    pose = _Pose(len(t))
    pose.apply("left_shoulder", _rz(angle))
    pose.apply("right_shoulder", _rz(-angle))
    pose.apply("left_elbow", _ry(-0.15 * raise_))
    pose.apply("right_elbow", _ry(0.15 * raise_))
    pose.apply("left_collar", _rz(0.2 * raise_))
    pose.apply("right_collar", _rz(-0.2 * raise_))
    return pose


def _squat(t: np.ndarray, rng: np.random.Generator) -> _Pose:
    period = 2.4 * rng.uniform(0.9, 1.1)
    depth = rng.uniform(0.75, 1.0)
    s = depth * 0.5 * (1 - np.cos(2 * np.pi * t / period))
    hip, knee = 1.55 * s, 2.05 * s
    pose = _Pose(len(t))
    for side in ("left", "right"):
        pose.apply(f"{side}_hip", _rx(-hip))
        pose.apply(f"{side}_knee", _rx(knee))
        pose.apply(f"{side}_ankle", _rx(-(knee - hip)))  # feet stay flat
    pose.apply("spine1", _rx(0.35 * s))
    pose.apply("spine2", _rx(0.1 * s))
    # Arms forward for balance.
    pose.apply("left_shoulder", _ry(-1.3 * s) @ _rz(-_ARMS_DOWN * (1 - s)))
    pose.apply("right_shoulder", _ry(1.3 * s) @ _rz(_ARMS_DOWN * (1 - s)))
    thigh, shin = 0.38, 0.385
    pose.trans[:, 1] = thigh * (np.cos(hip) - 1) + shin * (np.cos(hip - knee) - 1)
    pose.trans[:, 2] = -(thigh * np.sin(hip) + shin * np.sin(hip - knee))  # hips go back, feet stay put
    return pose


def _twist(t: np.ndarray, rng: np.random.Generator) -> _Pose:
    period = 1.6 * rng.uniform(0.9, 1.1)
    amp = rng.uniform(0.3, 0.45)
    phase = 2 * np.pi * t / period
    pose = _Pose(len(t))
    for joint, share in (("spine1", 0.35), ("spine2", 0.35), ("spine3", 0.3)):
        pose.apply(joint, _ry(amp * share * np.sin(phase)))
    pose.apply("neck", _ry(-0.3 * amp * np.sin(phase)))
    _arms_down(pose, 0.6)
    pose.apply("left_elbow", _ry(np.full(len(t), -0.9)))
    pose.apply("right_elbow", _ry(np.full(len(t), 0.9)))
    return pose


#: Motion name -> generator of a Y-up pose track for times ``t``.
MOTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], _Pose]] = {
    "walk": _walk,
    "arm_raise": _arm_raise,
    "squat": _squat,
    "twist": _twist,
}


def check_limits(poses: np.ndarray, tol: float = 1e-6) -> list[str]:
    """Joint-limit violations of ``(T, 72)`` poses (empty when all frames are within limits)."""
    problems = []
    for name, limit in JOINT_LIMITS.items():
        j = _J[name]
        angles = np.linalg.norm(poses[:, 3 * j : 3 * j + 3], axis=1)
        if angles.max(initial=0.0) > limit + tol:
            problems.append(f"{name}: {angles.max():.2f} rad > {limit}")
    for name, axis, sign in HINGES:
        j = _J[name]
        rotvec = poses[:, 3 * j : 3 * j + 3]
        off_axis = np.delete(rotvec, axis, axis=1)
        if np.any(sign * rotvec[:, axis] < -tol) or np.abs(off_axis).max(initial=0.0) > 1e-4:
            problems.append(f"{name}: bends the wrong way or off its hinge axis")
    return problems


def make_motion(
    motion: str, seconds: float = 2.0, fps: float = 120.0, seed: int = 0, betas_scale: float = 0.0
) -> MotionSequence:
    """A Y-up :class:`MotionSequence` of ``motion`` (one of :data:`MOTIONS`).

    ``betas_scale`` > 0 draws random shape coefficients (normal, this standard deviation) for
    the first 10 betas; 0 keeps the mean shape.
    """
    if motion not in MOTIONS:
        raise NrtoolError(f"unknown motion {motion!r}; choose {', '.join(MOTIONS)}")
    if not (seconds > 0 and fps > 0):
        raise NrtoolError("--seconds and --fps must be positive")
    frames = max(1, int(round(seconds * fps)))
    rng = np.random.default_rng([seed, list(MOTIONS).index(motion)])
    t = np.arange(frames) / fps
    pose = MOTIONS[motion](t, rng)
    poses = pose.rotvecs()
    problems = check_limits(poses)
    if problems:  # a bug in the generators, not a user error
        raise AssertionError(f"{motion}: joint limits exceeded: {'; '.join(problems)}")
    betas = np.zeros(16)
    if betas_scale > 0:
        betas[:10] = np.clip(rng.normal(0.0, betas_scale, 10), -2.5, 2.5)
    return MotionSequence(poses, pose.trans, betas, "neutral", float(fps), "smpl", "y", [])


def write_motion(
    path: str | os.PathLike[str],
    motion: str,
    seconds: float = 2.0,
    fps: float = 120.0,
    seed: int = 0,
    layout: str = "smplh",
    betas_scale: float = 0.0,
) -> MotionSequence:
    """Write one motion as an AMASS-format ``.npz`` (Z-up); returns the Y-up sequence.

    The Y-up -> Z-up conversion uses the procedural body's rest pelvis, so reading the file
    back with that body reproduces the designed motion exactly.
    """
    from nrtool.synth.body import JOINTS

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise NrtoolError(f"{path}: AMASS-format files are .npz")
    seq = make_motion(motion, seconds, fps, seed, betas_scale)
    write_amass(path, seq, layout=layout, pelvis=JOINTS[0])
    return seq


#: Seeds of the built-in training motions (:func:`procedural_training_poses`).
TRAINING_SEEDS = (0, 1, 2)


def procedural_training_poses() -> tuple[np.ndarray, list[str]]:
    """The built-in motions a draping model trains on (``train drape --poses procedural``):
    every motion of :data:`MOTIONS` with seeds :data:`TRAINING_SEEDS`, 2 s at 30 fps each.
    Returns ``(P, 72)`` Y-up poses and a name per motion (``procedural:MOTION:SEED``)."""
    poses, names = [], []
    for seed in TRAINING_SEEDS:
        for motion in MOTIONS:
            poses.append(make_motion(motion, seconds=2.0, fps=30.0, seed=seed).poses.astype(np.float32))
            names.append(f"procedural:{motion}:{seed}")
    return np.concatenate(poses), names
