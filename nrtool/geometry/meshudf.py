"""Open meshes from unsigned distance fields (MeshUDF-style), and their differentiable vertices.

Marching cubes needs a sign; an unsigned distance field (UDF) has none, and plain marching cubes
on ``udf = level`` gives a *double layer* (two offset sheets). MeshUDF's observation is that the
*direction* of the UDF gradient tells the sides of the surface apart locally: on either side of
a sheet the gradients point away from it, in opposite directions. So, cell by cell:

1. take the corner with the largest UDF of the cell as the reference (its gradient is the most
   reliable: far from the surface, where the UDF is smooth);
2. give every corner the pseudo-sign ``sign(grad_i . grad_ref)`` and the pseudo-signed value
   ``sign_i * udf_i``;
3. triangulate the cell with a marching-cubes table on these 8 values.

Signs are consistent inside a cell, not across cells, but the vertex on a grid edge only depends
on the two UDF values there (``t = u_a / (u_a + u_b)``), so two cells that both cross an edge
share the vertex exactly. Where a sheet *ends* (an open boundary) the gradient directions still
flip across the sheet's continuation, which would extend the mesh beyond the boundary; those
faces lie where the UDF is clearly positive, and the last step removes every face whose UDF at
its centroid exceeds a threshold. The result is an open mesh without double layers. Face
orientation is consistent inside a cell only: treat the mesh as unoriented.

Large grids (256^3) are evaluated coarse to fine: the UDF is first sampled on a sub-grid with
stride ``s``; a block of ``s^3`` cells can only contain surface if one of its corners is within
the block's diagonal of it (a UDF is 1-Lipschitz), and only those blocks are evaluated at full
resolution. Gradients are computed only at the corners of cells that may hold surface. All
evaluations run in chunks of at most ``chunk`` points.

Differentiable path (:func:`differentiable_vertices`): a UDF is not differentiable on its zero
set, so, as MeshUDF does, a vertex ``v`` with unit normal ``n`` is tied to a point just off the
surface, ``p = v + eps * n``, where the UDF behaves like a signed distance (``grad u(p) ~ n``).
The vertex satisfies ``u(v + eps n; z) = eps``, and the implicit function theorem gives
``dv/dz = -n (du(p)/dz) / (n . grad_x u(p))``. The returned tensor equals the vertices and
carries exactly that gradient, so a loss on mesh vertices back-propagates to the latent code.

The marching-cubes triangulation table is built here from first principles (segments on the
six faces of the cube chained into loops, each loop fanned into triangles), not copied.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nrtool.errors import NrtoolError
from nrtool.geometry.topology import boundary_edge_count

__all__ = [
    "UdfGrid",
    "MeshUdfResult",
    "CORNERS",
    "EDGES",
    "triangle_table",
    "sample_udf_grid",
    "mesh_udf_grid",
    "mesh_udf",
    "differentiable_vertices",
    "vertex_normals",
    "boundary_edge_count",
    "drop_small_components",
    "double_layer_fraction",
]

#: Cube corner ``i`` sits at offset ``(i & 1, (i >> 1) & 1, (i >> 2) & 1)`` (x, y, z).
CORNERS = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=np.int64)
#: The 12 cube edges as corner pairs (the two corners differ in one bit, ``a < b``).
EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1], dtype=np.int64)
#: Axis along which each edge runs.
EDGE_AXIS = np.array([int(np.log2(a ^ b)) for a, b in EDGES], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Marching-cubes table, derived
# --------------------------------------------------------------------------------------------

_FACES = [  # cube faces as 4 corners in cyclic order
    (0, 2, 6, 4), (1, 3, 7, 5),  # x = 0, x = 1
    (0, 1, 5, 4), (2, 3, 7, 6),  # y = 0, y = 1
    (0, 1, 3, 2), (4, 5, 7, 6),  # z = 0, z = 1
]


def _edge_id(a: int, b: int) -> int:
    key = (min(a, b), max(a, b))
    return int(np.flatnonzero((EDGES[:, 0] == key[0]) & (EDGES[:, 1] == key[1]))[0])


def _triangulate(config: int) -> list[tuple[int, int, int]]:
    """Triangles (as edge ids) of one sign configuration (bit ``i`` set: corner ``i`` positive)."""
    positive = [(config >> i) & 1 == 1 for i in range(8)]
    neighbours: dict[int, list[int]] = {}
    for face in _FACES:
        crossed = [_edge_id(face[k], face[(k + 1) % 4]) for k in range(4) if positive[face[k]] != positive[face[(k + 1) % 4]]]
        if len(crossed) == 2:
            pairs = [tuple(crossed)]
        elif len(crossed) == 4:
            # Ambiguous face (alternating signs): cut off each positive corner on its own, a
            # rule that depends on the face alone, so two cells sharing it agree.
            k0 = next(k for k in range(4) if positive[face[k]])
            around = [_edge_id(face[(k0 + j) % 4], face[(k0 + j + 1) % 4]) for j in range(4)]
            pairs = [(around[3], around[0]), (around[1], around[2])]
        else:
            pairs = []
        for a, b in pairs:
            neighbours.setdefault(a, []).append(b)
            neighbours.setdefault(b, []).append(a)
    triangles: list[tuple[int, int, int]] = []
    unused = set(neighbours)
    while unused:
        start = min(unused)
        loop, previous, current = [start], None, start
        while True:
            nxt = [n for n in neighbours[current] if n != previous]
            step = nxt[0] if nxt else neighbours[current][0]
            if step == start:
                break
            loop.append(step)
            previous, current = current, step
        unused -= set(loop)
        # Orient the loop so its normal points from the positive towards the negative corners
        # (outward for a field that is negative inside, as a signed distance).
        mid = {e: CORNERS[EDGES[e]].mean(axis=0) for e in loop}
        normal = np.zeros(3)
        for k, e in enumerate(loop):
            normal += np.cross(mid[e], mid[loop[(k + 1) % len(loop)]])
        towards_negative = np.zeros(3)
        for e in loop:
            a, b = EDGES[e]
            towards_negative += (CORNERS[b] - CORNERS[a]) * (1 if positive[a] else -1)
        if normal @ towards_negative > 0:
            loop = loop[::-1]
        triangles += [(loop[0], loop[k], loop[k + 1]) for k in range(1, len(loop) - 1)]
    return triangles


@functools.lru_cache(maxsize=1)
def triangle_table() -> tuple[np.ndarray, np.ndarray]:
    """``(256, T, 3)`` edge ids of each configuration's triangles (padded with -1), and ``(256,)`` counts.

    A configuration's bit ``i`` is set when corner ``i`` (:data:`CORNERS`) is positive. Each
    face's right-hand normal points from the positive towards the negative corners.
    """
    tables = [_triangulate(c) for c in range(256)]
    most = max(len(t) for t in tables)
    table = -np.ones((256, most, 3), dtype=np.int64)
    for c, tris in enumerate(tables):
        if tris:
            table[c, : len(tris)] = np.array(tris)
    return table, np.array([len(t) for t in tables], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Evaluating a UDF on a grid (coarse to fine) with gradients where needed
# --------------------------------------------------------------------------------------------

UdfFn = Callable[..., Any]
"""``(M, 3)`` float tensor -> ``(M,)`` unsigned distances, differentiable w.r.t. the points."""


@dataclass
class UdfGrid:
    """A UDF sampled on the corner grid ``linspace(-bound, bound, R)^3`` (``[i, j, k]`` = x, y, z).

    ``values`` holds ``inf`` where the coarse pass proved the surface far away (not evaluated).
    ``gradients`` are known only at the flat indices ``gradient_index`` (sorted).
    """

    values: np.ndarray  # (R, R, R) float32
    bound: float
    gradient_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (K,)
    gradients: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.float32))  # (K, 3)
    evaluated: int = 0  # UDF evaluations made (coarse + fine)
    max_distance: float | None = None  # clip distance of a clipped UDF

    def cell_threshold(self, factor: float) -> float:
        """A cell may hold surface when its smallest corner UDF is below this.

        ``floor + factor * voxel * sqrt(3)``, but for a clipped UDF at most 80 % of the way
        from the floor to the clip distance: where the UDF saturates its gradient is noise.
        """
        floor = _floor(self.values)
        threshold = floor + factor * self.voxel * math.sqrt(3)
        if self.max_distance is not None:
            threshold = min(threshold, floor + 0.8 * (self.max_distance - floor))
        return threshold

    @property
    def resolution(self) -> int:
        return int(self.values.shape[0])

    @property
    def voxel(self) -> float:
        return 2.0 * self.bound / (self.resolution - 1)

    def points(self, flat: np.ndarray) -> np.ndarray:
        """World coordinates ``(M, 3)`` of flat grid indices."""
        r = self.resolution
        ijk = np.stack(np.unravel_index(flat, (r, r, r)), axis=1)
        return -self.bound + ijk * self.voxel


def _eval_chunks(fn: UdfFn, points: np.ndarray, chunk: int, device, dtype, with_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    import torch

    values = np.empty(len(points), dtype=np.float32)
    grads = np.empty((len(points), 3), dtype=np.float32) if with_grad else None
    for start in range(0, len(points), chunk):
        x = torch.as_tensor(points[start : start + chunk], device=device, dtype=dtype)
        if with_grad:
            with torch.enable_grad():
                x = x.requires_grad_(True)
                u = fn(x).reshape(-1)
                (g,) = torch.autograd.grad(u.sum(), x, allow_unused=False) if u.requires_grad else (torch.zeros_like(x),)
            grads[start : start + len(x)] = torch.nan_to_num(g.detach()).to("cpu", torch.float32).numpy()  # type: ignore[index]
        else:
            with torch.no_grad():
                u = fn(x).reshape(-1)
        values[start : start + len(x)] = u.detach().to("cpu", torch.float32).numpy()
    return values, grads


def _module_device_dtype(fn: UdfFn, device):
    import torch

    param = None
    if isinstance(fn, torch.nn.Module):
        param = next((p for p in fn.parameters() if p.is_floating_point()), None)
    if device is None:
        device = param.device if param is not None else torch.device("cpu")
    return torch.device(device), (param.dtype if param is not None else torch.float32)


def _corner_offsets(r: int, stride: int = 1) -> np.ndarray:
    """Flat-index offsets of the 8 corners of a cell (or block of ``stride`` cells)."""
    return (CORNERS[:, 0] * r * r + CORNERS[:, 1] * r + CORNERS[:, 2]) * stride


def _cell_origins(r: int, stride: int = 1) -> np.ndarray:
    """Flat indices of the lowest corner of every cell (or block) of the grid."""
    axis = np.arange(0, r - 1, stride)
    i, j, k = np.meshgrid(axis, axis, axis, indexing="ij")
    return (i * r * r + j * r + k).reshape(-1)


def sample_udf_grid(
    udf_fn: UdfFn,
    resolution: int,
    *,
    bound: float = 1.0,
    max_distance: float | None = None,
    cell_threshold: float = 1.0,
    chunk: int = 65_536,
    device=None,
) -> UdfGrid:
    """Evaluate ``udf_fn`` on the corner grid, coarse to fine, with gradients near the surface.

    Args:
        udf_fn: ``(M, 3) -> (M,)`` unsigned distance, differentiable w.r.t. the points.
        resolution: R samples per axis (>= 3); the voxel is ``2 * bound / (R - 1)``.
        bound: half the side of the box.
        max_distance: the clip distance of a clipped UDF (its value saturates there); the coarse
            stride is chosen so a block's test stays below it. None: unclipped.
        cell_threshold: a cell may hold surface when its smallest corner UDF is below
            ``cell_threshold * voxel * sqrt(3)``; gradients are computed at such cells' corners.
        chunk: most points evaluated at once.
        device: None -> the module's device (or CPU).
    """
    if int(resolution) != resolution or resolution < 3:
        raise NrtoolError(f"resolution must be an integer >= 3, got {resolution}")
    if chunk < 1:
        raise NrtoolError(f"chunk must be >= 1, got {chunk}")
    r = int(resolution)
    dev, dtype = _module_device_dtype(udf_fn, device)
    voxel = 2.0 * bound / (r - 1)
    values = np.full(r**3, np.inf, dtype=np.float32)
    # Coarse stride: the largest whose block diagonal (with a margin for a learned, only
    # approximately 1-Lipschitz UDF) stays below the clip distance.
    stride = 1
    for s in (8, 4, 2):
        if (r - 1) % s == 0 and (r - 1) // s >= 2 and (max_distance is None or s * voxel * math.sqrt(3) < 0.8 * max_distance):
            stride = s
            break
    evaluated = 0
    if stride > 1:
        axis = np.arange(0, r, stride)
        ci, cj, ck = np.meshgrid(axis, axis, axis, indexing="ij")
        coarse = (ci * r * r + cj * r + ck).reshape(-1)
        grid = UdfGrid(values.reshape(r, r, r), bound)
        coarse_values, _ = _eval_chunks(udf_fn, grid.points(coarse), chunk, dev, dtype, False)
        values[coarse] = coarse_values
        evaluated += len(coarse)
        blocks = _cell_origins(r, stride)
        corner_min = values[blocks[:, None] + _corner_offsets(r, stride)[None]].min(axis=1)
        reach = 1.25 * stride * voxel * math.sqrt(3)
        if max_distance is not None:
            reach = min(reach, 0.95 * max_distance)
        active = blocks[corner_min < _floor(coarse_values) + reach]
        # Every fine point inside the active blocks.
        local = np.arange(stride + 1)
        li, lj, lk = np.meshgrid(local, local, local, indexing="ij")
        inside = (li * r * r + lj * r + lk).reshape(-1)
        fine = np.unique((active[:, None] + inside[None]).reshape(-1)) if len(active) else np.zeros(0, dtype=np.int64)
        fine = fine[~np.isfinite(values[fine])]
    else:
        fine = np.arange(r**3)
    grid = UdfGrid(values.reshape(r, r, r), bound, max_distance=max_distance)
    if len(fine):
        fine_values, _ = _eval_chunks(udf_fn, grid.points(fine), chunk, dev, dtype, False)
        values[fine] = fine_values
        evaluated += len(fine)
    if not np.all(np.isfinite(values) | np.isposinf(values)):
        raise NrtoolError("the UDF produced NaN or negative-infinite values")
    cells = _candidate_cells(values, r, grid.cell_threshold(cell_threshold))
    corners = np.unique((cells[:, None] + _corner_offsets(r)[None]).reshape(-1)) if len(cells) else np.zeros(0, dtype=np.int64)
    gradients = np.zeros((0, 3), dtype=np.float32)
    if len(corners):
        _, gradients = _eval_chunks(udf_fn, grid.points(corners), chunk, dev, dtype, True)  # type: ignore[assignment]
        evaluated += len(corners)
    return UdfGrid(values.reshape(r, r, r), bound, corners, gradients, evaluated, max_distance)


def _floor(values: np.ndarray) -> float:
    """The smallest finite UDF value: 0 for an exact UDF, a learned UDF's offset otherwise."""
    finite = values[np.isfinite(values)]
    return float(max(finite.min(), 0.0)) if finite.size else 0.0


