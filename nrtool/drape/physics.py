"""Quasi-static cloth physics for self-supervised draping (thesis Eq. 2.6-2.8, 2.11; SNUG's material).

Every energy takes batched garment vertices ``x (B, V, 3)`` (metres, Y up) and returns one value
per batch element ``(B,)``, in joules for the physical terms. All of them are plain torch, so they
are differentiable with respect to ``x`` (and the body, where it enters), on any device, in float32
(the default) or float64 (which the gradient checks use).

Rest quantities that do not change while a garment is draped (its per-face reference shapes,
areas, hinges and lumped masses) are computed once, in :meth:`ClothRest.from_mesh`.

Nearest neighbours (garment vertex -> body vertex, body vertex -> garment vertex) are found with
a k-d tree on the CPU and PyTorch3D's ``knn_points`` on a GPU (:func:`nearest_vertex`). The search
returns indices only and is done without gradients; the energies then gather the neighbour and
differentiate through the geometry, which is exactly the gradient of the energy with the
neighbour held fixed -- the assignment is piecewise constant, so that is its true gradient almost
everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nrtool.errors import NrtoolError

__all__ = [
    "TRUNK_JOINTS",
    "ClothRest",
    "Material",
    "bending_energy",
    "collision_energy",
    "covered_by_both",
    "dihedral_angles",
    "face_areas",
    "face_centroids",
    "gather_points",
    "gravity_energy",
    "layer_energy",
    "nearest_vertex",
    "pin_energy",
    "strain_energy",
    "waist_pins",
]

#: SMPL joints of the trunk around the waist: pelvis, spine1, spine2 (the bottom's waistband sits
#: on skin these drive; hips/legs are left out on purpose, a trouser leg must stay free).
TRUNK_JOINTS: tuple[int, ...] = (0, 3, 6)
#: SMPL's spine1: its rest height is the waist height (the procedural bottoms put their waistband
#: relative to it too).
WAIST_JOINT = 3


@dataclass(frozen=True)
class Material:
    """The fabric of SNUG / DrapeNet (all energy weights 1).

    ``mu`` and ``lam`` are the *plane-stress* Lamé constants of a thin sheet (as ARCSim and SNUG
    use them): ``mu = E / (2 (1 + nu))`` and ``lam = E nu / (1 - nu^2)``. The 3D Lamé ``lambda``
    (``E nu / ((1 + nu)(1 - 2 nu))`` = 7.6e5 Pa at nu = 0.485) would make the membrane nearly
    incompressible in area, which a woven sheet is not.

    Collision stiffness ``k_c`` = 3e4 J/m^3 (the energy ``k_c (eps - d)^3`` is in joules with
    depths in metres), and the training loss applies it at the face centroids as well as the
    vertices (:func:`collision_energy` with ``faces``; B2G tests the centroids). Chosen by
    training the ``tiny`` top model on the garments of ``examples/models`` (8 tops decoded at
    48^3, 480 steps) and measuring 8 held-out poses with random shapes (B2G = garment area inside
    the body; the nearest-vertex baseline: 3.17 %, 67.9 J, of which 64.9 J strain), with the
    ``tiny`` skinning field (1800 steps) and one trained 3x longer (5400 steps):

    ==========================  ================  ================
    collision term              tiny skinning     skinning 3x
    ==========================  ================  ================
    vertices, k_c 1e4 (before)  5.76 %, 3.27 J    6.90 %, 3.49 J
    vertices, k_c 1e5           4.10 %, 4.94 J
    + centroids, k_c 1e4        3.84 %, 3.32 J    3.48 %, 3.51 J
    + centroids, k_c 3e4        2.81 %, 3.58 J    2.62 %, 3.71 J
    ==========================  ================  ================

    (B2G, total energy; the kept epoch, chosen by the lowest held-out energy.) Vertices alone,
    the network learns to *add* penetration to the plain skinning's (3.9 % with the longer
    skinning): it saves strain and gravity by letting faces sag into the shoulders and upper
    arms, where most of the inside area was. On the bottoms of the test suite (4 bottoms, 240
    steps; baseline 8.52 %, 243 J): 10.43 %, 9.37 J before; 4.82 %, 12.68 J with centroids and
    3e4. 1e5 (vertices only) stretched the cloth over the body (strain 1.9 J against 1.4 J) and
    trained noisily. The thesis reports 0.9 % B2G.

    At d = 0 the body's push-back is ``3 k_c eps^2`` = 0.36 N per point, ~300x the weight of a
    vertex of such a mesh and about the membrane force of a 30 % stretch over one 2.5 cm edge
    (``h (lam + 2 mu)`` = 43 N/m per unit strain), so gravity never sinks cloth into the body and a garment a
    few percent too tight settles at the surface. (For comparison: HOOD starts its collision
    weight at 1e3 with eps = 1 mm and ramps it up during training; SNUG's released code leaves
    the weight out.)

    A much finer mesh has more vertices per area and so a stiffer body (the penalty is a sum over
    points, not an area integral): scale ``collision_stiffness`` with the vertex density if the
    garments are far from 1 cm resolution.
    """

    density: float = 426.0  # kg/m^3
    thickness: float = 4.7e-4  # m
    young: float = 0.7e5  # Pa
    poisson: float = 0.485
    bending_scale: float = 50.0  # SNUG's bending multiplier
    collision_stiffness: float = 3.0e4  # k_c, J/m^3 (see the class docstring)
    collision_margin: float = 2e-3  # eps, m
    gravity: float = 9.81  # m/s^2

    @property
    def area_density(self) -> float:
        """kg/m^2 (density x thickness, ~0.200)."""
        return self.density * self.thickness

    @property
    def mu(self) -> float:
        """Lamé mu (shear modulus), Pa (~2.357e4)."""
        return self.young / (2.0 * (1.0 + self.poisson))

    @property
    def lam(self) -> float:
        """Plane-stress Lamé lambda, Pa (~4.439e4)."""
        return self.young * self.poisson / (1.0 - self.poisson**2)

    @property
    def bending_stiffness(self) -> float:
        """k_b = E h^3 / (12 (1 - nu^2)) x bending_scale, J (~3.96e-5)."""
        return self.young * self.thickness**3 / (12.0 * (1.0 - self.poisson**2)) * self.bending_scale


#: A rest face is degenerate when its height over its longest edge is below this (a needle or a
#: collapsed triangle): its reference shape cannot be inverted, so it is dropped (see ClothRest).
DEGENERATE_ASPECT = 1e-6


@dataclass(frozen=True, eq=False)  # eq on tensors would be elementwise, not a bool
class ClothRest:
    """What the energies need of a garment's rest (canonical) mesh, computed once per template.

    Attributes (torch tensors; float ones in the dtype of the vertices given):
        faces: ``(F, 3)`` int64, the mesh's faces unchanged (degenerate ones included, see below).
        dm_inv: ``(F, 2, 2)`` inverse of each rest triangle's edge matrix in its own plane.
        areas: ``(F,)`` rest areas, m^2 (0 for a degenerate face).
        edges: ``(E, 2)`` int64 vertex pairs ``(a, b)`` of the interior edges (shared by exactly
            two non-degenerate faces), ``a -> b`` as the first face winds it.
        opposite: ``(E, 2)`` int64 opposite vertices ``(c, d)``: ``c`` in the face winding
            ``a -> b``, ``d`` in the other face.
        edge_lengths: ``(E,)`` rest lengths of the interior edges, m.
        hinge_areas: ``(E,)`` ``A0 + A1``, the rest areas of the two faces of each hinge, m^2.
        masses: ``(V,)`` lumped masses, kg: area density x (area of the adjacent faces) / 3.
        degenerate: ``(F,)`` bool, the faces dropped from every energy.

    Degenerate rest faces (height over longest edge < :data:`DEGENERATE_ASPECT`, including
    zero-area ones) are *dropped*, not refused: MeshUDF meshes can hold a few slivers, and one
    must not stop a whole training run. A dropped face keeps its index in ``faces`` (so face
    arrays stay aligned with the mesh for the metrics) but gets area 0 (no strain, no mass) and
    ``dm_inv`` 0, and no hinge uses it (its normal is undefined). With ``strict=True``
    :meth:`from_mesh` raises instead, naming how many there are. A mesh whose faces are all
    degenerate always raises.
    """

    faces: Tensor
    dm_inv: Tensor
    areas: Tensor
    edges: Tensor
    opposite: Tensor
    edge_lengths: Tensor
    hinge_areas: Tensor
    masses: Tensor
    degenerate: Tensor

    @property
    def num_vertices(self) -> int:
        return int(self.masses.shape[0])

    @property
    def total_area(self) -> Tensor:
        """Scalar tensor, m^2."""
        return self.areas.sum()

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> ClothRest:
        """A copy on ``device`` with its float tensors in ``dtype`` (index tensors stay int64)."""
        moved = {}
        for f in fields(self):
            value: Tensor = getattr(self, f.name)
            if value.is_floating_point():
                moved[f.name] = value.to(device=device, dtype=dtype)
            else:
                moved[f.name] = value.to(device=device)
        return ClothRest(**moved)

    @classmethod
    def from_mesh(cls, vertices: Tensor | np.ndarray, faces: Tensor | np.ndarray, material: Material | None = None,
                  *, strict: bool = False) -> ClothRest:
        """Precompute the rest state of a triangle mesh.

        Args:
            vertices: ``(V, 3)`` rest positions, m (a tensor keeps its device and float dtype; a
                numpy array gives float32 on the CPU).
            faces: ``(F, 3)`` vertex indices.
            material: gives the area density of the lumped masses (default :class:`Material`).
            strict: raise :class:`NrtoolError` on degenerate rest faces instead of dropping them.
        """
        material = material or Material()
        if isinstance(vertices, Tensor):
            device = vertices.device
            dtype = vertices.dtype if vertices.is_floating_point() else torch.float32
        else:
            device, dtype = torch.device("cpu"), torch.float32
        # Rest geometry in float64 whatever the working dtype: dm_inv of small or thin triangles
        # loses digits in float32 that no later step can recover.
        v = torch.as_tensor(vertices).detach().to(device="cpu", dtype=torch.float64)
        f = torch.as_tensor(faces).detach().to(device="cpu", dtype=torch.int64)
        if v.ndim != 2 or v.shape[1] != 3:
            raise NrtoolError(f"garment vertices must have shape (V, 3), got {tuple(v.shape)}")
        if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
            raise NrtoolError(f"garment faces must have shape (F, 3) with F > 0, got {tuple(f.shape)}")
        if int(f.min()) < 0 or int(f.max()) >= v.shape[0]:
            raise NrtoolError(f"garment faces index vertices outside 0..{v.shape[0] - 1}")

        x0, x1, x2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        e1, e2 = x1 - x0, x2 - x0
        cross = torch.linalg.cross(e1, e2, dim=-1)
        double_area = torch.linalg.vector_norm(cross, dim=-1)
        longest = torch.stack([e1.norm(dim=-1), e2.norm(dim=-1), (x2 - x1).norm(dim=-1)], -1).amax(-1)
        # 2A / L^2 = (height over the longest edge) / L: scale-free, so the rule is the same for a
        # garment in metres or in any other unit.
        degenerate = double_area <= DEGENERATE_ASPECT * longest**2
        count = int(degenerate.sum())
        if count == len(f) or (strict and count):
            raise NrtoolError(f"{count} of the garment's {len(f)} rest faces are degenerate (zero area or a "
                              f"height below {DEGENERATE_ASPECT:g} of the longest edge)")

        # Each triangle in its own plane: x axis along e1, y axis the in-plane normal to it.
        # Dm = [[|e1|, e2.u], [0, e2.w]] (columns = the two edges), upper triangular, so its
        # inverse is closed-form; e2.w = 2A/|e1| > 0 for every kept face.
        len1 = e1.norm(dim=-1).clamp_min(1e-300)
        u = e1 / len1[:, None]
        normal = cross / double_area.clamp_min(1e-300)[:, None]
        w = torch.linalg.cross(normal, u, dim=-1)
        a, b, c = len1, (e2 * u).sum(-1), (e2 * w).sum(-1)
        ok = ~degenerate
        a_s, c_s = torch.where(ok, a, 1.0), torch.where(ok, c, 1.0)
        dm_inv = torch.zeros((len(f), 2, 2), dtype=torch.float64)
        dm_inv[:, 0, 0] = 1.0 / a_s
        dm_inv[:, 0, 1] = -b / (a_s * c_s)
        dm_inv[:, 1, 1] = 1.0 / c_s
        dm_inv[degenerate] = 0.0
        areas = torch.where(ok, 0.5 * double_area, 0.0)

        masses = torch.zeros(v.shape[0], dtype=torch.float64)
        for k in range(3):
            masses.index_add_(0, f[:, k], areas * (material.area_density / 3.0))

        edges, opposite, hinge_faces = _interior_edges(f.numpy(), ok.numpy())
        edges_t = torch.as_tensor(edges)
        hinge_t = torch.as_tensor(hinge_faces)
        edge_lengths = (v[edges_t[:, 1]] - v[edges_t[:, 0]]).norm(dim=-1)
        hinge_areas = areas[hinge_t[:, 0]] + areas[hinge_t[:, 1]]

        def out(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device=device)

        return cls(faces=out(f), dm_inv=out(dm_inv), areas=out(areas), edges=out(edges_t),
                   opposite=out(torch.as_tensor(opposite)), edge_lengths=out(edge_lengths),
                   hinge_areas=out(hinge_areas), masses=out(masses), degenerate=out(degenerate))


def _interior_edges(faces: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hinges of a triangle mesh: ``(E, 2)`` edges, ``(E, 2)`` opposite vertices, ``(E, 2)`` faces.

    An interior edge is one used by exactly two kept faces; boundary and non-manifold edges (one,
    or three and more faces) have no well-defined dihedral angle and are left out. The hinge is
    oriented by its first face (``a -> b`` as that face winds it, ``c`` its third vertex) and the
    second face contributes only its third vertex ``d``: the bending normals are rebuilt from
    ``(a, b, c)`` and ``(b, a, d)``, so a mesh whose faces are not consistently wound (MeshUDF
    output can flip some) still gets consistent hinges.
    """
    faces = faces[keep]
    face_ids = np.flatnonzero(keep)
    if len(faces) == 0:
        empty = np.zeros((0, 2), dtype=np.int64)
        return empty, empty, empty
    # Half-edges k: (faces[:, k], faces[:, k+1]) with opposite vertex faces[:, k+2].
    starts = faces.reshape(-1)
    ends = faces[:, [1, 2, 0]].reshape(-1)
    thirds = faces[:, [2, 0, 1]].reshape(-1)
    owners = np.repeat(face_ids, 3)
    lo, hi = np.minimum(starts, ends), np.maximum(starts, ends)
    key = lo.astype(np.int64) * (int(max(starts.max(), ends.max())) + 1) + hi
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    _, first, counts = np.unique(key_sorted, return_index=True, return_counts=True)
    two = first[counts == 2]
    h0, h1 = order[two], order[two + 1]
    # Two faces on the same vertex triple (a duplicated face) make no hinge.
    valid = thirds[h0] != thirds[h1]
    h0, h1 = h0[valid], h1[valid]
    edges = np.stack([starts[h0], ends[h0]], axis=1).astype(np.int64)
    opposite = np.stack([thirds[h0], thirds[h1]], axis=1).astype(np.int64)
    hinge_faces = np.stack([owners[h0], owners[h1]], axis=1).astype(np.int64)
    return edges, opposite, hinge_faces


