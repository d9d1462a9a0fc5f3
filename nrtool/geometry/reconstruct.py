"""Turn a field function (an INR) back into discrete geometry.

A *field function* is any callable ``f(points) -> values`` with ``points`` a ``(M, 3)`` float
tensor in the normalised frame (shapes inside ``[-1, 1]^3``) and ``values`` a ``(M,)`` tensor
(``(M, 1)`` is accepted too), differentiable with respect to ``points``. A SIREN is one; so is an
analytic field such as ``lambda p: p.norm(dim=1) - 0.5``.

Three reconstructions, one per kind of field fitted by inr2vec:

- :func:`udf_to_points`: unsigned distance → point cloud (projection of near-surface queries);
- :func:`sdf_to_mesh`: signed distance → triangle mesh (marching cubes);
- :func:`occupancy_to_voxels`: occupancy probability → boolean voxel grid.

Every function evaluates the field in chunks of at most ``chunk`` points, so memory stays
bounded whatever the resolution or the number of points asked for. None of them raises when the
field yields no geometry (a udf that never gets small, an sdf that never crosses its level): they
return empty arrays and let the caller report the item.

Two grid conventions exist, on purpose (see :func:`grid_points`):

- *cell centres* (occupancy voxels): voxel ``(i, j, k)`` of a ``R^3`` grid covers a cube of side
  ``2 * bound / R`` whose centre is ``-bound + (i + 0.5) * 2 * bound / R`` along x (and likewise
  j → y, k → z), so the R voxels tile ``[-bound, bound]`` exactly;
- *corners* (marching cubes): sample ``i`` sits at ``linspace(-bound, bound, R)[i]``, so the
  extracted surface spans the whole box and its vertices map back with one scale and shift.

In both, arrays are indexed ``[i, j, k]`` with x along axis 0 (``indexing='ij'``), and flattening
is C order (k fastest).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from nrtool.errors import NrtoolError

FieldFn = Callable[[torch.Tensor], torch.Tensor]
"""``(M, 3)`` points → ``(M,)`` values, differentiable w.r.t. the points."""

DeviceLike = torch.device | str | None

__all__ = [
    "FieldFn",
    "grid_points",
    "occupancy_to_voxels",
    "sdf_to_mesh",
    "udf_to_points",
]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _field_device_dtype(fn: FieldFn, device: DeviceLike) -> tuple[torch.device, torch.dtype]:
    """Where and in which float type to build query points for ``fn``.

    An explicit ``device`` wins (``"auto"`` means CUDA when available). Otherwise, when ``fn``
    is a module with parameters, follow its first parameter, so a model moved to the GPU is
    queried there without the caller repeating it; anything else runs on the CPU. The dtype
    follows a module's floating-point parameters (a float64 model gets float64 queries), else
    float32.
    """
    param: torch.Tensor | None = None
    if isinstance(fn, torch.nn.Module):
        param = next((p for p in fn.parameters() if p.is_floating_point()), None)
    if device is None:
        dev = param.device if param is not None else torch.device("cpu")
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
    dtype = param.dtype if param is not None else torch.float32
    return dev, dtype


def _evaluate(fn: FieldFn, points: torch.Tensor) -> torch.Tensor:
    """``fn(points)`` as a ``(M,)`` tensor; accepts fields that answer ``(M, 1)``."""
    values = fn(points)
    if values.numel() != points.shape[0]:
        raise ValueError(
            f"field function returned shape {tuple(values.shape)} for {points.shape[0]} points;"
            " expected (M,) or (M, 1)"
        )
    return values.reshape(-1)


def _check_resolution(resolution: int, bound: float, minimum: int) -> None:
    if int(resolution) != resolution or resolution < minimum:
        raise NrtoolError(f"resolution must be an integer >= {minimum}, got {resolution}")
    if not (bound > 0 and math.isfinite(bound)):
        raise NrtoolError(f"bound must be a positive finite number, got {bound}")


def _axis_coordinates(resolution: int, bound: float, *, cell_centres: bool) -> torch.Tensor:
    """``(R,)`` float64 coordinates of the grid samples along one axis (see module docstring)."""
    if cell_centres:
        step = 2.0 * bound / resolution
        return -bound + (torch.arange(resolution, dtype=torch.float64) + 0.5) * step
    return torch.linspace(-bound, bound, resolution, dtype=torch.float64)


def grid_points(
    resolution: int,
    bound: float = 1.0,
    *,
    cell_centres: bool = True,
    device: DeviceLike = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """All ``R^3`` sample points of a regular grid over ``[-bound, bound]^3``.

    Args:
        resolution: R, samples per axis.
        bound: half the side of the box.
        cell_centres: True → voxel centres ``-bound + (i + 0.5) * 2 * bound / R`` (the
            convention of :func:`occupancy_to_voxels`); False → corners
            ``linspace(-bound, bound, R)`` (the convention of :func:`sdf_to_mesh`).
        device, dtype: of the returned tensor.

    Returns:
        ``(R^3, 3)`` tensor; row ``(i * R + j) * R + k`` is the point ``(x_i, y_j, z_k)``, so
        ``values.reshape(R, R, R)[i, j, k]`` is the value at that point.

    This materialises the whole grid (``12 * R^3`` bytes in float32); the reconstruction
    functions build it chunk by chunk instead, with the same coordinates.
    """
    _check_resolution(resolution, bound, 1)
    axis = _axis_coordinates(resolution, bound, cell_centres=cell_centres)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)
    return grid.reshape(-1, 3).to(device=device, dtype=dtype)


def _evaluate_on_grid(
    fn: FieldFn,
    resolution: int,
    bound: float,
    *,
    cell_centres: bool,
    chunk: int,
    device: torch.device,
    dtype: torch.dtype,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``fn`` on every point of :func:`grid_points`, as a ``(R, R, R)`` float array.

    Builds the coordinates of each chunk from flat indices rather than slicing a full grid, so
    peak memory is ``O(chunk)`` on the device plus the ``(R, R, R)`` result on the host.
    """
    if chunk < 1:
        raise NrtoolError(f"chunk must be >= 1, got {chunk}")
    r = resolution
    axis = _axis_coordinates(r, bound, cell_centres=cell_centres).to(device=device, dtype=dtype)
    total = r**3
    out = np.empty(total, dtype=np.float32 if dtype != torch.float64 else np.float64)
    with torch.no_grad():
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            flat = torch.arange(start, stop, device=device)
            i = torch.div(flat, r * r, rounding_mode="floor")
            j = torch.div(flat, r, rounding_mode="floor") % r
            k = flat % r
            pts = torch.stack((axis[i], axis[j], axis[k]), dim=1)
            out[start:stop] = _evaluate(fn, pts).detach().to("cpu", torch.float64).numpy()
            if progress is not None:
                progress(stop, total)
    return out.reshape(r, r, r)


