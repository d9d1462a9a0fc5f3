"""Reconstruction metrics: nearest distances, Chamfer distance, F-score, voxel IoU.

Point clouds are ``(N, 3)`` arrays (numpy, or torch tensors for :func:`nearest_distances`).
Distances are Euclidean, **not squared**, so a metric reads in the units of the shapes (the
normalised frame, unless the caller maps back).

Empty inputs: every point-cloud metric raises :class:`~nrtool.errors.NrtoolError` naming the
empty argument (a Chamfer distance or F-score of nothing is undefined, and a silent ``inf`` or
``0`` would pollute a mean over a dataset); the CLI catches it and reports the item. Voxel grids
are never "empty" in that sense: an all-False grid is a valid grid (see :func:`voxel_iou`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nrtool.errors import NrtoolError

ArrayLike = np.ndarray | torch.Tensor

__all__ = [
    "chamfer_distance",
    "chamfer_distances",
    "pad_clouds",
    "fscore",
    "nearest_distances",
    "resample_voxels",
    "sample_surface",
    "voxel_iou",
]


def _as_points(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a C-contiguous ``(N, 3)`` float64 array; NrtoolError when empty or malformed."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise NrtoolError(f"{name}: expected points of shape (N, 3), got {arr.shape}")
    if arr.shape[0] == 0:
        raise NrtoolError(f"{name}: the point cloud is empty")
    if not np.isfinite(arr).all():
        raise NrtoolError(f"{name}: the point cloud contains NaN or infinite coordinates")
    return arr


def _nearest_distances_kdtree(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """KD-tree path (CPU): pykdtree, or scipy's cKDTree where pykdtree is not installed."""
    try:
        from pykdtree.kdtree import KDTree
    except ImportError:  # pragma: no cover - depends on the environment
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(reference).query(query, k=1, workers=-1)
        return np.asarray(dist, dtype=np.float64)
    dist, _ = KDTree(reference).query(query, k=1)
    return np.asarray(dist, dtype=np.float64)


def _nearest_distances_torch(
    query: torch.Tensor, reference: torch.Tensor, chunk: int = 16_384
) -> torch.Tensor:
    """Brute-force path for accelerator tensors: PyTorch3D ``knn_points``, else chunked cdist.

    Brute force is the fast choice on a GPU and a slow one on a CPU (use the KD-tree there).
    Returns ``(M,)`` distances on the tensors' device.
    """
    q = query.detach().float()
    r = reference.detach().float().to(q.device)
    try:
        from pytorch3d.ops import knn_points
    except ImportError:
        # Plain torch keeps a GPU node without PyTorch3D working; chunking bounds the
        # (chunk, N) distance matrix.
        return torch.cat(
            [torch.cdist(q[s : s + chunk], r).amin(dim=1) for s in range(0, q.shape[0], chunk)]
        )
    knn = knn_points(q[None], r[None], K=1)
    return knn.dists[0, :, 0].clamp_min(0).sqrt()  # knn_points returns squared distances


def nearest_distances(query: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """Distance from each query point to its nearest reference point.

    CUDA tensors (both arguments) take the brute-force GPU path (PyTorch3D ``knn_points`` or
    chunked ``torch.cdist``, in float32); everything else goes through a KD-tree on the CPU in
    float64 (pykdtree, or scipy's cKDTree as a fallback).

    Args:
        query: ``(M, 3)`` points.
        reference: ``(N, 3)`` points.

    Returns:
        ``(M,)`` float64 array of Euclidean (not squared) distances.

    Raises:
        NrtoolError: either cloud is empty, not ``(N, 3)``, or not finite.
    """
    if (
        isinstance(query, torch.Tensor)
        and isinstance(reference, torch.Tensor)
        and query.is_cuda
        and reference.is_cuda
    ):
        for t, name in ((query, "query"), (reference, "reference")):
            if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] == 0:
                raise NrtoolError(
                    f"{name}: expected a non-empty (N, 3) cloud, got {tuple(t.shape)}"
                )
        dist = _nearest_distances_torch(query, reference)
        return dist.to("cpu", torch.float64).numpy()
    return _nearest_distances_kdtree(_as_points(query, "query"), _as_points(reference, "reference"))