# ------------------------------------------------------------------------------------------------
# Nearest neighbours
# ------------------------------------------------------------------------------------------------


def nearest_vertex(query: Tensor, reference: Tensor, chunk: int = 4096) -> Tensor:
    """Index of the nearest ``reference`` point of each ``query`` point, without gradients.

    On the CPU a k-d tree per batch element (SciPy's ``cKDTree``, on torch's thread count):
    draping's searches are 5-20k garment points against a few thousand body vertices, where the
    brute-force search of PyTorch3D's ``knn_points`` costs ~30x more (``make bench``, section
    ``drape``: it was most of a training step). Elsewhere ``knn_points`` when PyTorch3D is
    importable, chunked ``torch.cdist`` otherwise; all three give the same indices up to ties.

    Args:
        query: ``(B, N, 3)``.
        reference: ``(B, M, 3)`` (M > 0).
        chunk: query rows per ``cdist`` block in the fallback without PyTorch3D.

    Returns:
        ``(B, N)`` int64 indices into ``reference``'s second axis, on ``query``'s device.
    """
    if query.ndim != 3 or reference.ndim != 3 or query.shape[0] != reference.shape[0]:
        raise NrtoolError(f"nearest_vertex wants (B, N, 3) and (B, M, 3), got {tuple(query.shape)} and {tuple(reference.shape)}")
    with torch.no_grad():
        # An index does not need float64's digits (and knn_points computes in float32 only).
        q = query.detach().float()
        r = reference.detach().float()
        if q.device.type == "cpu":
            return _kdtree_nearest(q, r)
        try:
            from pytorch3d.ops import knn_points
        except ImportError:  # a bare GPU node without PyTorch3D: plain torch, the same answer
            knn_points = None
        if knn_points is not None:
            return knn_points(q, r, K=1).idx[..., 0]
        parts = [torch.cdist(q[:, s:s + chunk], r).argmin(dim=-1) for s in range(0, q.shape[1], chunk)]
        return torch.cat(parts, dim=1) if parts else torch.zeros(q.shape[:2], dtype=torch.int64, device=q.device)


