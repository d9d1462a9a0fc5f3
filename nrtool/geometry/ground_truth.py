"""Ground truth for INR fitting: normalisation, query sampling and field values (App. C.1/C.5).

Shapes are moved into a normalised frame (centred on their bounding box, longest half-extent
scaled to ``1 - margin``) so that every INR of a dataset sees the same domain, [-1,1]^3. The
transform is returned so reconstructions can go back to source units.

* point clouds -> unsigned distance to the nearest point (KD-tree, exact);
* meshes -> exact (signed, for watertight ones) distance to the triangles (Open3D ray casting;
  the sign comes from counting ray intersections, so it needs a closed surface);
* voxel grids -> occupancy at every voxel centre; the grid's own cube is the normalised cube.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nrtool.config import Config
from nrtool.errors import InputFileError
from nrtool.io import Shape

#: The three fields an INR can represent (see :mod:`nrtool.inr.fields` for labels and losses).
FieldName = Literal["udf", "sdf", "occ"]
FIELDS: tuple[FieldName, ...] = ("udf", "sdf", "occ")


@dataclass(frozen=True)
class QuerySpec(Config):
    """How many ground-truth queries to precompute per shape (App. C.1).

    Near-surface queries are surface samples plus Gaussian noise of the given std; the rest are
    uniform in [-1,1]^3. Voxel grids ignore this and use every voxel centre.
    """

    near: tuple[tuple[float, int], ...] = ((0.003, 250_000), (0.01, 200_000), (0.1, 25_000))
    uniform: int = 25_000

    @property
    def total(self) -> int:
        return sum(n for _, n in self.near) + self.uniform

    def scaled(self, factor: float) -> "QuerySpec":
        return QuerySpec(
            near=tuple((std, max(1, round(n * factor))) for std, n in self.near),
            uniform=max(1, round(self.uniform * factor)),
        )

#: Fraction of the cube left free around a shape, so marching cubes can close surfaces.
MARGIN = 0.05


@dataclass(frozen=True)
class Normalisation:
    """``x_normalised = (x_source - center) / scale``."""

    center: np.ndarray  # (3,)
    scale: float

    def to_normalised(self, points: np.ndarray) -> np.ndarray:
        return (points - self.center) / self.scale

    def to_source(self, points: np.ndarray) -> np.ndarray:
        return points * self.scale + self.center


@dataclass(frozen=True)
class GroundTruth:
    """Queries and their field values in the normalised frame: (Q,3) and (Q,) float32."""

    field: FieldName
    queries: np.ndarray
    values: np.ndarray
    normalisation: Normalisation


def item_seed(seed: int, name: str) -> int:
    """A per-item seed from the run seed and the item's name.

    Seeding by name (not position) makes an item's INR independent of batch composition,
    sharding and resumption.
    """
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def auto_field(shape: Shape) -> FieldName:
    """sdf for watertight meshes, udf for point clouds and open meshes, occ for voxel grids."""
    if shape.kind == "voxels":
        return "occ"
    if shape.kind == "mesh" and shape.is_watertight:
        return "sdf"
    return "udf"


def check_field(shape: Shape, field: FieldName) -> None:
    """Refuse a field the shape cannot provide, with a one-line reason naming the file."""
    if field == "occ" and shape.kind != "voxels":
        raise InputFileError(shape.path, f"field 'occ' needs a voxel grid, this is a {shape.kind}")
    if field in ("udf", "sdf") and shape.kind == "voxels":
        raise InputFileError(shape.path, f"field {field!r} needs a mesh or point cloud, this is a voxel grid")
    if field == "sdf" and shape.kind == "points":
        raise InputFileError(shape.path, "field 'sdf' needs a watertight mesh, this is a point cloud (use --field udf)")
    if field == "sdf" and not shape.is_watertight:
        raise InputFileError(shape.path, "field 'sdf' needs a watertight mesh, this mesh is open (use --field udf)")


def normalisation_for(shape: Shape, margin: float = MARGIN) -> Normalisation:
    """Bounding-box centre and scale that put the shape inside [-(1-margin), 1-margin]^3.

    Voxel grids map their whole cube (not just the occupied part) onto [-1,1]^3 so that voxel
    centres keep a regular spacing of 2/D.
    """
    if shape.kind == "voxels":
        assert shape.occupancy is not None and shape.voxel_to_world is not None
        dims = np.array(shape.occupancy.shape, dtype=np.float64)
        corners = np.array([[-0.5, -0.5, -0.5, 1.0], [*(dims - 0.5), 1.0]])
        lo, hi = (shape.voxel_to_world @ corners.T).T[:, :3]
        center = (lo + hi) / 2
        scale = float(np.max(np.abs(hi - lo)) / 2)
    else:
        points = shape.points()
        lo, hi = points.min(axis=0), points.max(axis=0)
        center = (lo + hi) / 2
        scale = float(np.max(hi - lo) / 2 / (1 - margin))
    if not np.isfinite(scale) or scale <= 0:
        raise InputFileError(shape.path, "degenerate shape (zero extent)")
    return Normalisation(center=center, scale=scale)


def sample_queries(shape: Shape, norm: Normalisation, spec: QuerySpec, seed: int) -> np.ndarray:
    """Near-surface queries (surface samples + Gaussian noise per std) and uniform ones: (Q,3)."""
    from nrtool.geometry.metrics import sample_surface

    rng = np.random.default_rng(seed)
    n_near = sum(n for _, n in spec.near)
    if shape.kind == "mesh":
        assert shape.vertices is not None and shape.faces is not None
        surface = sample_surface(norm.to_normalised(shape.vertices), shape.faces, n_near, seed)
    else:
        points = norm.to_normalised(shape.points())
        surface = points[rng.integers(0, len(points), size=n_near)]
    chunks = []
    offset = 0
    for std, count in spec.near:
        chunks.append(surface[offset : offset + count] + rng.normal(0.0, std, size=(count, 3)))
        offset += count
    chunks.append(rng.uniform(-1.0, 1.0, size=(spec.uniform, 3)))
    return np.concatenate(chunks).astype(np.float32)


def mesh_distances(vertices: np.ndarray, faces: np.ndarray, queries: np.ndarray, signed: bool) -> np.ndarray:
    """Exact distance from queries (Q,3) to a triangle mesh; negative inside when ``signed``."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    tensor = o3d.core.Tensor(np.ascontiguousarray(queries, dtype=np.float32))
    result = scene.compute_signed_distance(tensor) if signed else scene.compute_distance(tensor)
    return result.numpy().astype(np.float32)