def chamfer_distance(a: ArrayLike, b: ArrayLike) -> float:
    """Symmetric Chamfer distance: mean of the two mean nearest-neighbour distances.

    ``0.5 * (mean_a min_b |a - b| + mean_b min_a |a - b|)``, with Euclidean, not squared,
    distances: a cloud shifted by 0.1 is at Chamfer distance 0.1 from itself.

    Args:
        a: ``(M, 3)`` points.
        b: ``(N, 3)`` points.

    Raises:
        NrtoolError: either cloud is empty.
    """
    d_ab = nearest_distances(a, b)
    d_ba = nearest_distances(b, a)
    return float(0.5 * (d_ab.mean() + d_ba.mean()))


def pad_clouds(clouds: Sequence[np.ndarray | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """A list of ``(P_i, 3)`` clouds (``None`` = empty) as one ``(N, P_max, 3)`` float32 tensor,
    zero-padded, with ``(N,)`` int64 lengths: the PyTorch3D layout of a batch of clouds."""
    lengths = torch.tensor([0 if c is None else len(c) for c in clouds], dtype=torch.int64)
    padded = torch.zeros(len(clouds), max(int(lengths.max()) if len(clouds) else 0, 1), 3)
    for row, cloud in enumerate(clouds):
        if cloud is not None and len(cloud):
            padded[row, : len(cloud)] = torch.as_tensor(np.asarray(cloud, dtype=np.float32))
    return padded, lengths


def chamfer_distances(a: torch.Tensor, b: torch.Tensor, a_lengths: torch.Tensor | None = None,
                      b_lengths: torch.Tensor | None = None, empty: float = float("nan")) -> torch.Tensor:
    """:func:`chamfer_distance` of N pairs of clouds at once: ``a`` (N, P, 3), ``b`` (N, Q, 3),
    padded, with their lengths (N,) (default: all full), PyTorch3D-style. Returns (N,) float64;
    a pair where either cloud is empty gets ``empty``.

    On CUDA one ``knn_points`` call with lengths does the whole batch; on the CPU each pair goes
    through the KD-tree (brute force would be slower there, see DESIGN.md).
    """
    if a.ndim != 3 or b.ndim != 3 or a.shape[-1] != 3 or b.shape[-1] != 3 or len(a) != len(b):
        raise NrtoolError(f"chamfer_distances: expected (N, P, 3) and (N, Q, 3), got {tuple(a.shape)} and {tuple(b.shape)}")
    n = len(a)
    a_lengths = a_lengths if a_lengths is not None else torch.full((n,), a.shape[1], dtype=torch.int64)
    b_lengths = b_lengths if b_lengths is not None else torch.full((n,), b.shape[1], dtype=torch.int64)
    out = torch.full((n,), empty, dtype=torch.float64)
    full = (a_lengths > 0) & (b_lengths > 0)
    if a.is_cuda and full.any():
        try:
            from pytorch3d.ops import knn_points
        except ImportError:
            knn_points = None
        if knn_points is not None:
            rows = full.nonzero().squeeze(1)
            la, lb = a_lengths[rows].to(a.device), b_lengths[rows].to(a.device)
            ab = knn_points(a[rows].float(), b[rows].float(), lengths1=la, lengths2=lb, K=1).dists[..., 0].clamp_min(0).sqrt()
            ba = knn_points(b[rows].float(), a[rows].float(), lengths1=lb, lengths2=la, K=1).dists[..., 0].clamp_min(0).sqrt()
            mask_a = torch.arange(a.shape[1], device=a.device)[None] < la[:, None]
            mask_b = torch.arange(b.shape[1], device=a.device)[None] < lb[:, None]
            mean_ab = (ab * mask_a).sum(1) / la
            mean_ba = (ba * mask_b).sum(1) / lb
            out[rows.cpu()] = (0.5 * (mean_ab + mean_ba)).double().cpu()
            return out
    for row in full.nonzero().squeeze(1).tolist():
        out[row] = chamfer_distance(a[row, : int(a_lengths[row])], b[row, : int(b_lengths[row])])
    return out


def fscore(a: ArrayLike, b: ArrayLike, threshold: float = 0.01) -> float:
    """F-score at a distance threshold, ``a`` being the prediction and ``b`` the reference.

    precision = fraction of ``a`` within ``threshold`` (``<=``) of ``b``; recall = fraction of
    ``b`` within ``threshold`` of ``a``; ``F = 2 P R / (P + R)``, and 0 when both are 0.

    Args:
        a: ``(M, 3)`` predicted points.
        b: ``(N, 3)`` reference points.
        threshold: distance under which a point counts as matched.

    Raises:
        NrtoolError: either cloud is empty, or the threshold is negative.
    """
    if not threshold >= 0:
        raise NrtoolError(f"fscore threshold must be >= 0, got {threshold}")
    precision = float((nearest_distances(a, b) <= threshold).mean())
    recall = float((nearest_distances(b, a) <= threshold).mean())
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def sample_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """``n`` points drawn uniformly (by area) on the surface of a triangle mesh.

    A triangle is picked with probability proportional to its area, then a point uniformly
    inside it with the square-root barycentric trick (``u = 1 - sqrt(r1)``,
    ``v = sqrt(r1) (1 - r2)``, ``w = sqrt(r1) r2``), which, unlike normalising three uniform
    weights, does not crowd points towards the centroid.

    Args:
        vertices: ``(V, 3)`` vertex positions.
        faces: ``(F, 3)`` vertex indices.
        n: number of points.
        seed: an int, a numpy Generator, or None (fresh entropy).

    Returns:
        ``(n, 3)`` float64 array.

    Raises:
        NrtoolError: no faces, indices out of range, or zero total area.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise NrtoolError(f"sample_surface: vertices must be (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
        raise NrtoolError(f"sample_surface: faces must be a non-empty (F, 3) array, got {f.shape}")
    if int(n) != n or n < 0:
        raise NrtoolError(f"sample_surface: n must be a non-negative integer, got {n}")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise NrtoolError("sample_surface: face indices out of range of the vertices")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    tri = v[f]  # (F, 3 corners, 3 coords)
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    area = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
    total = area.sum()
    if not (total > 0 and np.isfinite(total)):
        raise NrtoolError("sample_surface: the mesh has zero (or non-finite) surface area")
    face_idx = rng.choice(f.shape[0], size=int(n), p=area / total)

    r1 = np.sqrt(rng.random(int(n)))
    r2 = rng.random(int(n))
    # Weights of corner 1 and corner 2 relative to corner 0: (v, w) above.
    w1 = (r1 * (1.0 - r2))[:, None]
    w2 = (r1 * r2)[:, None]
    return tri[face_idx, 0] + w1 * e1[face_idx] + w2 * e2[face_idx]


def voxel_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean voxel grids of the same shape.

    Two all-False grids agree perfectly and give 1.0 (rather than 0/0).

    Args:
        a, b: bool arrays of equal shape, e.g. ``(R, R, R)``; other dtypes are read as
            ``!= 0``. Use :func:`resample_voxels` first to compare different resolutions.

    Raises:
        NrtoolError: the shapes differ.
    """
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    if a.shape != b.shape:
        raise NrtoolError(
            f"voxel_iou: grids differ in shape {a.shape} vs {b.shape}; resample one first"
        )
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def resample_voxels(grid: np.ndarray, resolution: int) -> np.ndarray:
    """Nearest-neighbour resampling of a 3D bool grid to ``resolution^3``.

    Both grids tile the same box with the voxel-centre convention of
    :func:`nrtool.geometry.reconstruct.occupancy_to_voxels`: output voxel ``i`` takes the input
    voxel containing its centre, ``floor((i + 0.5) * R_in / R_out)``. Each axis is mapped on its
    own, so a non-cubic input comes out cubic. Upsampling by an integer factor and downsampling
    back returns the original grid exactly.

    Args:
        grid: ``(A, B, C)`` array (read as ``!= 0``).
        resolution: R of the output.

    Returns:
        ``(R, R, R)`` bool array.
    """
    g = np.asarray(grid) != 0
    if g.ndim != 3 or min(g.shape) == 0:
        raise NrtoolError(f"resample_voxels: expected a non-empty 3D grid, got shape {g.shape}")
    if int(resolution) != resolution or resolution < 1:
        raise NrtoolError(f"resample_voxels: resolution must be an integer >= 1, got {resolution}")
    r = int(resolution)
    # Integer arithmetic for floor((i + 0.5) * n / r) = floor((2i + 1) * n / (2r)): no float
    # rounding can push a centre that lies exactly on a boundary into the wrong voxel.
    idx = [((2 * np.arange(r) + 1) * n) // (2 * r) for n in g.shape]
    return g[np.ix_(*idx)]