def _kdtree_nearest(query: Tensor, reference: Tensor) -> Tensor:
    """:func:`nearest_vertex` on the CPU: one ``cKDTree`` of each batch element's reference points."""
    from scipy.spatial import cKDTree

    q, r = query.numpy(), reference.numpy()
    out = np.empty(q.shape[:2], dtype=np.int64)
    workers = max(1, torch.get_num_threads())
    for b in range(q.shape[0]):
        if q.shape[1]:
            # A NaN query point gets index M from SciPy: clamp it in range (the energies turn NaN anyway).
            out[b] = np.minimum(cKDTree(r[b]).query(q[b], k=1, workers=workers)[1], r.shape[1] - 1)
    return torch.from_numpy(out)


def gather_points(points: Tensor, index: Tensor) -> Tensor:
    """``points (B, M, C)`` at ``index (B, N)`` -> ``(B, N, C)``."""
    return torch.gather(points, 1, index[..., None].expand(-1, -1, points.shape[-1]))


# ------------------------------------------------------------------------------------------------
# Energies
# ------------------------------------------------------------------------------------------------


def _check_x(x: Tensor, rest: ClothRest) -> None:
    if x.ndim != 3 or x.shape[-1] != 3 or x.shape[1] != rest.num_vertices:
        raise NrtoolError(f"garment vertices must have shape (B, {rest.num_vertices}, 3), got {tuple(x.shape)}")