# --------------------------------------------------------------------------------------------
# udf → point cloud
# --------------------------------------------------------------------------------------------


def _project_onto_surface(
    udf_fn: FieldFn, points: torch.Tensor, steps: int, chunk: int
) -> torch.Tensor:
    """Move points onto the zero set: ``x <- x - udf(x) * grad / |grad|`` (thesis Eq. C.5).

    Gradients are taken w.r.t. the points only (``torch.autograd.grad``), so a model's parameter
    ``.grad`` is never touched. Points whose gradient vanishes stay where they are (the epsilon
    keeps the division finite) and non-finite results are dropped.
    """
    moved: list[torch.Tensor] = []
    with torch.enable_grad():  # callers often hold torch.no_grad() around evaluation code
        for start in range(0, points.shape[0], chunk):
            x = points[start : start + chunk].detach()
            for _ in range(steps):
                x = x.detach().requires_grad_(True)
                udf = _evaluate(udf_fn, x)
                if not udf.requires_grad:
                    raise ValueError(
                        "udf_to_points: the field function is not differentiable w.r.t. its"
                        " input (its output carries no gradient)"
                    )
                (grad,) = torch.autograd.grad(udf.sum(), x)
                norm = grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                x = x - udf.detach().unsqueeze(1) * grad / norm
            moved.append(x.detach())
    out = torch.cat(moved) if moved else points[:0]
    return out[torch.isfinite(out).all(dim=1)]


