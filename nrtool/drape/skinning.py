"""The skinning stage of draping: ``W(x)`` and ``Δx(x, β)``, learnt once per body model (App. A.1.4).

A garment vertex ``x`` lives in the canonical frame: the body's rest pose at zero pose and zero
betas (SMPL's T-pose). Before any garment-specific displacement it is dressed on a body of shape
``β`` and pose ``θ`` like the skin under it:

    x' = x + Δx(x, β)                                   (the body's shape change near x)
    y  = Σ_j W_j(x) · A_j(β, θ) · [x'; 1]               (linear blend skinning)

with ``A(β, θ)`` the body's per-joint transforms (:class:`nrtool.body.body_model.BodyOutput`
``.transforms``; translation included, canonical transforms the identity).

``W`` and ``Δx`` are smooth fields over space, not per-vertex tables, because garment vertices
are not body vertices and sit up to ~20 cm off the skin. Both are MLPs (:class:`SkinningMLP`):
``W: 3 → 24`` with a softmax (weights are non-negative and sum to 1), ``Δx: [x, β] → 3``. They
are fitted to the body's own skinning weights and shape displacements at the nearest rest body
vertex of points sampled on and around the rest body (:class:`SkinningTrainer`), and then shared
by every garment draped on that body.

The same nearest-vertex rule, applied directly without a network, is the baseline the draping
network is compared with (:func:`nearest_vertex_skinning`, :func:`nearest_vertex_baseline`).

Training (:func:`train_skinning`, or :func:`fit_skinning` in memory) goes through the one
training loop (:func:`nrtool.training.run_training`: resume, time limit, the best epoch on
held-out points); the checkpoint (format ``nrtool-skinning``) records what the field was
trained on, so that a later command refuses another body in one line
(:func:`check_skinning_body`).

Loss and its weighting. Per step, ``points`` samples around the rest body, each with
``betas_per_step`` random shapes of its own (β ~ U[−r, r]^nb, one per point and repeat: the target
is linear in β, and one β shared by every point of a step shows the network few directions of
the shape space). ``l_weights`` = mean KL divergence ``Σ_j W*_j log(W*_j / W_j(x))``: the
softmax's own loss, whose gradient in the logits is ``W − W*``. (An L1 loss on the weights, our
first choice, stalled: after 400 tiny steps its held-out mean ``Σ|W − W*|`` was 0.86 against
0.32 with this loss, and 0.76 after 1200.) ``l_shape`` = mean Euclidean error of ``Δx`` in
centimetres. ``loss = lambda_weights · l_weights + l_shape``. The two networks share no parameter
and Adam scales each parameter's step by its own gradient magnitude, so ``lambda_weights`` only
sets how the total reads (both terms are of order 0.1-1 in these units); it is kept at 1. The
learning rate follows a cosine decay to ``lr_final × lr`` over the run. Δx starts at zero (its
output layer is zero-initialised) and reads ``β / beta_scale`` (the training range), inputs of
order 1 like ``x``; both roughly halved its error early in training.

Accuracy (2-core CPU, the procedural body, body vertices dressed on held-out random poses of
0.3 rad per joint and shapes from U[−3, 3]^10): the ``tiny`` preset trains in ~75 s to a mean
error of ~5 mm (95th percentile ~12.5 mm); nearly all of it is Δx's (W alone: ~1.4 mm).
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.drape.config import SKINNING_PRESETS, SkinningSettings, skinning_preset
from nrtool.errors import InputFileError, NrtoolError

if TYPE_CHECKING:
    from nrtool.body.body_model import BodyModel
    from nrtool.progress import Progress
    from nrtool.training import TrainingRun, TrainReport

__all__ = [
    "NUM_JOINTS",
    "SKINNING_FORMAT",
    "SKINNING_PRESETS",
    "SKINNING_VERSION",
    "SkinningField",
    "SkinningMLP",
    "SkinningSettings",
    "SkinningTrainer",
    "body_identity",
    "body_shape_displacement",
    "check_skinning_body",
    "fit_skinning",
    "linear_blend_skinning",
    "load_skinning",
    "nearest_body_targets",
    "nearest_body_vertices",
    "nearest_vertex_baseline",
    "nearest_vertex_skinning",
    "save_skinning",
    "skinning_from_checkpoint",
    "skinning_preset",
    "train_skinning",
]

SKINNING_FORMAT = "nrtool-skinning"
SKINNING_VERSION = 1
NUM_JOINTS = 24
#: Slope of the LeakyReLU between layers (the draping network's, :mod:`nrtool.drape.model`).
NEGATIVE_SLOPE = 0.2
#: Standard deviation (radians, per axis-angle component of every joint) of the held-out poses
#: that validation skins points with: ~17° per joint, compounding along the limbs.
VAL_POSE_STD = 0.3


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


# SkinningSettings, SKINNING_PRESETS and skinning_preset live in nrtool.drape.config (torch-free,
# so commands check options before importing torch); imported above and re-exported.


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------


class SkinningMLP(nn.Module):
    """``(..., in_dim) -> (..., out_dim)``: ``layers`` weight-normed Linear + LeakyReLU layers of
    ``hidden`` units, the input concatenated again to the input of the middle one, then a plain
    Linear output layer (App. A.1.4, in DeepSDF's form).

    The layer before the middle one is ``hidden − in_dim`` wide, so that with the input appended
    every hidden layer reads ``hidden`` values (the thesis: "each layer has 256 nodes except the
    middle and the last ones"). Weight normalisation (``torch.nn.utils.parametrizations``)
    decouples each layer's scale from its direction, which keeps a deep narrow MLP trainable at
    a high learning rate. LeakyReLU (slope 0.2, as the draping network) follows the official
    code; the thesis' text says ReLU.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, layers: int = 8,
                 negative_slope: float = NEGATIVE_SLOPE) -> None:
        super().__init__()
        if layers < 2 or hidden <= in_dim:
            raise ValueError(f"SkinningMLP needs at least 2 layers wider than its input, got {layers} x {hidden} for {in_dim}")
        from torch.nn.utils.parametrizations import weight_norm

        self.in_dim, self.out_dim, self.hidden, self.depth = in_dim, out_dim, hidden, layers
        self.skip = layers // 2  # index of the layer that reads [h, x]: layer 4 of 0..7
        linears = []
        width = in_dim
        for index in range(layers):
            if index == self.skip:
                width += in_dim
            out = hidden - in_dim if index + 1 == self.skip else hidden
            linears.append(weight_norm(nn.Linear(width, out)))
            width = out
        self.layers = nn.ModuleList(linears)
        self.activation = nn.LeakyReLU(negative_slope)
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for index, layer in enumerate(self.layers):
            if index == self.skip:
                h = torch.cat([h, x], dim=-1)
            h = self.activation(layer(h))
        return self.out(h)


def _pad_betas(betas: Any, batch: int | None, count: int, device: torch.device) -> torch.Tensor:
    """``(B, k)`` or ``(k,)`` betas -> ``(B, count)`` float32: zeros beyond ``k``, extra ones dropped
    (the draping network always passes 10; a body or field may use fewer)."""
    b = torch.as_tensor(betas, dtype=torch.float32, device=device)
    if b.ndim == 1:
        b = b[None]
    if batch is not None and b.shape[0] != batch:
        b = b.expand(batch, -1) if b.shape[0] == 1 else b
        if b.shape[0] != batch:
            raise NrtoolError(f"betas must have shape ({batch}, k) or (k,), got {tuple(b.shape)}")
    out = torch.zeros((b.shape[0], count), dtype=torch.float32, device=device)
    k = min(b.shape[1], count)
    out[:, :k] = b[:, :k]
    return out


class SkinningField(nn.Module):
    """``W(x)`` (``weights``: 3 → 24, softmax) and ``Δx(x, β)`` (``shape``: 3 + nb → 3, metres).

    ``num_betas`` 0 (a body without a shape space, a rigged mesh) leaves ``shape`` None: the
    displacement is then zero.
    """

    def __init__(self, num_betas: int, hidden: int = 256, layers: int = 8, negative_slope: float = NEGATIVE_SLOPE,
                 num_joints: int = NUM_JOINTS, beta_scale: float = 1.0) -> None:
        super().__init__()
        self.num_betas, self.hidden, self.depth = int(num_betas), int(hidden), int(layers)
        self.negative_slope, self.num_joints = float(negative_slope), int(num_joints)
        # Betas enter Δx divided by the range they were trained on: inputs of order 1, like x.
        self.beta_scale = float(beta_scale) if beta_scale > 0 else 1.0
        self.weights = SkinningMLP(3, num_joints, hidden, layers, negative_slope)
        self.shape: SkinningMLP | None = None
        if self.num_betas > 0:
            self.shape = SkinningMLP(3 + self.num_betas, 3, hidden, layers, negative_slope)
            # Start at Δx = 0 (the rest body), not at a random displacement of tens of cm.
            nn.init.zeros_(self.shape.out.weight)
            nn.init.zeros_(self.shape.out.bias)

    def spec(self) -> dict[str, Any]:
        """What rebuilds this field (plain data, stored in the checkpoint)."""
        return {"num_betas": self.num_betas, "hidden": self.hidden, "layers": self.depth,
                "negative_slope": self.negative_slope, "num_joints": self.num_joints,
                "beta_scale": self.beta_scale, "has_shape": self.shape is not None}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SkinningField:
        field = cls(int(spec["num_betas"]), int(spec["hidden"]), int(spec["layers"]), float(spec["negative_slope"]),
                    int(spec["num_joints"]), float(spec["beta_scale"]))
        if (field.shape is not None) != bool(spec["has_shape"]):
            raise ValueError("has_shape does not match num_betas")
        return field

    def skinning_weights(self, points: torch.Tensor) -> torch.Tensor:
        """``W(x)``: ``(N, 3)`` or ``(B, N, 3)`` canonical points -> ``(..., 24)``, rows summing to 1."""
        return torch.softmax(self.weights(points), dim=-1)

    def shape_displacement(self, points: torch.Tensor, betas: Any) -> torch.Tensor:
        """``Δx(x, β)``: ``(B, N, 3)`` (or ``(N, 3)``, shared) points and ``(B, k)`` betas -> ``(B, N, 3)``.

        Betas beyond the field's ``num_betas`` are ignored, missing ones are zero. Zero for a
        field without a shape branch.
        """
        b = _pad_betas(betas, points.shape[0] if points.ndim == 3 else None, self.num_betas, points.device)
        batch = b.shape[0]
        if points.ndim == 2:
            points = points[None].expand(batch, -1, -1)
        if self.shape is None:
            return torch.zeros_like(points)
        return self.point_shape_displacement(points, b[:, None].expand(-1, points.shape[1], -1))

    def point_shape_displacement(self, points: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """``Δx`` with a shape per point: ``(..., 3)`` points, ``(..., num_betas)`` betas -> ``(..., 3)``."""
        if self.shape is None:
            return torch.zeros_like(points)
        return self.shape(torch.cat([points, betas / self.beta_scale], dim=-1))

    def canonical(self, points: torch.Tensor, betas: Any) -> torch.Tensor:
        """``x + Δx(x, β)``: ``(N, 3)`` or ``(B, N, 3)`` points, ``(B, k)`` betas -> ``(B, N, 3)``."""
        return points + self.shape_displacement(points, betas)

    def skin(self, points: torch.Tensor, transforms: torch.Tensor, betas: Any = None,
             weights: torch.Tensor | None = None) -> torch.Tensor:
        """Dress ``(N, 3)`` canonical points on ``B`` bodies: ``LBS(x + Δx(x, β), W(x), A)``.

        ``transforms (B, 24, 4, 4)``: :attr:`BodyOutput.transforms` of the same ``betas`` (None:
        zero shape). ``weights``: precomputed ``W(x)`` (``(N, 24)``; per garment, once).
        Returns ``(B, N, 3)``.
        """
        batch = transforms.shape[0]
        betas = torch.zeros((batch, max(self.num_betas, 1)), device=points.device) if betas is None else betas
        w = self.skinning_weights(points) if weights is None else weights
        return linear_blend_skinning(self.canonical(points, betas), w, transforms)


# --------------------------------------------------------------------------------------------
# The body's own skinning, at the nearest rest vertex
# --------------------------------------------------------------------------------------------

# One KD-tree per loaded body (rest vertices never change); freed with the body.
_TREES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _rest_tree(body: BodyModel) -> Any:
    tree = _TREES.get(body)
    if tree is None:
        from pykdtree.kdtree import KDTree

        tree = KDTree(np.ascontiguousarray(body.v_template, dtype=np.float64))
        _TREES[body] = tree
    return tree


def nearest_body_vertices(points: Any, body: BodyModel) -> torch.Tensor:
    """Index ``(N,)`` (int64) of each canonical point's nearest rest body vertex (zero betas).

    ``points (N, 3)``: a tensor (the result is on its device) or an array (on the CPU). A KD-tree
    on the CPU: the rest body is fixed, so one tree serves every query of a session, and it beats
    brute force on a CPU by orders of magnitude for garment-sized queries.
    """
    device = points.device if isinstance(points, torch.Tensor) else torch.device("cpu")
    array = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    array = np.ascontiguousarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise NrtoolError(f"points must have shape (N, 3), got {array.shape}")
    if len(array) == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    _, index = _rest_tree(body).query(array, k=1)
    return torch.as_tensor(np.asarray(index, dtype=np.int64), device=device)


def _body_weights(body: BodyModel, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(body.weights, dtype=torch.float32, device=device)


def nearest_body_targets(points: Any, body: BodyModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The body's skinning weights at each point's nearest rest vertex: ``(N, 24)`` float32 and
    the vertex index ``(N,)`` (on ``points``' device)."""
    index = nearest_body_vertices(points, body)
    return _body_weights(body, index.device)[index], index


def body_shape_displacement(body: BodyModel, betas: Any) -> torch.Tensor:
    """``v_shaped − v_template`` of every body vertex: ``(B, k)`` or ``(k,)`` betas -> ``(B, V, 3)``.

    For an SMPL model this is ``shapedirs · β`` (smplx's ``blend_shapes`` on the model's own
    ``shapedirs``); betas beyond the body's count are ignored. Zero for a body without a shape
    space. On the body's device.
    """
    b = _pad_betas(betas, None, body.num_betas, body.device)
    if not body.has_shape_space:
        return torch.zeros((b.shape[0], body.num_vertices, 3), dtype=torch.float32, device=body.device)
    from smplx.lbs import blend_shapes

    return blend_shapes(b, body.smpl.shapedirs)


def linear_blend_skinning(points: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """``y = Σ_j w_j A_j [x; 1]``: points ``(B, N, 3)`` (or ``(N, 3)``, shared), weights ``(B, N, J)``
    or ``(N, J)``, transforms ``(B, J, 4, 4)`` -> ``(B, N, 3)``. Differentiable in all three.

    The weights blend the top 3x4 rows of the transforms first (one ``(N, J) @ (J, 12)`` product
    per body), then each point is transformed once: cheaper than transforming every point by
    every joint.
    """
    batch, joints = transforms.shape[:2]
    rows = transforms[:, :, :3, :].reshape(batch, joints, 12)
    blended = torch.matmul(weights, rows)  # (B, N, 12); (N, J) broadcasts over the batch
    blended = blended.view(batch, -1, 3, 4)
    if points.ndim == 2:
        points = points[None].expand(batch, -1, -1)
    return torch.einsum("bnrc,bnc->bnr", blended[..., :3], points) + blended[..., 3]


def nearest_vertex_skinning(points: torch.Tensor, body: BodyModel, betas: Any = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline's skinning of canonical points: each takes its nearest rest body vertex's
    weights and shape displacement. ``points (N, 3)``, ``betas (B, k)`` (None: one zero shape)
    -> weights ``(N, 24)`` and displacements ``(B, N, 3)``, on ``points``' device."""
    weights, index = nearest_body_targets(points, body)
    betas = torch.zeros((1, max(body.num_betas, 1))) if betas is None else betas
    displacement = body_shape_displacement(body, betas).to(points.device)[:, index]
    return weights, displacement


def nearest_vertex_baseline(points: torch.Tensor, body: BodyModel, poses: Any, betas: Any = None, trans: Any = None
                            ) -> torch.Tensor:
    """Canonical points ``(N, 3)`` dressed on ``B`` bodies by the nearest-vertex baseline.

    ``poses (B, 72)``, ``betas (B, k)`` or ``(k,)`` (None: zero), ``trans (B, 3)`` (None: zero).
    Returns ``(B, N, 3)``. At a rest body vertex (with a body without pose correctives) it is
    exactly that vertex of :meth:`BodyModel.forward`.
    """
    out = body.forward(poses, betas, trans)
    batch = out.transforms.shape[0]
    betas_t = torch.zeros((batch, max(body.num_betas, 1))) if betas is None else _pad_betas(
        betas, batch, max(body.num_betas, 1), body.device)
    weights, displacement = nearest_vertex_skinning(points, body, betas_t)
    transforms = out.transforms.to(points.device)
    return linear_blend_skinning(points[None] + displacement, weights, transforms)


# --------------------------------------------------------------------------------------------
# Body identity
# --------------------------------------------------------------------------------------------


def body_identity(body: BodyModel) -> str:
    """SHA-256 of what the skinning stage learns from a body: rest vertices, faces, skinning
    weights, joint regressor (or rest joints), parents and shape directions.

    Only stored arrays enter it, never computed ones (computed joints differ in the last bit
    between a CPU and a GPU): the same body loaded from another file (``.pkl`` and ``.npz``),
    or on another device, has the same identity.
    """
    digest = hashlib.sha256()
    parts: list[np.ndarray] = [np.asarray(body.v_template, np.float32), np.asarray(body.faces, np.int64),
                               np.asarray(body.weights, np.float32), np.asarray(body.parents, np.int64)]
    if body.kind == "smpl":
        parts.append(body.smpl.J_regressor.detach().cpu().numpy().astype(np.float32))
        if body.has_shape_space:
            parts.append(body.smpl.shapedirs.detach().cpu().numpy().astype(np.float32))
    else:
        parts.append(np.asarray(body.rest_joints(), np.float32))
    for array in parts:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class _RestSurface:
    """The rest body's surface, for sampling: area-weighted points with smooth normals (numpy)."""

    def __init__(self, body: BodyModel) -> None:
        v = np.asarray(body.v_template, dtype=np.float64)
        f = np.asarray(body.faces, dtype=np.int64)
        cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        areas = 0.5 * np.linalg.norm(cross, axis=1)
        normals = np.zeros_like(v)
        for k in range(3):  # area-weighted vertex normals (|cross| = 2 x area)
            np.add.at(normals, f[:, k], cross)
        self.vertices, self.faces = v, f
        self.normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        self.probabilities = areas / areas.sum()

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``count`` uniform surface points and their interpolated unit normals, ``(count, 3)`` each."""
        face = self.faces[rng.choice(len(self.faces), size=count, p=self.probabilities)]
        r1, r2 = rng.random(count), rng.random(count)
        s = np.sqrt(r1)
        bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)[:, :, None]  # uniform on the triangle
        points = (bary * self.vertices[face]).sum(1)
        normals = (bary * self.normals[face]).sum(1)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        return points, normals


def sample_around_body(surface: _RestSurface, count: int, settings: SkinningSettings, rng: np.random.Generator
                       ) -> np.ndarray:
    """``(count, 3)`` float32 points on and around the rest body, where garments are.

    Surface samples moved along the normal: most by U[−inside, near] (garments sit 0-10 cm off
    the skin, and touch or slightly enter it), ``far_fraction`` by U[near, far] (loose garments,
    skirts; the field must stay sensible between the legs and under the arms there too).
    """
    points, normals = surface.sample(count, rng)
    far = rng.random(count) < settings.far_fraction
    offset = np.where(far, rng.uniform(settings.near_offset, settings.far_offset, count),
                      rng.uniform(-settings.inside_offset, settings.near_offset, count))
    return (points + offset[:, None] * normals).astype(np.float32)


class SkinningTrainer:
    """Steps of ``W``/``Δx`` regression on fresh samples around the rest body (each point with
    ``betas_per_step`` random shapes of its own) and the validation on fixed held-out points,
    poses and shapes, for :func:`nrtool.training.run_training`.

    Validation metrics (lower is better): ``val_weights_l1`` (mean ``Σ_j |W − W*|``),
    ``val_shape_mm`` (mean ``|Δx − Δx*|``), ``val_skin_mm`` (mean distance between the points
    skinned with the field and with their nearest vertex's weights and displacement, over the
    held-out poses and shapes: what the garments feel; the score), ``val_vertex_mm`` (the same at
    the body's own vertices, against the body's skinning of its shaped vertices).
    """

    def __init__(self, field: SkinningField, body: BodyModel, settings: SkinningSettings, device: torch.device) -> None:
        self.model, self.body, self.settings, self.device = field, body, settings, device
        self.optimizer = torch.optim.Adam(field.parameters(), lr=settings.lr)
        total = settings.epochs * settings.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total,
                                                                    eta_min=settings.lr * settings.lr_final)
        self.generator = None
        self.rng = np.random.default_rng(settings.seed)
        self.steps_per_epoch = settings.steps_per_epoch
        self.surface = _RestSurface(body)
        self.num_betas = body.num_betas if body.has_shape_space else 0
        self.weights = _body_weights(body, device)
        self.shapedirs = (body.smpl.shapedirs.detach().to(device, torch.float32) if self.num_betas
                          else torch.zeros((body.num_vertices, 3, 0), device=device))  # (V, 3, nb)
        self._prepare_validation()

    def _betas(self, rng: np.random.Generator, count: int) -> torch.Tensor:
        r = self.settings.beta_range
        return torch.as_tensor(rng.uniform(-r, r, size=(count, self.num_betas)), dtype=torch.float32, device=self.device)

    def _prepare_validation(self) -> None:
        """Fixed held-out data, from its own random stream (never the training one, so that a
        resumed run validates on the same points)."""
        s = self.settings
        rng = np.random.default_rng([s.seed, 7919])
        points = torch.as_tensor(sample_around_body(self.surface, s.val_points, s, rng), device=self.device)
        weights, index = nearest_body_targets(points, self.body)
        betas = self._betas(rng, s.val_poses)
        poses = torch.as_tensor(rng.normal(0.0, VAL_POSE_STD, size=(s.val_poses, 72)), dtype=torch.float32,
                                device=self.device)
        with torch.no_grad():
            out = self.body.forward(poses, betas if self.num_betas else None)
            shift = torch.einsum("nkl,bl->bnk", self.shapedirs[index], betas)  # (P, M, 3)
            target = linear_blend_skinning(points[None] + shift, weights, out.transforms)
            rest = torch.as_tensor(self.body.v_template, dtype=torch.float32, device=self.device)
            shaped = rest[None] + torch.einsum("vkl,bl->bvk", self.shapedirs, betas)
            vertex_target = linear_blend_skinning(shaped, self.weights, out.transforms)
        self.val = {"points": points, "weights": weights, "shift": shift, "betas": betas,
                    "transforms": out.transforms, "target": target, "rest": rest, "vertex_target": vertex_target}

    def losses(self, points: torch.Tensor, index: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``l_weights`` (mean KL divergence of the weights) and ``l_shape`` (mean error, cm) for
        ``(N, 3)`` points whose nearest vertices are ``index``, under ``(S, N, nb)`` betas (a
        shape per point and repeat)."""
        field = self.model
        target = self.weights[index]
        # KL(W* || W): the softmax's own loss, whose gradient in the logits is W - W* and so never
        # vanishes on a confidently wrong softmax (an L1 loss on the probabilities does, and
        # stalled; see the module docstring). The target's entropy is subtracted so that it
        # reads 0 when the weights match.
        log_w = torch.log_softmax(field.weights(points), dim=-1)
        l_weights = (target * (torch.log(target.clamp_min(1e-12)) - log_w)).sum(-1).mean()
        if field.shape is None:
            return l_weights, torch.zeros((), device=points.device)
        target = torch.einsum("nkl,snl->snk", self.shapedirs[index], betas)
        error = field.point_shape_displacement(points[None].expand(len(betas), -1, -1), betas) - target
        # sqrt with a floor: the gradient of a Euclidean norm is undefined at zero error.
        l_shape = 100.0 * torch.sqrt((error ** 2).sum(-1) + 1e-12).mean()
        return l_weights, l_shape

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        s, rng = self.settings, self.rng
        sums = {"loss": 0.0, "l_weights": 0.0, "l_shape": 0.0}
        steps = 0
        for _ in range(self.steps_per_epoch):
            if steps and out_of_time():
                break
            points = sample_around_body(self.surface, s.points, s, rng)
            index = nearest_body_vertices(points, self.body).to(self.device)
            # A shape per point and repeat: many shapes per step (the target is linear in β, and
            # one β shared by all points would see few directions of the shape space per step).
            betas = self._betas(rng, s.betas_per_step * s.points).view(s.betas_per_step, s.points, -1)
            l_weights, l_shape = self.losses(torch.as_tensor(points, device=self.device), index, betas)
            loss = s.lambda_weights * l_weights + l_shape
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            sums["loss"] += float(loss.detach())
            sums["l_weights"] += float(l_weights.detach())
            sums["l_shape"] += float(l_shape.detach())
            steps += 1
            advance()
        return {"steps": steps, **{k: v / max(steps, 1) for k, v in sums.items()}}

    def validate(self, epoch: int) -> dict[str, float]:
        val, field = self.val, self.model
        was_training = field.training
        field.eval()
        with torch.no_grad():
            weights = field.skinning_weights(val["points"])
            shift = field.shape_displacement(val["points"], val["betas"])
            posed = linear_blend_skinning(val["points"][None] + shift, weights, val["transforms"])
            vertex_weights = field.skinning_weights(val["rest"])
            vertices = linear_blend_skinning(field.canonical(val["rest"], val["betas"]), vertex_weights, val["transforms"])
            record = {
                "val_weights_l1": float((weights - val["weights"]).abs().sum(-1).mean()),
                "val_shape_mm": float(1000 * (shift - val["shift"]).norm(dim=-1).mean()),
                "val_skin_mm": float(1000 * (posed - val["target"]).norm(dim=-1).mean()),
                "val_vertex_mm": float(1000 * (vertices - val["vertex_target"]).norm(dim=-1).mean()),
            }
        field.train(was_training)
        return record

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return (record["val_skin_mm"],) if "val_skin_mm" in record else None


def _run_settings(settings: SkinningSettings) -> dict[str, Any]:
    return {k: v for k, v in settings.to_dict().items() if k != "time_limit"}  # a limit is per call


def fit_skinning(body: BodyModel, settings: SkinningSettings, device: torch.device | str = "cpu",
                 progress: Progress | None = None, out: str | os.PathLike[str] | None = None,
                 restart: bool = False) -> tuple[SkinningField, TrainingRun]:
    """Fit ``W``/``Δx`` to ``body`` (loaded on ``device``); returns the best field (eval mode) and
    the run. ``out``: where the checkpoint will go (its ``OUT.partial`` makes the run resumable);
    None keeps everything in memory. Seeded: the same settings give the same field."""
    from nrtool.training import run_training

    settings.validate()
    device = torch.device(device)
    fingerprint = {"settings": _run_settings(settings), "body": body_identity(body)}
    torch.manual_seed(settings.seed)
    field = SkinningField(body.num_betas if body.has_shape_space else 0, settings.hidden, settings.layers,
                          beta_scale=settings.beta_range).to(device)
    trainer = SkinningTrainer(field, body, settings, device)
    run = run_training(trainer, out, "skinning", fingerprint, settings, progress, restart,
                       f"training the skinning field of {body.path.name}")
    field.load_state_dict(run.best_state)
    field.eval()
    return field, run


def save_skinning(path: str | os.PathLike[str], field: SkinningField, body: BodyModel, settings: SkinningSettings,
                  run: TrainingRun | None = None) -> None:
    """Write a skinning checkpoint: the field, its settings and the body it was fitted to
    (file name and SHA-256, identity, vertex count, rest joints, betas) and the training record."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.checkpoints import save_checkpoint

    state = {k: v.detach().cpu() for k, v in field.state_dict().items()}
    payload = {
        "model": field.spec(),
        "state_dict": state,
        "settings": settings.to_dict(),
        "beta_range": float(settings.beta_range),
        "num_betas": int(field.num_betas),
        "body": {
            "name": body.path.name,
            "sha256": sha256_file(body.path),
            "identity": body_identity(body),
            "vertices": int(body.num_vertices),
            "kind": body.kind,
            "num_betas": int(body.num_betas),
            "rest_joints": torch.as_tensor(body.rest_joints(), dtype=torch.float32),
        },
        "history": json.dumps(run.history if run is not None else []),
        "best_epoch": int(run.best_epoch) if run is not None else 0,
        "best": {k: float(v) for k, v in (run.best if run is not None else {}).items()},
    }
    save_checkpoint(path, SKINNING_FORMAT, SKINNING_VERSION, payload)


@holds_output_lock("out")
def train_skinning(body_path: str | os.PathLike[str] | BodyModel, out: str | os.PathLike[str],
                   settings: SkinningSettings | None = None, device: str = "auto", progress: Progress | None = None,
                   restart: bool = False, gender: str = "neutral") -> TrainReport:
    """``nrtool train skinning``: fit ``W``/``Δx`` to a body model and write the best checkpoint
    (``out``) and its curves (``out`` with ``.png``).

    ``settings`` None is the ``tiny`` preset. An interrupted run leaves ``OUT.partial``; the same
    call continues it, ``restart`` discards it. ``settings.time_limit`` counts this call's time.
    """
    from nrtool.body.body_model import BodyModel
    from nrtool.figures import training_curves
    from nrtool.training import start_training

    settings = SKINNING_PRESETS["tiny"] if settings is None else settings
    out, torch_device, progress = start_training(out, device, progress, settings)
    body = body_path if isinstance(body_path, BodyModel) else BodyModel(body_path, gender=gender, device=torch_device)
    if body.device != torch_device:  # a body loaded elsewhere: the same file on the training device
        body = BodyModel(body.path, gender=body.gender, num_betas=body.num_betas or 10, device=torch_device)
    field, run = fit_skinning(body, settings, torch_device, progress, out, restart)
    save_skinning(out, field, body, settings, run)
    curves = out.with_suffix(".png")
    training_curves(run.history, curves, f"{out.name}: skinning of {body.path.name}, {settings.preset}",
                    run.best_epoch)
    run.finish()
    return run.report(out, curves, body=str(body.path), vertices=int(body.num_vertices), num_betas=int(field.num_betas),
                      shape_branch=field.shape is not None, preset=settings.preset)


# --------------------------------------------------------------------------------------------
# Loading and checks
# --------------------------------------------------------------------------------------------


def _field_from(checkpoint: dict[str, Any], path: str | os.PathLike[str], device: torch.device | str) -> SkinningField:
    from nrtool.checkpoints import damaged

    try:
        field = SkinningField.from_spec(checkpoint["model"])
        field.load_state_dict(checkpoint["state_dict"])
        body = checkpoint["body"]
        for key in ("vertices", "sha256", "identity"):  # what check_skinning_body reads
            if key not in body:
                raise KeyError(f"body.{key}")
        if tuple(body["rest_joints"].shape) != (NUM_JOINTS, 3):
            raise ValueError(f"rest joints of shape {tuple(body['rest_joints'].shape)}")
        float(checkpoint["beta_range"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise damaged(path, "skinning", exc) from exc
    return field.to(device).eval()


def load_skinning(path: str | os.PathLike[str], device: torch.device | str = "cpu"
                  ) -> tuple[SkinningField, dict[str, Any]]:
    """A skinning checkpoint (read with ``weights_only=True``): the field in eval mode on
    ``device`` and the checkpoint's data; one line naming the file for anything else."""
    from nrtool.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(path, SKINNING_FORMAT, SKINNING_VERSION, "skinning", "nrtool train skinning")
    return _field_from(checkpoint, path, device), checkpoint


def check_skinning_body(checkpoint: dict[str, Any], body: BodyModel, skinning_path: str | os.PathLike[str],
                        body_path: str | os.PathLike[str] | None = None) -> None:
    """Refuse a body other than the one the skinning field was fitted to, in one line naming the
    body file: another vertex count, or other arrays (the same file, or the same arrays in
    another file, pass)."""
    from nrtool.artifacts.core import sha256_file

    trained = checkpoint["body"]
    where = body_path if body_path is not None else body.path
    name = trained.get("name", "?")
    if int(trained["vertices"]) != int(body.num_vertices):
        raise InputFileError(where, f"has {body.num_vertices} vertices, but the skinning field {skinning_path} was "
                             f"fitted to a body of {trained['vertices']} ({name}); train the skinning stage on this body")
    if trained.get("sha256") == sha256_file(body.path) or trained.get("identity") == body_identity(body):
        return
    raise InputFileError(where, f"is not the body the skinning field {skinning_path} was fitted to ({name}: other "
                         "vertices, weights, joints or shape space); train the skinning stage on this body")


def skinning_from_checkpoint(checkpoint: dict[str, Any], skinning_path: str | os.PathLike[str], body: BodyModel,
                             body_path: str | os.PathLike[str] | None = None, device: torch.device | str = "cpu"
                             ) -> SkinningField:
    """The field of a loaded skinning checkpoint (e.g. one embedded in a draping checkpoint), after
    checking that ``body`` is the body it was fitted to (:func:`check_skinning_body`)."""
    field = _field_from(checkpoint, skinning_path, device)
    check_skinning_body(checkpoint, body, skinning_path, body_path)
    return field