def face_centroids(x: Tensor, faces: Tensor) -> Tensor:
    """``x (B, V, 3)``, ``faces (F, 3)`` -> ``(B, F, 3)`` centroids."""
    return (x[:, faces[:, 0]] + x[:, faces[:, 1]] + x[:, faces[:, 2]]) / 3.0


def face_areas(x: Tensor, faces: Tensor) -> Tensor:
    """Areas of the faces of a batch of meshes: ``x (B, V, 3)``, ``faces (F, 3)`` -> ``(B, F)``."""
    a, b, c = x[:, faces[:, 0]], x[:, faces[:, 1]], x[:, faces[:, 2]]
    return 0.5 * torch.linalg.vector_norm(torch.linalg.cross(b - a, c - a, dim=-1), dim=-1)


def strain_energy(x: Tensor, rest: ClothRest, material: Material) -> Tensor:
    """StVK membrane energy, J: ``x (B, V, 3)`` -> ``(B,)``.

    Per face: ``F = Ds Dm^-1`` (3 x 2; ``Ds = [x1 - x0, x2 - x0]``), Green strain
    ``G = 1/2 (F^T F - I)``, second Piola-Kirchhoff stress ``S = mu G + 1/2 lam tr(G) I`` and energy
    ``area * h * tr(S^T G)`` = ``area * h * (mu G:G + 1/2 lam tr(G)^2)``. Zero at rest and under any
    rigid motion (F^T F does not see rotations); a uniform in-plane stretch by ``s`` gives
    ``area * h * 1/2 (mu + lam) (s^2 - 1)^2``.
    """
    _check_x(x, rest)
    f = rest.faces
    x0 = x[:, f[:, 0]]
    ds = torch.stack([x[:, f[:, 1]] - x0, x[:, f[:, 2]] - x0], dim=-1)  # (B, F, 3, 2)
    deform = ds @ rest.dm_inv.to(x.dtype)  # (B, F, 3, 2)
    eye = torch.eye(2, dtype=x.dtype, device=x.device)
    green = 0.5 * (deform.transpose(-1, -2) @ deform - eye)  # (B, F, 2, 2)
    trace = green.diagonal(dim1=-2, dim2=-1).sum(-1)  # (B, F)
    stress = material.mu * green + 0.5 * material.lam * trace[..., None, None] * eye
    density = (stress * green).sum(dim=(-1, -2))  # tr(S^T G), J/m^3
    return (rest.areas.to(x.dtype) * material.thickness * density).sum(-1)