def _candidate_cells(values: np.ndarray, r: int, threshold: float) -> np.ndarray:
    """Cells whose smallest corner UDF is below ``threshold`` (flat index of the lowest corner)."""
    near = values.reshape(r, r, r) < threshold
    # A cell is a candidate when any of its 8 corners is near: OR over the corner offsets.
    any_near = np.zeros((r - 1, r - 1, r - 1), dtype=bool)
    for dx, dy, dz in CORNERS:
        any_near |= near[dx : r - 1 + dx, dy : r - 1 + dy, dz : r - 1 + dz]
    i, j, k = np.nonzero(any_near)
    return (i * r * r + j * r + k).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Meshing
# --------------------------------------------------------------------------------------------


@dataclass
class MeshUdfResult:
    vertices: np.ndarray  # (V, 3) float64, world frame
    faces: np.ndarray  # (F, 3) int64
    removed_faces: int  # faces dropped by the UDF threshold
    voxel: float


def mesh_udf_grid(grid: UdfGrid, face_values: Callable[[np.ndarray], np.ndarray] | None = None,
                  face_threshold: float = 0.5, cell_threshold: float = 1.0) -> MeshUdfResult:
    """Triangle mesh of the zero set of a sampled UDF (see the module docstring).

    Args:
        grid: from :func:`sample_udf_grid`.
        face_values: ``(M, 3) points -> (M,)`` UDF, used at vertices and face centroids; None
            -> trilinear interpolation of the grid (less exact; pass the field where available).
        face_threshold: faces whose centroid UDF exceeds the surface's level (the 10th
            percentile of the UDF at the vertices: 0 for an exact UDF, a learned UDF's small
            offset otherwise) by more than ``face_threshold * voxel`` are removed (they continue
            a sheet beyond its open boundary). ``inf`` keeps all.
        cell_threshold: as in :func:`sample_udf_grid`.

    Returns:
        vertices (V, 3) and faces (F, 3); empty when the field has no zero set in the box.
    """
    r, voxel = grid.resolution, grid.voxel
    values = grid.values.reshape(-1)
    cells = _candidate_cells(grid.values, r, grid.cell_threshold(cell_threshold))
    if len(cells) == 0 or len(grid.gradient_index) == 0:
        return MeshUdfResult(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), 0, voxel)
    corner_flat = cells[:, None] + _corner_offsets(r)[None]  # (C, 8)
    u = values[corner_flat].astype(np.float64)  # (C, 8)
    u[~np.isfinite(u)] = 1e3 * voxel  # a corner the coarse pass skipped is far from the surface
    slot = np.searchsorted(grid.gradient_index, corner_flat)
    slot = np.clip(slot, 0, len(grid.gradient_index) - 1)
    known = grid.gradient_index[slot] == corner_flat
    g = np.where(known[..., None], grid.gradients[slot], 0.0).astype(np.float64)  # (C, 8, 3)
    ref = np.argmax(u, axis=1)
    g_ref = g[np.arange(len(cells)), ref]  # (C, 3)
    dots = np.einsum("cij,cj->ci", g, g_ref)
    positive = dots >= 0  # the reference corner, and corners whose gradient agrees with it
    config = (positive.astype(np.int64) << np.arange(8)).sum(axis=1)
    table, counts = triangle_table()
    n_tri = counts[config]
    keep = n_tri > 0
    cells, corner_flat, u, config, n_tri = cells[keep], corner_flat[keep], u[keep], config[keep], n_tri[keep]
    if len(cells) == 0:
        return MeshUdfResult(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), 0, voxel)
    # Every triangle of every cell, as 3 local edge ids.
    cell_of = np.repeat(np.arange(len(cells)), n_tri)
    tri_in_cell = np.arange(len(cell_of)) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri)
    local_edges = table[config[cell_of], tri_in_cell]  # (T, 3)
    # Global edge key: (flat index of the edge's lower corner) * 3 + axis.
    a_corner = EDGES[local_edges, 0]
    b_corner = EDGES[local_edges, 1]
    a_flat = corner_flat[cell_of[:, None], a_corner]
    b_flat = corner_flat[cell_of[:, None], b_corner]
    keys = a_flat * 3 + EDGE_AXIS[local_edges]
    unique_keys, inverse = np.unique(keys.reshape(-1), return_inverse=True)
    first = np.zeros(len(unique_keys), dtype=np.int64)
    first[inverse] = np.arange(inverse.size)
    ua = u[cell_of[:, None], a_corner].reshape(-1)[first]
    ub = u[cell_of[:, None], b_corner].reshape(-1)[first]
    pa = grid.points(a_flat.reshape(-1)[first])
    pb = grid.points(b_flat.reshape(-1)[first])
    field = face_values or (lambda points: _trilinear(grid, points))

    def place(level: float) -> np.ndarray:
        # The crossing of a sign-changing edge, measuring distances from the surface's level.
        da, db = np.maximum(ua - level, 0.0), np.maximum(ub - level, 0.0)
        t = np.clip(da / np.maximum(da + db, 1e-12), 0.0, 1.0)
        return pa + t[:, None] * (pb - pa)

    vertices = place(0.0)
    # A learned UDF rarely reaches 0 on its surface: its level there is a low percentile of the
    # UDF at the vertices (0 for an exact UDF; not the median, which spurious vertices where a
    # poorly trained UDF dips would raise), and the vertices are placed again relative to it.
    level = max(float(np.percentile(np.asarray(field(vertices), dtype=np.float64), 10)), 0.0) if len(vertices) else 0.0
    if level > 0.05 * voxel:
        vertices = place(level)
    faces = inverse.reshape(-1, 3)
    face_u = np.asarray(field(vertices[faces].mean(axis=1)), dtype=np.float64).reshape(-1)
    # Faces clearly above the level continue a sheet past its open boundary.
    kept = face_u <= level + face_threshold * voxel
    removed = int((~kept).sum())
    faces = faces[kept]
    used = np.unique(faces)
    remap = -np.ones(len(vertices), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return MeshUdfResult(vertices[used], remap[faces], removed, voxel)


def _trilinear(grid: UdfGrid, points: np.ndarray) -> np.ndarray:
    r, voxel = grid.resolution, grid.voxel
    f = np.clip((points + grid.bound) / voxel, 0, r - 1 - 1e-9)
    base = np.floor(f).astype(np.int64)
    w = f - base
    out = np.zeros(len(points))
    for dx, dy, dz in CORNERS:
        weight = (w[:, 0] if dx else 1 - w[:, 0]) * (w[:, 1] if dy else 1 - w[:, 1]) * (w[:, 2] if dz else 1 - w[:, 2])
        value = grid.values[base[:, 0] + dx, base[:, 1] + dy, base[:, 2] + dz].astype(np.float64)
        out += weight * np.where(np.isfinite(value), value, 1e6)
    return out


def mesh_udf(
    udf_fn: UdfFn,
    resolution: int = 128,
    *,
    bound: float = 1.0,
    max_distance: float | None = None,
    face_threshold: float = 0.5,
    cell_threshold: float = 1.0,
    chunk: int = 65_536,
    device=None,
) -> MeshUdfResult:
    """Open mesh of the zero set of ``udf_fn`` in ``[-bound, bound]^3`` (MeshUDF-style).

    Samples the field (:func:`sample_udf_grid`), meshes it (:func:`mesh_udf_grid`) and filters
    faces by the field's own value at their centroids. Vertices are float64 ``(V, 3)`` in the
    field's frame, faces int64 ``(F, 3)``; both empty when there is no surface.
    """
    grid = sample_udf_grid(udf_fn, resolution, bound=bound, max_distance=max_distance,
                           cell_threshold=cell_threshold, chunk=chunk, device=device)
    dev, dtype = _module_device_dtype(udf_fn, device)

    def at_centroids(points: np.ndarray) -> np.ndarray:
        values, _ = _eval_chunks(udf_fn, points, chunk, dev, dtype, False)
        return values

    return mesh_udf_grid(grid, at_centroids, face_threshold=face_threshold, cell_threshold=cell_threshold)


# --------------------------------------------------------------------------------------------
# Mesh helpers
# --------------------------------------------------------------------------------------------


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V, 3)`` unit normals that do not depend on face orientation.

    A MeshUDF mesh is oriented per cell only, so averaging face normals could cancel out.
    Instead each vertex takes the principal direction of the area-weighted outer products
    ``sum_f a_f n_f n_f^T`` of its faces (the sign is arbitrary).
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    area2 = np.linalg.norm(cross, axis=1, keepdims=True)
    n = cross / np.maximum(area2, 1e-20)
    outer = (area2[:, :, None] * n[:, :, None] * n[:, None, :])  # (F, 3, 3)
    acc = np.zeros((len(v), 3, 3))
    for k in range(3):
        np.add.at(acc, f[:, k], outer)
    acc += np.eye(3) * 1e-20
    _, vecs = np.linalg.eigh(acc)
    return vecs[:, :, -1]