def point_distances(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Distance from queries (Q,3) to their nearest point of a cloud (N,3)."""
    from nrtool.geometry.metrics import nearest_distances

    return nearest_distances(queries, points).astype(np.float32)


def compute_ground_truth(shape: Shape, field: FieldName, spec: QuerySpec, seed: int) -> GroundTruth:
    """Normalise a shape and compute its field at precomputed queries."""
    check_field(shape, field)
    norm = normalisation_for(shape)
    if field == "occ":
        assert shape.occupancy is not None
        dims = shape.occupancy.shape
        axes = [(np.arange(d) + 0.5) * 2.0 / d - 1.0 for d in dims]
        # Non-cubic grids keep their aspect ratio: the longest axis spans [-1, 1].
        longest = max(dims)
        axes = [a * d / longest for a, d in zip(axes, dims)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        values = shape.occupancy.reshape(-1).astype(np.float32)
        return GroundTruth(field, grid.astype(np.float32), values, norm)
    queries = sample_queries(shape, norm, spec, seed)
    if shape.kind == "mesh":
        assert shape.vertices is not None and shape.faces is not None
        values = mesh_distances(norm.to_normalised(shape.vertices), shape.faces, queries, signed=field == "sdf")
    else:
        values = point_distances(norm.to_normalised(shape.points()), queries)
    if not np.all(np.isfinite(values)):
        raise InputFileError(shape.path, "ground truth has non-finite distances (degenerate geometry)")
    return GroundTruth(field, queries, values, norm)