def dihedral_angles(x: Tensor, rest: ClothRest) -> Tensor:
    """Signed dihedral angle of every hinge, radians in (-pi, pi]: ``x (B, V, 3)`` -> ``(B, E)``.

    0 when the two faces are coplanar; positive when the second face ``(b, a, d)`` folds towards the
    side the first face's normal ``(b - a) x (c - a)`` points to (a valley seen from that side),
    negative the other way.

    ``atan2(sin, cos)`` of the two face normals, with the normals *not* normalised: atan2 is blind
    to a common positive scale of its arguments, so no square root enters and the gradient is
    finite at a flat hinge (where ``acos`` of the normals' dot product has an infinite derivative
    and a normalised cross product divides by zero). Both normals are divided by the hinge's rest
    area ``A0 + A1`` only to keep the atan2 arguments O(1) in float32 for centimetre triangles.
    """
    _check_x(x, rest)
    a, b = x[:, rest.edges[:, 0]], x[:, rest.edges[:, 1]]
    c, d = x[:, rest.opposite[:, 0]], x[:, rest.opposite[:, 1]]
    edge = b - a
    n0 = torch.linalg.cross(edge, c - a, dim=-1)  # face (a, b, c) as its winding gives it
    n1 = torch.linalg.cross(-edge, d - b, dim=-1)  # face (b, a, d): consistent with n0 by construction
    # A common positive scale leaves atan2 unchanged: ~1/(2A) keeps both arguments O(1).
    scale = 1.0 / rest.hinge_areas.to(x.dtype).clamp_min(1e-30)[:, None]
    n0, n1 = n0 * scale, n1 * scale
    # |n0||n1| sin(theta) along the unit edge, |n0||n1| cos(theta); n1 x n0 (not n0 x n1) makes
    # a fold towards n0's side positive. |edge| > 0 for any edge that has not collapsed.
    sin = (torch.linalg.cross(n1, n0, dim=-1) * edge).sum(-1) / torch.linalg.vector_norm(edge, dim=-1)
    cos = (n0 * n1).sum(-1)
    return torch.atan2(sin, cos)


