"""Joint limits of the SMPL skeleton and the pose prior that keeps fitted poses plausible.

One table serves both: :mod:`nrtool.synth.poses` keeps its procedural motions inside it, and
:func:`pose_prior` penalises a fitted pose that leaves it (scan and image fitting,
``nrtool fit-scan``/``fit-image``). The prior is **not** the adversarial pose prior of the
thesis (Sec. 2.4.4 uses VPoser-like learnt priors trained on AMASS, which cannot ship): it is

- a squared hinge on every joint's rotation angle beyond :data:`JOINT_LIMITS`;
- for the hinge joints (knees, elbows, :data:`HINGES`), a squared hinge on flexion the wrong way
  and an L2 penalty on the two off-axis components (a knee does not twist);
- an L2 penalty on the body pose (joints 1-23, the root excluded), weighted by the caller:
  SMPLify's "stay near the mean pose" term without its Gaussian mixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrtool.body.body_model import SMPL_JOINT_NAMES

if TYPE_CHECKING:
    import torch

__all__ = ["JOINT_LIMITS", "HINGES", "pose_prior"]

#: Largest rotation angle (radians) each joint's local rotation may take (the root is free).
JOINT_LIMITS: dict[str, float] = {
    "left_hip": 2.0, "right_hip": 2.0, "spine1": 0.6, "left_knee": 2.4, "right_knee": 2.4,
    "spine2": 0.5, "left_ankle": 0.8, "right_ankle": 0.8, "spine3": 0.5, "left_foot": 0.6,
    "right_foot": 0.6, "neck": 0.8, "left_collar": 0.5, "right_collar": 0.5, "head": 0.8,
    "left_shoulder": 2.8, "right_shoulder": 2.8, "left_elbow": 2.5, "right_elbow": 2.5,
    "left_wrist": 1.2, "right_wrist": 1.2, "left_hand": 0.8, "right_hand": 0.8,
}  # fmt: skip
#: Hinge joints: (joint, axis, sign) — rotation about ``axis`` only, with this sign (flexion).
HINGES: tuple[tuple[str, int, float], ...] = (
    ("left_knee", 0, 1.0), ("right_knee", 0, 1.0), ("left_elbow", 1, -1.0), ("right_elbow", 1, 1.0),
)  # fmt: skip
_J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}


def pose_prior(poses: torch.Tensor, l2_weight: float = 1e-2) -> torch.Tensor:
    """``(B, 72)`` axis-angle poses -> ``(B,)`` penalty (rad²): limits + hinges + ``l2_weight`` · |θ₁..₂₃|².

    Zero for any pose of the procedural motions when ``l2_weight`` is 0 (they respect the same
    table); differentiable everywhere (the angle uses a small epsilon at the zero rotation).
    """
    import torch

    joints = poses.reshape(len(poses), 24, 3)
    limited = torch.tensor([_J[name] for name in JOINT_LIMITS], device=poses.device)
    limits = torch.tensor(list(JOINT_LIMITS.values()), dtype=poses.dtype, device=poses.device)
    angles = torch.sqrt((joints[:, limited] ** 2).sum(-1) + 1e-12)
    penalty = (torch.relu(angles - limits) ** 2).sum(-1)
    for name, axis, sign in HINGES:
        rotvec = joints[:, _J[name]]
        off = [k for k in range(3) if k != axis]
        penalty = penalty + torch.relu(-sign * rotvec[:, axis]) ** 2 + (rotvec[:, off] ** 2).sum(-1)
    return penalty + l2_weight * (joints[:, 1:] ** 2).sum((-1, -2))
