"""``.binvox`` voxel grids, encoded and decoded by trimesh (:mod:`trimesh.exchange.binvox`,
:mod:`trimesh.voxel.runlength`); what trimesh does not check -- a grid whose run lengths do not
cover its declared size, an empty grid, a non-finite or non-positive scale -- is checked here.

The format: ASCII header lines ``#binvox 1``, ``dim D H W``, ``translate tx ty tz``,
``scale s``, ``data``, then run-length ``(value, count)`` byte pairs over the voxels in x-z-y
order (y varies fastest, then z, then x).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nrtool.errors import InputFileError
from nrtool.io.shapes import PathLike, Shape, check_readable_file


def binvox_voxel_to_world(dims: Sequence[int], translate: Sequence[float], scale: float) -> np.ndarray:
    """``(4, 4)`` voxel-centre-to-world affine of a binvox grid.

    binvox normalises the model into a cube of side ``scale`` whose corner is ``translate``;
    for the usual cubic ``D^3`` grid, ``world = translate + (index + 0.5) / D * scale``.
    Non-cubic grids keep cubic voxels of side ``scale / max(dims)`` (binvox has one scale).
    """
    size = float(scale) / max(int(d) for d in dims)
    affine = np.eye(4)
    affine[:3, :3] *= size
    affine[:3, 3] = np.asarray(translate, dtype=np.float64) + 0.5 * size
    return affine


def load_binvox(path: PathLike) -> Shape:
    """Read a ``.binvox`` voxel grid.

    Returns:
        A ``kind="voxels"`` Shape with ``(D, H, W)`` bool ``occupancy`` indexed ``[x, y, z]`` and
        ``voxel_to_world`` from :func:`binvox_voxel_to_world`.
    """
    from trimesh.exchange.binvox import parse_binvox

    p = Path(path)
    check_readable_file(p)
    raw = p.read_bytes()
    if not raw.startswith(b"#binvox"):
        raise InputFileError(p, "not a binvox file (missing '#binvox' header)")
    try:
        parsed = parse_binvox(io.BytesIO(raw))
        dims = tuple(int(d) for d in parsed.shape)
        translate = tuple(float(t) for t in parsed.translate)
        scale = float(parsed.scale)
    except (ValueError, IndexError, TypeError) as exc:
        raise InputFileError(p, f"malformed binvox header ({str(exc).splitlines()[0]})") from exc
    if len(dims) != 3 or min(dims) <= 0:
        raise InputFileError(p, f"binvox dimensions must be three positive numbers, got {dims}")
    if not (len(translate) == 3 and np.all(np.isfinite(translate)) and np.isfinite(scale) and scale > 0):
        raise InputFileError(p, "binvox translate/scale must be finite with scale > 0")
    pairs = np.asarray(parsed.rle_data, dtype=np.uint8)
    if pairs.size % 2:
        raise InputFileError(p, "binvox run-length data is truncated (odd byte count)")
    total = int(pairs[1::2].sum(dtype=np.int64))
    expected = dims[0] * dims[1] * dims[2]
    if total != expected:
        raise InputFileError(p, f"binvox data covers {total} voxels but the header declares {dims} = {expected}")
    flat = np.repeat(pairs[0::2] != 0, pairs[1::2])
    # Stored order is x-major, then z, then y fastest: reshape to (x, z, y), swap to (x, y, z).
    occupancy = np.ascontiguousarray(flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1))
    if not occupancy.any():
        raise InputFileError(p, "voxel grid has no occupied voxels")
    return Shape(name=p.stem, kind="voxels", path=str(p), occupancy=occupancy,
                 voxel_to_world=binvox_voxel_to_world(dims, translate, scale))


def save_binvox(
    path: PathLike,
    occupancy: np.ndarray,
    translate: Sequence[float] = (-1.0, -1.0, -1.0),
    scale: float = 2.0,
) -> None:
    """Write a ``(D, H, W)`` bool grid (indexed ``[x, y, z]``) as ``.binvox``, atomically.

    The defaults place the grid in ``[-1, 1]^3``, the same frame :func:`~nrtool.io.load_shape`
    gives a 3-D array read from ``.npy``. :func:`load_binvox` reads the file back unchanged.
    """
    from trimesh.exchange.binvox import binvox_bytes
    from trimesh.voxel.runlength import dense_to_rle, split_long_rle_lengths

    from nrtool.artifacts.core import atomic_write_bytes

    occupancy = np.asarray(occupancy)
    if occupancy.ndim != 3 or occupancy.size == 0:
        raise ValueError(f"occupancy must be a non-empty 3-D array, got {occupancy.shape}")
    if len(translate) != 3 or not np.isfinite(scale) or scale <= 0:
        raise ValueError("translate must have 3 values and scale must be positive")
    # x-z-y order: x slowest, y fastest (the binvox convention).
    flat = np.ascontiguousarray(occupancy.astype(bool).transpose(0, 2, 1)).reshape(-1).astype(np.uint8)
    runs = dense_to_rle(flat, dtype=np.int64).reshape(-1, 2)
    values, lengths = split_long_rle_lengths(runs[:, 0], runs[:, 1], dtype=np.uint8)  # counts <= 255
    rle = np.stack([values, lengths], axis=1).astype(np.uint8).reshape(-1)
    atomic_write_bytes(path, binvox_bytes(rle, occupancy.shape, tuple(float(t) for t in translate), float(scale)))