def bending_energy(x: Tensor, rest: ClothRest, material: Material) -> Tensor:
    """Discrete-shell bending energy, J: ``x (B, V, 3)`` -> ``(B,)``.

    ``sum_e k_b * l_e^2 / (4 (A0 + A1)) * theta_e^2 / 2`` over interior edges, with the rest edge
    length ``l_e``, rest areas ``A0 + A1`` of its two faces and ``theta_e`` the signed dihedral
    angle (:func:`dihedral_angles`). The rest angle is 0, as in DrapeNet: a curved template
    carries bending energy in its own rest shape (so only a flat sheet is zero at rest).
    """
    theta = dihedral_angles(x, rest)
    coeff = material.bending_stiffness * rest.edge_lengths.to(x.dtype) ** 2 / (4.0 * rest.hinge_areas.to(x.dtype))
    return (coeff * theta**2 * 0.5).sum(-1)


def gravity_energy(x: Tensor, rest: ClothRest, material: Material, floor: Tensor | None = None) -> Tensor:
    """Gravitational potential energy, J: ``sum_v g m_v (y_v - floor)``: ``x (B, V, 3)`` -> ``(B,)``.

    ``floor (B,)`` is the height of zero energy per batch element (the frame metrics use the
    body's lowest vertex); None: y = 0. A flat sheet at height h has ``m g h`` with
    ``m = area density x area``.
    """
    _check_x(x, rest)
    heights = x[..., 1]
    if floor is not None:
        heights = heights - floor.to(x.dtype)[:, None]
    return material.gravity * (heights * rest.masses.to(x.dtype)).sum(-1)