def udf_to_points(
    udf_fn: FieldFn,
    n_points: int,
    *,
    threshold: float = 0.05,
    projection_steps: int = 5,
    queries_per_round: int = 200_000,
    max_rounds: int = 50,
    chunk: int = 32_768,
    bound: float = 1.0,
    device: DeviceLike = None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Dense point cloud on the zero set of an unsigned distance field (thesis Eq. C.5).

    Each round draws uniform queries in ``[-bound, bound]^3``, keeps those with predicted
    ``udf < threshold``, projects each ``projection_steps`` times with
    ``x <- x - udf(x) * grad udf(x) / |grad udf(x)|`` and collects them, until ``n_points``
    are gathered; the union is then subsampled to exactly ``n_points``.

    Rounds after the first are sized from the hit rate seen so far (with a 25 % margin, capped
    at ``queries_per_round``), so a thin shape gets more queries and the last round does not
    waste a full batch on a few missing points.

    Works under an outer ``torch.no_grad()``: gradients are enabled inside, taken w.r.t. the
    query points only.

    Args:
        udf_fn: field function ``(M, 3) -> (M,)``, differentiable w.r.t. its input.
        n_points: number of points wanted.
        threshold: queries with predicted udf below it are projected.
        projection_steps: projection iterations per kept query.
        queries_per_round: most uniform queries drawn in one round.
        max_rounds: give up after this many rounds.
        chunk: most points evaluated (and back-propagated) at once.
        bound: half the side of the sampled box.
        device: where to evaluate; None → the module's device (or CPU), ``"auto"`` → CUDA if
            available.
        generator: for reproducible queries and subsampling; its device is where random numbers
            are drawn (the points are moved to ``device`` afterwards).

    Returns:
        ``(n_points, 3)`` float32 array — or ``(k, 3)`` with ``k < n_points`` (possibly 0) when
        ``max_rounds`` rounds did not find enough near-surface queries; the caller reports it.
    """
    if int(n_points) != n_points or n_points < 0:
        raise NrtoolError(f"n_points must be a non-negative integer, got {n_points}")
    if not threshold > 0:
        raise NrtoolError(f"threshold must be positive, got {threshold}")
    if projection_steps < 0 or max_rounds < 1 or queries_per_round < 1 or chunk < 1:
        raise NrtoolError(
            "projection_steps must be >= 0 and max_rounds, queries_per_round, chunk >= 1"
        )
    dev, dtype = _field_device_dtype(udf_fn, device)
    gen_device = generator.device if generator is not None else dev

    found: list[torch.Tensor] = []
    n_found = 0
    n_queried = 0
    n_hits = 0
    n_queries = queries_per_round
    for _ in range(max_rounds):
        if n_found >= n_points:
            break
        queries = torch.rand(n_queries, 3, generator=generator, device=gen_device, dtype=dtype)
        queries = (queries * 2.0 - 1.0).mul_(bound).to(dev)
        with torch.no_grad():
            near = torch.cat(
                [
                    queries[s : s + chunk][_evaluate(udf_fn, queries[s : s + chunk]) < threshold]
                    for s in range(0, n_queries, chunk)
                ]
            )
        n_queried += n_queries
        n_hits += near.shape[0]
        if near.shape[0]:
            projected = _project_onto_surface(udf_fn, near, projection_steps, chunk)
            found.append(projected)
            n_found += projected.shape[0]
        # Size the next round from the hit rate so far; the floor avoids a huge guess from a
        # round that found nothing (that case just keeps the full batch).
        missing = n_points - n_found
        if n_hits:
            rate = n_hits / n_queried
            n_queries = min(queries_per_round, max(chunk, math.ceil(1.25 * missing / rate)))
        else:
            n_queries = queries_per_round

    if not found:
        return np.zeros((0, 3), dtype=np.float32)
    points = torch.cat(found)
    if points.shape[0] > n_points:
        keep = torch.randperm(points.shape[0], generator=generator, device=gen_device)[:n_points]
        points = points[keep.to(points.device)]
    return points.detach().to("cpu", torch.float32).numpy()


# --------------------------------------------------------------------------------------------
# sdf → mesh
# --------------------------------------------------------------------------------------------


def sdf_to_mesh(
    sdf_fn: FieldFn,
    resolution: int,
    *,
    level: float = 0.0,
    bound: float = 1.0,
    chunk: int = 65_536,
    device: DeviceLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the ``level`` set of a signed distance field, by marching cubes.

    The field is evaluated (without gradients) on the *corner* grid
    ``linspace(-bound, bound, resolution)^3`` — so the surface can reach the box faces — and
    :func:`skimage.measure.marching_cubes` extracts the surface; vertices are mapped back to
    world coordinates.

    Faces are wound counter-clockwise seen from outside (right-hand normal pointing out) for a
    field that is negative inside and positive outside, the usual sdf sign.

    Args:
        sdf_fn: field function ``(M, 3) -> (M,)``.
        resolution: R, grid samples per axis (>= 2); the cell side is ``2 * bound / (R - 1)``.
        level: iso-value to extract.
        bound: half the side of the sampled box.
        chunk: most points evaluated at once.
        device: where to evaluate; None → the module's device (or CPU), ``"auto"`` → CUDA if
            available.

    Returns:
        ``vertices (V, 3)`` float64 and ``faces (F, 3)`` int64; both empty (``(0, 3)``) when
        the field does not cross ``level`` inside the box — the caller reports it.

    Raises:
        NrtoolError: the field produced NaN or infinite values.
    """
    _check_resolution(resolution, bound, 2)
    dev, dtype = _field_device_dtype(sdf_fn, device)
    volume = _evaluate_on_grid(
        sdf_fn, resolution, bound, cell_centres=False, chunk=chunk, device=dev, dtype=dtype
    )
    if not np.isfinite(volume).all():
        raise NrtoolError(
            f"sdf_to_mesh: the field is NaN or infinite at {int((~np.isfinite(volume)).sum())}"
            f" of {volume.size} grid points"
        )
    empty = (np.zeros((0, 3), np.float64), np.zeros((0, 3), np.int64))
    # marching_cubes raises when the level is outside the value range; a level that equals the
    # min or max gives no proper crossing either.
    if not (volume.min() < level < volume.max()):
        return empty

    from skimage import (
        measure,  # heavy import; only the reconstruction commands need it
    )

    step = 2.0 * bound / (resolution - 1)
    # 'descent' (skimage's default, passed explicitly because the winding depends on it) gives
    # outward right-hand normals when values grow from inside to outside, as an sdf does.
    vertices, faces, _normals, _values = measure.marching_cubes(
        volume,
        level=level,
        spacing=(step, step, step),
        gradient_direction="descent",
        allow_degenerate=False,
    )
    if faces.shape[0] == 0:
        return empty
    return vertices.astype(np.float64) - bound, faces.astype(np.int64)


# --------------------------------------------------------------------------------------------
# occupancy → voxels
# --------------------------------------------------------------------------------------------


def occupancy_to_voxels(
    occ_fn: FieldFn,
    resolution: int,
    *,
    threshold: float = 0.4,
    bound: float = 1.0,
    chunk: int = 65_536,
    device: DeviceLike = None,
) -> np.ndarray:
    """Boolean voxel grid of an occupancy field: voxel occupied where ``occ > threshold``.

    The field is evaluated (without gradients) at the voxel *centres*: voxel ``(i, j, k)`` has
    its centre at ``-bound + (i + 0.5) * 2 * bound / R`` along x (j → y, k → z), so the R^3
    voxels tile ``[-bound, bound]^3``.

    Args:
        occ_fn: field function ``(M, 3) -> (M,)`` returning probabilities in [0, 1] (apply the
            sigmoid first when the network outputs logits).
        resolution: R, voxels per axis.
        threshold: occupancy above it marks a voxel as filled (inr2vec uses 0.4).
        bound: half the side of the box.
        chunk: most points evaluated at once.
        device: where to evaluate; None → the module's device (or CPU), ``"auto"`` → CUDA if
            available.

    Returns:
        ``(R, R, R)`` bool array indexed ``[i, j, k]`` with x along axis 0; all False when
        nothing is occupied (the caller reports it).
    """
    _check_resolution(resolution, bound, 1)
    dev, dtype = _field_device_dtype(occ_fn, device)
    values = _evaluate_on_grid(
        occ_fn, resolution, bound, cell_centres=True, chunk=chunk, device=dev, dtype=dtype
    )
    # NaN compares False, so a broken field gives empty voxels rather than spurious ones.
    return values > threshold
