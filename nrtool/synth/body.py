"""A procedural SMPL-format body: a stand-in for the licensed SMPL model in tests and demos.

What it is: a smooth, watertight, genus-0 humanoid surface (marching cubes of a smooth union of
ellipsoids and tapered capsules; a few thousand vertices) in SMPL's conventions — metres, Y up,
facing +Z, the body's left on +X, rest pose a T-pose, root joint near ``(0, -0.22, 0)``, feet near
``y = -1.15`` — stored with every array ``smplx.SMPL`` reads from a real model file:

- ``v_template (V, 3)``, ``f (F, 3)``;
- ``kintree_table (2, 24)``: SMPL's 24 joints, in SMPL's order, with SMPL's parents;
- ``J_regressor (24, V)``: each joint is an exact affine combination of nearby vertices, so
  ``J_regressor @ v_template`` gives the designed joint positions (``J``) and joints follow
  shape changes;
- ``weights (V, 24)``: smooth skinning weights from the body parts (a soft-min of the parts'
  distance fields): rigid in the middle of a part, blended over a few cm at each joint;
- ``shapedirs (V, 3, 10)``: ten shape directions, one unit of beta each:
  0 height (uniform scale about the floor point, +4 %), 1 girth (torso +10 %, limbs +6 %
  radially), 2 shoulder width (+2.5 cm each side), 3 hip width, 4 leg length (+8 %),
  5 arm length (+8 %), 6 belly (+3.5 cm forward), 7 head size (+10 %), 8 torso length (+6 %),
  9 limb thickness (+10 % radially);
- ``posedirs (V, 3, 207)``: zero (no pose-corrective shapes: plain linear blend skinning);
- ``nrtool_vertex_ids_*``: the vertices smplx uses as extra keypoints (nose, eyes, ears, toes,
  heels, finger tips), since this topology is not SMPL's.

What it is not: SMPL. Its shape space is hand-designed, not learned from scans; it has no
fingers, face or pose correctives; its vertices do not correspond to SMPL's 6890, so anything
keyed to SMPL vertex ids (SMPL UV maps, SMPL-specific segmentations) does not apply. It exists
so that every body/pose/garment code path runs without the licensed files, through exactly the
loader and ``smplx`` forward pass a real model goes through.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nrtool.body.body_model import (
    EXTRA_VERTEX_NAMES,
    NUM_JOINTS,
    SMPL_PARENTS,
    VERTEX_IDS_PREFIX,
)
from nrtool.errors import NrtoolError

__all__ = ["JOINTS", "make_body", "write_body", "SHAPE_DIRECTIONS"]

NUM_BETAS = 10
SHAPE_DIRECTIONS: tuple[str, ...] = (
    "height", "girth", "shoulder_width", "hip_width", "leg_length",
    "arm_length", "belly", "head_size", "torso_length", "limb_thickness",
)  # fmt: skip

# Left-side and centre joint positions (metres); right-side joints mirror x.
_LEFT_JOINTS = {
    0: (0.0, -0.22, 0.02),
    1: (0.08, -0.31, 0.01),
    3: (0.0, -0.11, 0.0),
    4: (0.10, -0.69, 0.01),
    6: (0.0, 0.02, 0.01),
    7: (0.095, -1.075, -0.03),
    9: (0.0, 0.09, 0.02),
    10: (0.105, -1.135, 0.08),
    12: (0.0, 0.29, 0.0),
    13: (0.075, 0.205, 0.0),
    15: (0.0, 0.37, 0.04),
    16: (0.175, 0.22, -0.01),
    18: (0.43, 0.215, -0.025),
    20: (0.675, 0.215, -0.03),
    22: (0.77, 0.21, -0.03),
}
_MIRROR = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 23: 22}


def _joints() -> np.ndarray:
    joints = np.zeros((NUM_JOINTS, 3))
    for j, p in _LEFT_JOINTS.items():
        joints[j] = p
    for right, left in _MIRROR.items():
        joints[right] = joints[left] * (-1.0, 1.0, 1.0)
    return joints


#: Designed rest-pose joint positions ``(24, 3)`` (SMPL order).
JOINTS = _joints()
FLOOR_Y = -1.175

# Body parts: (kind, joint driving it, parameters). "cap": tapered capsule a -> b with radii
# ra -> rb; "ell": ellipsoid centre + radii. Left side only; right side mirrored.
_LEFT_PARTS: list[tuple[str, int, tuple]] = [
    ("ell", 0, ((0.0, -0.26, 0.0), (0.165, 0.12, 0.11))),
    ("ell", 3, ((0.0, -0.09, 0.015), (0.145, 0.13, 0.105))),
    ("ell", 6, ((0.0, 0.03, 0.01), (0.152, 0.12, 0.11))),
    ("ell", 9, ((0.0, 0.14, 0.0), (0.165, 0.12, 0.115))),
    ("cap", 13, ((0.02, 0.215, -0.01), (0.165, 0.22, -0.01), 0.06, 0.055)),
    ("cap", 12, ((0.0, 0.22, -0.005), (0.0, 0.36, 0.005), 0.055, 0.052)),
    ("ell", 15, ((0.0, 0.46, 0.025), (0.08, 0.11, 0.097))),
    ("cap", 16, ((0.165, 0.22, -0.01), (0.43, 0.215, -0.025), 0.053, 0.041)),
    ("cap", 18, ((0.43, 0.215, -0.025), (0.675, 0.215, -0.03), 0.041, 0.031)),
    ("ell", 20, ((0.735, 0.212, -0.03), (0.065, 0.03, 0.05))),
    ("ell", 22, ((0.81, 0.208, -0.03), (0.06, 0.024, 0.045))),
    ("cap", 1, ((0.085, -0.30, 0.01), (0.10, -0.69, 0.012), 0.085, 0.054)),
    ("cap", 4, ((0.10, -0.69, 0.012), (0.095, -1.075, -0.03), 0.052, 0.036)),
    ("ell", 7, ((0.098, -1.12, 0.0), (0.048, 0.045, 0.09))),
    ("ell", 10, ((0.105, -1.14, 0.11), (0.047, 0.03, 0.075))),
]
_SMIN_K = 0.012  # blend radius of the smooth union (m)
_WEIGHT_TAU = 0.012  # softness of the skinning weights (m of distance-field difference)


def _parts() -> list[tuple[str, int, tuple]]:
    parts = list(_LEFT_PARTS)
    mirror_joint = {v: k for k, v in _MIRROR.items()}

    def flip(p: tuple) -> tuple:
        return (-p[0], p[1], p[2])

    for kind, joint, params in _LEFT_PARTS:
        if joint not in mirror_joint:
            continue
        if kind == "cap":
            a, b, ra, rb = params
            parts.append((kind, mirror_joint[joint], (flip(a), flip(b), ra, rb)))
        else:
            c, r = params
            parts.append((kind, mirror_joint[joint], (flip(c), r)))
    return parts


PARTS = _parts()


def _part_field(kind: str, params: tuple, p: np.ndarray) -> np.ndarray:
    """Approximate signed distance of points ``(N, 3)`` to one part (negative inside)."""
    if kind == "cap":
        a, b, ra, rb = (np.asarray(params[0]), np.asarray(params[1]), params[2], params[3])
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
        closest = a + t[:, None] * ab
        return np.linalg.norm(p - closest, axis=1) - (ra + (rb - ra) * t)
    centre, radii = np.asarray(params[0]), np.asarray(params[1])
    q = (p - centre) / radii
    return (np.linalg.norm(q, axis=1) - 1.0) * radii.min()


def _part_fields(p: np.ndarray) -> np.ndarray:
    """``(N, P)`` distance field of every part."""
    return np.stack([_part_field(kind, params, p) for kind, _, params in PARTS], axis=1)


def _smooth_union(fields: np.ndarray, k: float = _SMIN_K) -> np.ndarray:
    """Soft minimum over parts (log-sum-exp form, symmetric in the parts)."""
    m = fields.min(axis=1)
    return m - k * np.log(np.exp(-(fields - m[:, None]) / k).sum(axis=1))


def body_field(p: np.ndarray) -> np.ndarray:
    """Implicit function of the procedural body at points ``(N, 3)``: negative inside."""
    return _smooth_union(_part_fields(p))


def _marching_cubes(resolution: float) -> tuple[np.ndarray, np.ndarray]:
    from skimage.measure import marching_cubes

    lo = np.array([-0.95, FLOOR_Y - 0.06, -0.2])
    hi = np.array([0.95, 0.64, 0.26])
    counts = np.ceil((hi - lo) / resolution).astype(int) + 1
    axes = [lo[i] + resolution * np.arange(counts[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = body_field(grid).reshape(counts)
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=(resolution,) * 3)
    verts = verts + lo
    faces = faces.astype(np.int64)
    # Outward orientation: the enclosed volume must be positive.
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    if np.einsum("ij,ij->i", a, np.cross(b, c)).sum() < 0:
        faces = faces[:, ::-1].copy()
    # Keep the largest connected component (marching cubes leaves none other here; be sure).
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(verts),) * 2)
    _, labels = connected_components(graph, directed=False)
    main = np.bincount(labels).argmax()
    keep_face = labels[faces[:, 0]] == main
    used = np.unique(faces[keep_face])
    remap = -np.ones(len(verts), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return verts[used], remap[faces[keep_face]]


def _skinning_weights(verts: np.ndarray) -> np.ndarray:
    fields = _part_fields(verts)
    logits = -(fields - fields.min(axis=1, keepdims=True)) / _WEIGHT_TAU
    part_w = np.exp(logits)
    weights = np.zeros((len(verts), NUM_JOINTS))
    for index, (_, joint, _) in enumerate(PARTS):
        weights[:, joint] += part_w[:, index]
    weights /= weights.sum(axis=1, keepdims=True)
    weights[weights < 1e-3] = 0.0  # sparse, like SMPL's
    return weights / weights.sum(axis=1, keepdims=True)


def _joint_regressor(verts: np.ndarray, joints: np.ndarray, k: int = 40) -> np.ndarray:
    """``(24, V)``: each joint an affine combination of its ``k`` nearest vertices, exact on the template."""
    from scipy.optimize import lsq_linear
    from scipy.spatial import cKDTree

    tree = cKDTree(verts)
    regressor = np.zeros((NUM_JOINTS, len(verts)))
    for j, joint in enumerate(joints):
        # More neighbours until the joint lies inside their hull (non-negative weights).
        for kk in (k, 2 * k, 4 * k, 8 * k):
            dist, idx = tree.query(joint, k=min(kk, len(verts)))
            w0 = 1.0 / (dist + 1e-3)
            w0 /= w0.sum()
            a = np.vstack([verts[idx].T, np.ones(len(idx))])  # (4, k): sum_i w_i [v_i; 1] = [joint; 1]
            b = np.append(joint, 1.0)
            # Non-negative weights near w0 that reproduce the joint (heavily weighted constraint) ...
            fit = lsq_linear(np.vstack([np.eye(len(idx)), 1e3 * a]), np.concatenate([w0, 1e3 * b]), bounds=(0.0, np.inf))
            # ... then the smallest change that makes them exact (J_regressor @ v_template == J).
            w = fit.x + a.T @ np.linalg.solve(a @ a.T, b - a @ fit.x)
            if w.min() > -1e-3:
                break
        regressor[j] = 0.0
        regressor[j, idx] = w
    return regressor


def _shape_directions(verts: np.ndarray, weights: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """``(V, 3, 10)`` displacement per unit beta of each direction in :data:`SHAPE_DIRECTIONS`."""
    n = len(verts)
    dirs = np.zeros((n, 3, NUM_BETAS))
    x, y = verts[:, 0], verts[:, 1]
    side = np.sign(x) + (x == 0)
    joints = JOINTS

    def part_weight(*js: int) -> np.ndarray:
        return weights[:, list(js)].sum(axis=1)

    arms = part_weight(16, 18, 20, 22, 17, 19, 21, 23)
    legs = part_weight(1, 2, 4, 5, 7, 8, 10, 11)

    # Radial offset of each vertex from the axis of the part(s) it belongs to, blended by weight.
    radial = np.zeros((n, 3))
    limb_radial = np.zeros((n, 3))
    fields = _part_fields(verts)
    field_w = np.exp(-(fields - fields.min(axis=1, keepdims=True)) / _WEIGHT_TAU)
    field_w /= field_w.sum(axis=1, keepdims=True)
    limb_joints = {1, 2, 4, 5, 16, 17, 18, 19}
    torso_joints = {0, 3, 6, 9}
    for index, (kind, joint, params) in enumerate(PARTS):
        if kind == "cap":
            a, b = np.asarray(params[0]), np.asarray(params[1])
            ab = b - a
            t = np.clip(((verts - a) @ ab) / (ab @ ab), 0.0, 1.0)
            off = verts - (a + t[:, None] * ab)
        else:
            off = verts - np.asarray(params[0])
            off[:, 1] = 0.0  # torso parts grow horizontally
        if joint in torso_joints:
            radial += field_w[:, [index]] * off
        if joint in limb_joints:
            limb_radial += field_w[:, [index]] * off

    # 0 height: uniform scale about the floor point under the body.
    floor = np.array([0.0, FLOOR_Y, 0.0])
    dirs[:, :, 0] = 0.04 * (verts - floor)
    # 1 girth: torso +10 %, limbs +6 % radially; arms and legs move out with the torso.
    dirs[:, :, 1] = 0.10 * radial + 0.06 * limb_radial
    dirs[:, 0, 1] += 0.016 * side * arms + 0.008 * side * legs
    # 2 shoulder width: arms (and half the collar) move out.
    collar = part_weight(13, 14)
    dirs[:, 0, 2] = 0.025 * side * (arms + 0.5 * collar)
    # 3 hip width: pelvis widens, legs move out.
    dirs[:, 0, 3] = 0.12 * x * part_weight(0) + 0.02 * side * legs
    # 4 leg length: legs stretch below the hips, everything above rises with them.
    hip_y = joints[1, 1]
    dirs[:, 1, 4] = 0.08 * (legs * (y - FLOOR_Y) + (1.0 - legs) * (hip_y - FLOOR_Y))
    # 5 arm length: arms stretch outward from the shoulder.
    shoulder_x = joints[16, 0]
    dirs[:, 0, 5] = 0.08 * (x - side * shoulder_x) * arms
    # 6 belly: the front of the abdomen moves forward.
    belly = part_weight(3) + 0.5 * part_weight(6) + 0.3 * part_weight(0)
    dirs[:, 2, 6] = 0.035 * belly * np.clip(normals[:, 2], 0.0, None)
    # 7 head size: scale about the top of the neck.
    neck_top = np.array([0.0, 0.34, 0.0])
    dirs[:, :, 7] = 0.10 * (verts - neck_top) * part_weight(15)[:, None]
    # 8 torso length: everything between pelvis and neck stretches upward; above moves rigidly.
    pelvis_y, neck_y = joints[0, 1], joints[12, 1]
    dirs[:, 1, 8] = 0.06 * np.clip(y - pelvis_y, 0.0, neck_y - pelvis_y)
    # 9 limb thickness.
    dirs[:, :, 9] = 0.10 * limb_radial
    return dirs


def _vertex_ids(verts: np.ndarray) -> dict[str, int]:
    """Vertices nearest to the designed positions of smplx's extra keypoints."""
    from scipy.spatial import cKDTree

    targets = {
        "nose": (0.0, 0.44, 0.14), "leye": (0.03, 0.48, 0.12), "reye": (-0.03, 0.48, 0.12),
        "lear": (0.085, 0.46, 0.02), "rear": (-0.085, 0.46, 0.02),
        "LBigToe": (0.085, -1.14, 0.19), "LSmallToe": (0.14, -1.14, 0.16), "LHeel": (0.10, -1.16, -0.09),
        "lthumb": (0.78, 0.21, 0.03), "lindex": (0.87, 0.21, 0.0), "lmiddle": (0.875, 0.21, -0.02),
        "lring": (0.87, 0.21, -0.04), "lpinky": (0.85, 0.21, -0.07),
    }  # fmt: skip
    for name in list(targets):
        if name[0] in "lL":
            rname = ("R" if name[0] == "L" else "r") + name[1:]
            tx, ty, tz = targets[name]
            targets[rname] = (-tx, ty, tz)
    tree = cKDTree(verts)
    return {name: int(tree.query(targets[name])[1]) for name in EXTRA_VERTEX_NAMES}


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    fn = np.cross(b - a, c - a)
    normals = np.zeros_like(verts)
    for k in range(3):
        np.add.at(normals, faces[:, k], fn)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def make_body(resolution: float = 0.02) -> dict[str, np.ndarray]:
    """The procedural body's arrays, keyed as in an SMPL model file (see module docstring).

    ``resolution`` is the marching-cubes grid step in metres: 0.02 gives about 5k vertices,
    0.03 about 2k. The result depends on nothing else.
    """
    if not 0.008 <= resolution <= 0.05:
        raise NrtoolError(f"--resolution must be between 0.008 and 0.05 m, got {resolution}")
    verts, faces = _marching_cubes(resolution)
    weights = _skinning_weights(verts)
    normals = _vertex_normals(verts, faces)
    kintree = np.zeros((2, NUM_JOINTS), dtype=np.uint32)
    kintree[0] = np.array(SMPL_PARENTS, dtype=np.int64).astype(np.uint32)  # root: 2**32 - 1, as in SMPL
    kintree[1] = np.arange(NUM_JOINTS)
    data: dict[str, np.ndarray] = {
        "v_template": verts.astype(np.float64),
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": _joint_regressor(verts, JOINTS),
        "J": JOINTS.copy(),
        "kintree_table": kintree,
        "shapedirs": _shape_directions(verts, weights, normals),
        "posedirs": np.zeros((len(verts), 3, 9 * (NUM_JOINTS - 1)), dtype=np.float32),
        "bs_style": np.array("lbs"),
        "bs_type": np.array("lrotmin"),
        "nrtool_synthetic": np.array(True),
        "nrtool_shape_directions": np.array(SHAPE_DIRECTIONS),
    }
    for name, index in _vertex_ids(verts).items():
        data[VERTEX_IDS_PREFIX + name] = np.array(index, dtype=np.int64)
    return data


def write_body(path: str | os.PathLike[str], resolution: float = 0.02) -> dict[str, np.ndarray]:
    """Write :func:`make_body` as an ``.npz`` atomically; returns the arrays."""
    from nrtool.artifacts.core import atomic_output

    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise NrtoolError(f"{path}: the procedural body is written as .npz (SMPL's own .pkl needs chumpy objects)")
    data = make_body(resolution)
    with atomic_output(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **data)
    return data