def collision_energy(x: Tensor, body_vertices: Tensor, body_normals: Tensor, material: Material,
                     faces: Tensor | None = None) -> Tensor:
    """Body collision penalty, J: ``k_c sum_p max(eps - n_b . (p - x_b), 0)^3`` -> ``(B,)``.

    Args:
        x: ``(B, V, 3)`` garment vertices.
        body_vertices: ``(B, Vb, 3)`` posed body vertices; ``x_b`` is the nearest one to ``p``.
        body_normals: ``(B, Vb, 3)`` their unit outward normals ``n_b``.
        material: gives ``k_c`` (``collision_stiffness``, see :class:`Material`) and ``eps``.
        faces: ``(F, 3)`` the garment's faces: the points ``p`` are then the vertices *and* the
            face centroids (what the training loss uses, see below); None: the vertices only.

    ``n_b . (p - x_b)`` is the height of the point over the body's tangent plane at its nearest
    body vertex (negative inside). The penalty is zero beyond the margin eps and cubic inside
    it: C^2 at the margin, so it does not jolt the optimiser when a point crosses it.

    Why the centroids too: B2G (:func:`nrtool.drape.metrics.body_to_garment`) counts a face as
    inside by its centroid, and a face can dip into the body while its three corners stay out
    -- a 2.5 cm triangle wrapped round a 5 cm arm sags 1.6 mm below its corners, and where the
    body bends under the cloth (shoulders, armpits) the corners' nearest body vertices differ
    from the centroid's. Penalising the vertices alone, the tiny top model of ``examples/models``
    left 4.5 % of its face centroids inside on held-out poses with 3.7 % of its vertices; with
    the centroids in the loss (and ``k_c`` 3e4) its B2G is 2.6 % (see :class:`Material`).
    """
    points = x if faces is None else torch.cat([x, face_centroids(x, faces)], 1)
    index = nearest_vertex(points, body_vertices)
    xb = gather_points(body_vertices.to(x.dtype), index)
    nb = gather_points(body_normals.to(x.dtype), index)
    depth = material.collision_margin - (nb * (points - xb)).sum(-1)
    return material.collision_stiffness * (torch.relu(depth) ** 3).sum(-1)


def pin_energy(displacement: Tensor, pinned: Tensor) -> Tensor:
    """Waist pin (Eq. 2.8): ``sum over pinned v of dy^2 + 0.1 (dx^2 + dz^2)``, m^2 -> ``(B,)``.

    ``displacement (B, V, 3)`` is what the network adds to a vertex before skinning; ``pinned
    (V,)`` bool. Vertical motion is penalised 10x more than sliding around the waist: a waistband
    may adjust its girth but must not slide down the hips.
    """
    weights = torch.tensor([0.1, 1.0, 0.1], dtype=displacement.dtype, device=displacement.device)
    mask = pinned.to(device=displacement.device, dtype=displacement.dtype)
    return ((displacement**2 * weights).sum(-1) * mask).sum(-1)