def drop_small_components(vertices: np.ndarray, faces: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove connected pieces with fewer than ``fraction`` of the largest piece's faces.

    A learned UDF can dip towards zero in places it was rarely supervised, leaving small
    floating patches; a garment is one piece (or a few large ones).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(faces) == 0 or fraction <= 0:
        return vertices, faces
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(vertices),) * 2)
    _, labels = connected_components(graph, directed=False)
    face_label = labels[faces[:, 0]]
    sizes = np.bincount(face_label)
    keep = sizes[face_label] >= fraction * sizes.max()
    faces = faces[keep]
    used = np.unique(faces)
    remap = -np.ones(len(vertices), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def double_layer_fraction(vertices: np.ndarray, faces: np.ndarray, spacing: float, samples: int = 20_000,
                          seed: int = 0) -> float:
    """Fraction of a mesh's surface that has another sheet of it within ``spacing`` along its normal.

    Points are drawn uniformly on the surface; from each, the probes ``p +- spacing * n`` look for
    the nearest surface sample. On a single sheet both probes are about ``spacing`` away from
    the surface; a second, parallel sheet closer than ``2 * spacing`` (the double layer of
    plain marching cubes on a UDF) brings one probe within ``spacing / 2`` of it. Folds and
    sharp bends count too, so a clean single-layer garment scores a few percent, not zero.
    """
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if len(f) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    area = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(area[:, None], 1e-20)

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        which = rng.choice(len(f), count, p=area / area.sum())
        r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
        tri = v[f[which]]
        points = (1 - r1)[:, None] * tri[:, 0] + (r1 * (1 - r2))[:, None] * tri[:, 1] + (r1 * r2)[:, None] * tri[:, 2]
        return points, normals[which]

    dense, _ = draw(4 * samples)
    tree = cKDTree(dense)
    points, n = draw(samples)
    near = np.minimum(tree.query(points + spacing * n)[0], tree.query(points - spacing * n)[0])
    return float(np.mean(near < 0.5 * spacing))


def differentiable_vertices(udf_fn: UdfFn, vertices, normals=None, faces=None, epsilon: float | None = None,
                            reference=None):
    """Vertices as a tensor whose gradient flows to the UDF's parameters (MeshUDF's backward).

    Forward: exactly ``vertices``. Backward: ``dv/dz = -n (du(p)/dz) / (n . grad_x u(p))`` with
    ``p = v + epsilon * n``, the implicit-function derivative of the constraint
    ``u(v + epsilon n; z) = epsilon`` (see the module docstring).

    Args:
        udf_fn: ``(M, 3) -> (M,)``; closes over what gradients should reach (e.g. a latent
            code with ``requires_grad``).
        vertices: ``(V, 3)`` array or tensor (from :func:`mesh_udf`).
        normals: ``(V, 3)`` unit normals (any sign); default :func:`vertex_normals` of ``faces``.
        faces: needed when ``normals`` is None.
        epsilon: offset off the surface; default 1e-2 (a voxel at 200^3 over [-1, 1]).
        reference: ``(V,)`` the UDF at ``v + epsilon n`` for the code the vertices were meshed
            from. Given, the forward pass moves too: ``v - n (u(p) - reference) / (n . grad u)``,
            the surface's first-order motion as the code moves away from that code (fitting
            re-meshes only every few steps and lets the vertices follow in between).

    Returns:
        ``(V, 3)`` tensor equal to ``vertices`` (without ``reference``), differentiable w.r.t.
        what ``udf_fn`` uses.
    """
    import torch

    v = torch.as_tensor(np.asarray(vertices) if not isinstance(vertices, torch.Tensor) else vertices.detach())
    if normals is None:
        if faces is None:
            raise NrtoolError("differentiable_vertices needs normals or faces")
        normals = vertex_normals(v.cpu().numpy(), np.asarray(faces))
    n = torch.as_tensor(np.asarray(normals) if not isinstance(normals, torch.Tensor) else normals.detach())
    if isinstance(udf_fn, torch.nn.Module):  # follow the model's device and precision
        dev, dtype = _module_device_dtype(udf_fn, None)
        v = v.to(device=dev, dtype=dtype)
    n = n.to(v)
    eps = 1e-2 if epsilon is None else float(epsilon)
    p = (v + eps * n).detach().requires_grad_(True)
    with torch.enable_grad():
        u = udf_fn(p).reshape(-1)
        (grad_x,) = torch.autograd.grad(u.sum(), p, retain_graph=True, create_graph=False)
    along = (grad_x.detach() * n).sum(dim=1)
    # Where the UDF is flat along n (a bad normal), the derivative is undefined: no gradient.
    scale = torch.where(along.abs() > 1e-3, 1.0 / along, torch.zeros_like(along))
    base = u.detach() if reference is None else torch.as_tensor(reference).to(u)
    shift = (u - base) * scale  # d u(p)/dz / (n . grad u) backward; zero forward without a reference
    return v - n * shift.unsqueeze(1)