def waist_pins(garment_vertices: Tensor | np.ndarray, body: Any, band: float = 0.06,
               waist_height: float | None = None) -> Tensor:
    """Which vertices of a bottom garment are pinned at the waist: ``(V, 3)`` -> ``(V,)`` bool.

    A vertex is pinned when (1) its nearest rest body vertex is skinned mostly by the trunk --
    the summed weights of pelvis, spine1 and spine2 (:data:`TRUNK_JOINTS`) exceed 0.5, so
    vertices over the hips and legs stay free -- and (2) its height is within ``band`` (m) of
    the waist height, by default the rest height of spine1 (SMPL joint 3) of the body at zero
    shape.

    Args:
        garment_vertices: canonical bottom vertices, m (tensor or numpy).
        body: a :class:`nrtool.body.body_model.BodyModel` (its ``v_template``, ``weights`` and
            rest joints are read).
        band: half-height of the pinned band around the waist, m.
        waist_height: override the waist height, m.

    Returns:
        ``(V,)`` bool tensor, on the garment tensor's device (CPU for numpy input).
    """
    if isinstance(garment_vertices, Tensor):
        device, array = garment_vertices.device, garment_vertices.detach().cpu().numpy()
    else:
        device, array = torch.device("cpu"), np.asarray(garment_vertices)
    points = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if points.ndim != 2 or points.shape[1] != 3:
        raise NrtoolError(f"garment vertices must have shape (V, 3), got {tuple(points.shape)}")
    template = torch.as_tensor(np.asarray(body.v_template, dtype=np.float32))
    weights = np.asarray(body.weights, dtype=np.float64)
    trunk = torch.as_tensor(weights[:, list(TRUNK_JOINTS)].sum(axis=1) > 0.5)
    if waist_height is None:
        waist_height = float(body.rest_joints()[WAIST_JOINT, 1])
    nearest = nearest_vertex(points[None], template[None])[0]
    near_waist = (points[:, 1] - waist_height).abs() <= band
    return (trunk[nearest] & near_waist).to(device)


def _nearest_distance(query: Tensor, reference: Tensor) -> Tensor:
    """Differentiable distance from each query point to its nearest reference point: ``(B, N)``."""
    index = nearest_vertex(query, reference)
    diff = query - gather_points(reference, index)
    # sqrt of a clamped square: a zero distance gets gradient 0, not NaN.
    return (diff**2).sum(-1).clamp_min(1e-18).sqrt()


def layer_energy(body_vertices: Tensor, top: Tensor, bottom: Tensor, covered: Tensor | None = None,
                 gamma: float = 0.5) -> Tensor:
    """Layering penalty (Eq. 2.11): ``sum over covered body vertices of max(d_bottom - gamma d_top, 0)``.

    Args:
        body_vertices: ``(B, Vb, 3)`` posed body.
        top: ``(B, Vt, 3)`` posed top; ``d_top`` the distance of a body vertex to its nearest top vertex.
        bottom: ``(B, Vbm, 3)`` posed bottom; ``d_bottom`` likewise.
        covered: ``(Vb,)`` bool, the body vertices both garments cover (:func:`covered_by_both`);
            None: every vertex of ``body_vertices`` (a caller that gathered the covered ones already).
        gamma: the thesis' γ in (0, 1) (App. A.1.5: 0.5, ``DrapeConfig.layer_gamma``).

    Returns:
        ``(B,)``, m. Zero while the bottom stays within ``gamma`` times the top's distance of the skin,
        i.e. clearly under it; it grows linearly as the bottom moves out.
    """
    dtype = torch.promote_types(top.dtype, bottom.dtype)
    body = body_vertices.to(dtype)
    d_top = _nearest_distance(body, top.to(dtype))
    d_bottom = _nearest_distance(body, bottom.to(dtype))
    penalty = torch.relu(d_bottom - gamma * d_top)
    if covered is not None:
        penalty = penalty * covered.to(device=body.device, dtype=dtype)
    return penalty.sum(-1)


def covered_by_both(body_rest: Tensor, top_rest: Tensor, bottom_rest: Tensor, radius: float) -> Tensor:
    """Body vertices covered by both garments in the rest pose: ``(Vb, 3)`` -> ``(Vb,)`` bool.

    A body vertex is covered by a garment when that garment has a vertex within ``radius`` (m)
    of it; :func:`layer_energy` applies only where both do (the waist region a top tucks over).
    """
    # A yes/no answer at centimetre radii: float32 is plenty, and no gradient is wanted.
    with torch.no_grad():
        b = torch.as_tensor(body_rest).to(torch.float32)[None]
        d_top = _nearest_distance(b, torch.as_tensor(top_rest).to(device=b.device, dtype=b.dtype)[None])[0]
        d_bottom = _nearest_distance(b, torch.as_tensor(bottom_rest).to(device=b.device, dtype=b.dtype)[None])[0]
    return (d_top <= radius) & (d_bottom <= radius)
