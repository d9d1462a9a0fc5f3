"""Read and write 3D shape files: meshes, point clouds and voxel grids.

Every reader returns a :class:`Shape` holding plain numpy arrays; every problem with a file
(missing, empty, corrupt, unsupported, non-finite coordinates, wrong array shape, no geometry)
raises :class:`~nrtool.errors.InputFileError`, whose message starts with the file's path.

Supported inputs (see :data:`SUPPORTED_EXTENSIONS`):

- meshes: ``.off .obj .ply .stl .glb`` (read with trimesh; scenes are flattened into one mesh)
- point clouds: ``.ply`` without faces, ``.xyz``/``.pts`` text, ``.npy``/``.npz`` holding ``(N, 3)``
- voxel grids: ``.binvox`` (own reader/writer, no dependency), ``.npy``/``.npz`` holding a 3-D
  bool (or 0/1 integer) array

:func:`discover_inputs` expands files, folders and list files into :class:`ShapeSource` items
carrying a unique name and, for ModelNet-style folders, a class label and split.

trimesh is imported inside the functions that need it: importing this module stays cheap, so the
CLI can import it at start-up without slowing ``nrtool --help``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

__all__ = [
    "MESH_EXTENSIONS",
    "POINT_CLOUD_EXTENSIONS",
    "ARRAY_EXTENSIONS",
    "VOXEL_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "LIST_EXTENSIONS",
    "SPLIT_NAMES",
    "Shape",
    "ShapeSource",
    "load_shape",
    "load_binvox",
    "binvox_voxel_to_world",
    "save_binvox",
    "save_points_ply",
    "save_mesh",
    "discover_inputs",
]

PathLike = str | os.PathLike[str]
ShapeKind = Literal["mesh", "points", "voxels"]

MESH_EXTENSIONS: tuple[str, ...] = (".off", ".obj", ".ply", ".stl", ".glb")
"""Mesh files read with trimesh (``.ply`` without faces is read as a point cloud)."""
POINT_CLOUD_EXTENSIONS: tuple[str, ...] = (".xyz", ".pts")
"""Text point clouds: ``x y z [extra columns]`` per line."""
ARRAY_EXTENSIONS: tuple[str, ...] = (".npy", ".npz")
"""numpy arrays: ``(N, 3)`` float is a point cloud, a 3-D bool / 0-1 array is a voxel grid."""
VOXEL_EXTENSIONS: tuple[str, ...] = (".binvox",)
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    MESH_EXTENSIONS + POINT_CLOUD_EXTENSIONS + ARRAY_EXTENSIONS + VOXEL_EXTENSIONS
)
"""Every extension :func:`load_shape` reads (lower case; matching ignores case)."""
LIST_EXTENSIONS: tuple[str, ...] = (".txt", ".lst")
"""Text files that :func:`discover_inputs` reads as lists of paths, one per line."""
SPLIT_NAMES: tuple[str, ...] = ("train", "test", "val")
"""Folder names recognised as dataset splits in ModelNet-style layouts."""

# Extensions save_mesh can write; .ply is written by our own writer, the rest by trimesh.
_MESH_WRITE_EXTENSIONS = (".ply", ".obj", ".off", ".stl")


# --------------------------------------------------------------------------------------------
# Shape
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Shape:
    """One loaded shape: a triangle mesh, a point cloud or a voxel grid.

    Attributes:
        name: file stem (callers make it unique among a data set, see :func:`discover_inputs`).
        kind: ``"mesh"``, ``"points"`` or ``"voxels"``.
        path: the source file.
        vertices: ``(V, 3)`` float64 mesh vertices, or the ``(N, 3)`` points of a point cloud.
        faces: ``(F, 3)`` int64 triangle indices into ``vertices`` (meshes only).
        occupancy: ``(D, H, W)`` bool voxel grid (voxels only).
        voxel_to_world: ``(4, 4)`` affine mapping the index coordinates ``(i, j, k)`` of a voxel
            *centre* to world coordinates (voxels only).
    """

    name: str
    kind: ShapeKind
    path: str
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    occupancy: np.ndarray | None = None
    voxel_to_world: np.ndarray | None = None

    @property
    def is_watertight(self) -> bool:
        """True for a mesh in which every edge is shared by exactly two faces.

        Orientation is not required here; see :attr:`is_winding_consistent`. Always False for
        point clouds, voxel grids and meshes without faces.
        """
        if self.kind != "mesh" or self.faces is None or len(self.faces) == 0:
            return False
        return _edges_all_shared_twice(self.faces)

    @property
    def is_winding_consistent(self) -> bool:
        """True for a watertight mesh whose faces are all oriented consistently.

        Consistent orientation means every directed edge occurs exactly once: the two faces
        sharing an edge traverse it in opposite directions.
        """
        if not self.is_watertight:
            return False
        assert self.faces is not None
        directed = _edge_keys(self.faces, undirected=False)
        return bool(np.unique(directed).size == directed.size)

    def points(self) -> np.ndarray:
        """The shape as an ``(N, 3)`` float64 point set.

        Point cloud: its points. Mesh: its vertices. Voxels: world coordinates of the centres of
        the occupied voxels (in ``(i, j, k)`` C order).
        """
        if self.kind in ("mesh", "points"):
            if self.vertices is None:
                return np.zeros((0, 3), dtype=np.float64)
            return np.asarray(self.vertices, dtype=np.float64)
        if self.occupancy is None:
            return np.zeros((0, 3), dtype=np.float64)
        affine = np.eye(4) if self.voxel_to_world is None else self.voxel_to_world
        index = np.argwhere(self.occupancy).astype(np.float64)
        return index @ affine[:3, :3].T + affine[:3, 3]

    def __repr__(self) -> str:  # the default repr would print whole arrays
        parts = [f"name={self.name!r}", f"kind={self.kind!r}", f"path={self.path!r}"]
        for field in ("vertices", "faces", "occupancy"):
            value = getattr(self, field)
            if value is not None:
                parts.append(f"{field}={tuple(value.shape)}")
        return f"Shape({', '.join(parts)})"


def _edge_keys(faces: np.ndarray, undirected: bool) -> np.ndarray:
    """Encode the ``3F`` edges of ``(F, 3)`` faces as int64 keys ``a * n + b`` (fast unique)."""
    faces = np.asarray(faces, dtype=np.int64)
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    if undirected:
        edges = np.sort(edges, axis=1)
    n = int(faces.max()) + 1 if faces.size else 1
    return edges[:, 0] * n + edges[:, 1]


def _edges_all_shared_twice(faces: np.ndarray) -> bool:
    _, counts = np.unique(_edge_keys(faces, undirected=True), return_counts=True)
    return bool(np.all(counts == 2))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_shape(path: PathLike) -> Shape:
    """Load a mesh, point cloud or voxel grid, choosing the reader by file extension.

    Returns a :class:`Shape` named after the file stem. Meshes get exact duplicate vertices
    merged (STL stores every triangle's corners separately; without merging no STL is
    watertight); scenes (``.glb``, multi-object ``.obj``) are flattened with their node
    transforms into one mesh.

    Raises:
        InputFileError: the file is missing, empty, corrupt, of an unsupported type, has
            non-finite coordinates, holds an array of the wrong shape, or holds no geometry.
    """
    p = Path(path)
    _check_readable_file(p)
    ext = p.suffix.lower()
    if ext in MESH_EXTENSIONS:
        return _load_mesh_file(p, ext)
    if ext in POINT_CLOUD_EXTENSIONS:
        return _load_text_points(p)
    if ext in ARRAY_EXTENSIONS:
        return _load_array_file(p, ext)
    if ext in VOXEL_EXTENSIONS:
        return load_binvox(p)
    raise InputFileError(p, _unsupported_extension_problem(ext))


def _unsupported_extension_problem(ext: str) -> str:
    shown = f"'{ext}'" if ext else "no extension"
    return f"unsupported file type ({shown}); supported: {' '.join(SUPPORTED_EXTENSIONS)}"


def _check_readable_file(p: Path) -> None:
    """Raise InputFileError unless ``p`` is an existing, non-empty regular file."""
    if not p.exists():
        raise InputFileError(p, "no such file")
    if p.is_dir():
        raise InputFileError(p, "is a directory, not a shape file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputFileError(p, f"cannot read ({exc.strerror or exc})") from exc
    if size == 0:
        raise InputFileError(p, "file is empty")


def _check_points(p: Path, points: np.ndarray, what: str) -> np.ndarray:
    """Validate an ``(N, 3)`` coordinate array; return it as float64."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputFileError(p, f"{what} must have shape (N, 3), got {tuple(points.shape)}")
    if len(points) == 0:
        raise InputFileError(p, f"{what}: empty (0 points)")
    points = points.astype(np.float64, copy=False)
    if not np.all(np.isfinite(points)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(points), axis=1)))
        raise InputFileError(p, f"{what}: {bad} of {len(points)} have NaN or infinite coordinates")
    return points


def _load_mesh_file(p: Path, ext: str) -> Shape:
    import trimesh

    try:
        scene = trimesh.load_scene(str(p), file_type=ext[1:], process=False)
    except Exception as exc:  # trimesh raises many exception types on corrupt input
        raise InputFileError(p, f"cannot read as {ext[1:].upper()}: {_describe(exc)}") from exc

    vertex_parts: list[np.ndarray] = []
    face_parts: list[np.ndarray] = []
    point_parts: list[np.ndarray] = []
    offset = 0
    try:
        # Sorted node names: the vertex order must not depend on dict/graph iteration order.
        for node in sorted(scene.graph.nodes_geometry):
            transform, geometry_name = scene.graph[node]
            geometry = scene.geometry[geometry_name]
            vertices = np.asarray(getattr(geometry, "vertices", np.zeros((0, 3))), np.float64)
            if vertices.size == 0:
                continue
            what = "point cloud" if isinstance(geometry, trimesh.PointCloud) else "mesh vertices"
            vertices = _check_points(p, vertices, what)  # before the transform spreads NaNs
            vertices = vertices @ transform[:3, :3].T + transform[:3, 3]
            faces = getattr(geometry, "faces", None)
            if isinstance(geometry, trimesh.Trimesh) and faces is not None and len(faces):
                faces = np.asarray(faces, dtype=np.int64)
                if faces.min() < 0 or faces.max() >= len(vertices):
                    raise InputFileError(p, "a face refers to a vertex that does not exist")
                if np.linalg.det(transform[:3, :3]) < 0:
                    faces = faces[:, ::-1]  # a mirroring node transform flips the winding
                vertex_parts.append(vertices)
                face_parts.append(faces + offset)
                offset += len(vertices)
            elif isinstance(geometry, trimesh.PointCloud):
                point_parts.append(vertices)
            # Other geometry (2-D/3-D paths) carries no surface or points; ignore it.
    except InputFileError:
        raise
    except Exception as exc:  # malformed scene graphs surface here, not in load_scene
        raise InputFileError(p, f"cannot read as {ext[1:].upper()}: {_describe(exc)}") from exc

    if face_parts:
        vertices = np.concatenate(vertex_parts)
        faces = np.concatenate(face_parts)
        vertices, faces = _merge_duplicate_vertices(vertices, faces)
        _check_surface_area(p, vertices, faces)
        return Shape(name=p.stem, kind="mesh", path=str(p), vertices=vertices, faces=faces)
    if point_parts:
        if ext != ".ply":
            raise InputFileError(
                p, "has vertices but no faces (point clouds are read from .ply .xyz .pts .npy .npz)"
            )
        points = np.concatenate(point_parts)
        return Shape(name=p.stem, kind="points", path=str(p), vertices=points)
    if ext == ".ply":
        raise InputFileError(p, "contains no geometry (empty point cloud, no faces)")
    raise InputFileError(p, "contains no geometry (mesh with no faces)")


def _check_surface_area(p: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Refuse a mesh whose triangles are all degenerate: it has no surface to sample or fit.

    Checked when reading, so the message names the file (surface sampling later on would only
    know it has arrays).
    """
    corners = vertices[faces]  # (F, 3, 3)
    doubled_area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    extent = float(np.max(np.ptp(vertices, axis=0)))
    # Relative to the mesh's size: float rounding leaves a tiny area on collinear triangles.
    if not np.any(doubled_area > 1e-12 * max(extent, 1e-300) ** 2):
        raise InputFileError(p, f"mesh has zero surface area (all {len(faces)} faces are degenerate)")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _merge_duplicate_vertices(
    vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices with bit-identical coordinates, keeping first-occurrence order.

    Args:
        vertices: ``(V, 3)`` float64.
        faces: ``(F, 3)`` int64 indices into ``vertices``.

    Returns:
        ``(V', 3)`` vertices and ``(F, 3)`` re-indexed faces, ``V' <= V``.

    Only exact duplicates merge: a tolerance could weld distinct nearby vertices of fine
    detail, and the duplicates we care about (STL, split OBJ seams) are exact copies.
    """
    # +0.0 turns -0.0 into 0.0; unique compares bytes-like rows, where they would differ.
    canonical = vertices + 0.0
    _, first, inverse = np.unique(canonical, axis=0, return_index=True, return_inverse=True)
    if len(first) == len(vertices):
        return vertices, faces
    inverse = inverse.reshape(-1)
    order = np.argsort(first)
    new_index = np.empty(len(first), dtype=np.int64)
    new_index[order] = np.arange(len(first))
    return vertices[first[order]], new_index[inverse][faces]


def _load_text_points(p: Path) -> Shape:
    """Read ``x y z [extra columns]`` lines (``#`` comments; an optional leading count line)."""
    try:
        with open(p, encoding="utf-8", errors="strict") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError as exc:
        raise InputFileError(p, "not a text point cloud (binary data)") from exc
    except OSError as exc:
        raise InputFileError(p, f"cannot read ({exc.strerror or exc})") from exc

    rows: list[tuple[float, float, float]] = []
    seen_data = False
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].replace(",", " ").split()
        if not text:
            continue
        # Some .pts writers put the number of points alone on the first line.
        if not seen_data and len(text) == 1 and text[0].isdigit():
            seen_data = True
            continue
        seen_data = True
        if len(text) < 3:
            raise InputFileError(p, f"line {number}: expected 'x y z', got {line.strip()!r}")
        try:
            rows.append((float(text[0]), float(text[1]), float(text[2])))
        except ValueError as exc:
            raise InputFileError(p, f"line {number}: not a number in {line.strip()!r}") from exc
    if not rows:
        raise InputFileError(p, "point cloud: empty (0 points)")
    points = _check_points(p, np.array(rows, dtype=np.float64), "point cloud")
    return Shape(name=p.stem, kind="points", path=str(p), vertices=points)


def _load_array_file(p: Path, ext: str) -> Shape:
    """Read ``.npy``/``.npz``; an ``(N, 3)`` array is a point cloud, a 3-D 0/1 array voxels."""
    voxel_to_world: np.ndarray | None = None
    try:
        if ext == ".npy":
            array = np.load(p, allow_pickle=False)  # never unpickle: files may be untrusted
        else:
            with np.load(p, allow_pickle=False) as archive:
                keys = list(archive.files)
                if "points" in keys:
                    array = archive["points"]
                elif "occupancy" in keys:
                    array = archive["occupancy"]
                    if "voxel_to_world" in keys:
                        voxel_to_world = np.asarray(archive["voxel_to_world"], np.float64)
                elif len(keys) == 1:
                    array = archive[keys[0]]
                elif not keys:
                    raise InputFileError(p, "archive holds no arrays")
                else:
                    raise InputFileError(
                        p, f"archive holds {keys}; expected key 'points', 'occupancy' or one array"
                    )
    except InputFileError:
        raise
    except Exception as exc:  # corrupt zip, truncated header, pickled objects, ...
        raise InputFileError(p, f"cannot read as {ext[1:].upper()}: {_describe(exc)}") from exc

    kind_char = array.dtype.kind
    if array.ndim == 2 and array.shape[1] == 3 and kind_char in "fiu":
        points = _check_points(p, array, "point cloud")
        return Shape(name=p.stem, kind="points", path=str(p), vertices=points)
    if array.ndim == 3:
        occupancy = _as_occupancy(p, array)
        if voxel_to_world is None:
            voxel_to_world = _unit_cube_affine(occupancy.shape)
        elif voxel_to_world.shape != (4, 4) or not np.all(np.isfinite(voxel_to_world)):
            raise InputFileError(p, "'voxel_to_world' must be a finite (4, 4) matrix")
        return Shape(
            name=p.stem,
            kind="voxels",
            path=str(p),
            occupancy=occupancy,
            voxel_to_world=voxel_to_world,
        )
    raise InputFileError(
        p,
        f"array of shape {tuple(array.shape)} and dtype {array.dtype} is neither an (N, 3) "
        "float point cloud nor a 3-D bool/0-1 voxel grid",
    )


def _as_occupancy(p: Path, array: np.ndarray) -> np.ndarray:
    """Validate a 3-D bool or 0/1 integer array and return it as ``(D, H, W)`` bool."""
    if array.dtype.kind == "b":
        occupancy = array.astype(bool, copy=False)
    elif array.dtype.kind in "iu" and np.all((array == 0) | (array == 1)):
        occupancy = array.astype(bool)
    else:
        raise InputFileError(
            p,
            f"3-D array of dtype {array.dtype} is not a voxel grid (need bool or 0/1 integers)",
        )
    if occupancy.size == 0:
        raise InputFileError(p, f"voxel grid of shape {tuple(occupancy.shape)} is empty")
    if not occupancy.any():
        raise InputFileError(p, "voxel grid has no occupied voxels")
    return occupancy


def _unit_cube_affine(dims: tuple[int, ...]) -> np.ndarray:
    """``(4, 4)`` affine placing a voxel grid centred in ``[-1, 1]^3``.

    Voxels are cubes of side ``2 / max(dims)``; for a cubic ``D^3`` grid the centre of voxel
    ``i`` lies at ``-1 + (i + 0.5) * 2 / D`` on every axis. A non-cubic grid keeps its aspect
    ratio (its longest axis spans ``[-1, 1]``) rather than being stretched into the cube.
    """
    size = 2.0 / max(dims)
    affine = np.eye(4)
    affine[:3, :3] *= size
    affine[:3, 3] = (0.5 - np.asarray(dims, dtype=np.float64) / 2.0) * size
    return affine


# --------------------------------------------------------------------------------------------
# binvox
# --------------------------------------------------------------------------------------------


def binvox_voxel_to_world(
    dims: Sequence[int], translate: Sequence[float], scale: float
) -> np.ndarray:
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

    The format: ASCII header lines ``#binvox 1``, ``dim D H W``, ``translate tx ty tz``,
    ``scale s``, ``data``, then run-length ``(value, count)`` byte pairs over the voxels in
    x-z-y order (y varies fastest, then z, then x).

    Returns:
        A ``kind="voxels"`` Shape with ``(D, H, W)`` bool ``occupancy`` indexed ``[x, y, z]`` and
        ``voxel_to_world`` from :func:`binvox_voxel_to_world`.
    """
    p = Path(path)
    _check_readable_file(p)
    raw = p.read_bytes()
    if not raw.startswith(b"#binvox"):
        raise InputFileError(p, "not a binvox file (missing '#binvox' header)")

    dims: tuple[int, int, int] | None = None
    translate = (0.0, 0.0, 0.0)
    scale = 1.0
    position = raw.index(b"\n") + 1 if b"\n" in raw else len(raw)
    while True:
        end = raw.find(b"\n", position)
        if end < 0:
            raise InputFileError(p, "binvox header ends before 'data'")
        line = raw[position:end].decode("ascii", errors="replace").strip()
        position = end + 1
        words = line.split()
        try:
            if not words:
                continue
            if words[0] == "data":
                break
            if words[0] == "dim":
                dims = (int(words[1]), int(words[2]), int(words[3]))
            elif words[0] == "translate":
                translate = (float(words[1]), float(words[2]), float(words[3]))
            elif words[0] == "scale":
                scale = float(words[1])
            else:
                raise InputFileError(p, f"unexpected binvox header line {line!r}")
        except (IndexError, ValueError) as exc:
            raise InputFileError(p, f"malformed binvox header line {line!r}") from exc
    if dims is None:
        raise InputFileError(p, "binvox header has no 'dim' line")
    if min(dims) <= 0:
        raise InputFileError(p, f"binvox dimensions must be positive, got {dims}")
    if not (np.all(np.isfinite(translate)) and np.isfinite(scale) and scale > 0):
        raise InputFileError(p, "binvox translate/scale must be finite with scale > 0")

    pairs = np.frombuffer(raw, dtype=np.uint8, offset=position)
    if pairs.size % 2:
        raise InputFileError(p, "binvox run-length data is truncated (odd byte count)")
    pairs = pairs.reshape(-1, 2)
    total = int(pairs[:, 1].sum(dtype=np.int64))
    expected = dims[0] * dims[1] * dims[2]
    if total != expected:
        raise InputFileError(
            p, f"binvox data covers {total} voxels but the header declares {dims} = {expected}"
        )
    flat = np.repeat(pairs[:, 0] != 0, pairs[:, 1])
    # Stored order is x-major, then z, then y fastest: reshape to (x, z, y), swap to (x, y, z).
    occupancy = flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)
    occupancy = np.ascontiguousarray(occupancy)
    if not occupancy.any():
        raise InputFileError(p, "voxel grid has no occupied voxels")
    return Shape(
        name=p.stem,
        kind="voxels",
        path=str(p),
        occupancy=occupancy,
        voxel_to_world=binvox_voxel_to_world(dims, translate, scale),
    )


def save_binvox(
    path: PathLike,
    occupancy: np.ndarray,
    translate: Sequence[float] = (-1.0, -1.0, -1.0),
    scale: float = 2.0,
) -> None:
    """Write a ``(D, H, W)`` bool grid (indexed ``[x, y, z]``) as ``.binvox``, atomically.

    The defaults place the grid in ``[-1, 1]^3``, the same frame :func:`load_shape` gives a
    3-D array read from ``.npy``. :func:`load_binvox` reads the file back unchanged.
    """
    occupancy = np.asarray(occupancy)
    if occupancy.ndim != 3 or occupancy.size == 0:
        raise ValueError(f"occupancy must be a non-empty 3-D array, got {occupancy.shape}")
    if len(translate) != 3 or not np.isfinite(scale) or scale <= 0:
        raise ValueError("translate must have 3 values and scale must be positive")
    # x-z-y order: x slowest, y fastest (the binvox convention).
    flat = np.ascontiguousarray(occupancy.astype(bool).transpose(0, 2, 1)).reshape(-1)
    values, counts = _run_lengths(flat.view(np.uint8), max_run=255)
    body = np.stack([values, counts], axis=1).astype(np.uint8).tobytes()
    tx, ty, tz = (float(t) for t in translate)
    header = (
        "#binvox 1\n"
        f"dim {occupancy.shape[0]} {occupancy.shape[1]} {occupancy.shape[2]}\n"
        f"translate {tx!r} {ty!r} {tz!r}\n"
        f"scale {float(scale)!r}\n"
        "data\n"
    ).encode("ascii")
    from nrtool.artifacts.core import atomic_write_bytes

    atomic_write_bytes(path, header + body)


def _run_lengths(flat: np.ndarray, max_run: int) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encode a 1-D array into ``(values, counts)`` with every count <= max_run."""
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    values = flat[starts]
    # Runs longer than max_run become several pairs: full ones, then the remainder.
    pieces = (lengths + max_run - 1) // max_run
    out_values = np.repeat(values, pieces)
    out_counts = np.full(int(pieces.sum()), max_run, dtype=np.int64)
    last = np.cumsum(pieces) - 1
    out_counts[last] = lengths - max_run * (pieces - 1)
    return out_values, out_counts


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
# Every writer renames a complete temporary file into place (artifacts.core.atomic_write_bytes),
# imported inside the writers so that importing this module does not import h5py.


def _ply_bytes(vertices: np.ndarray, faces: np.ndarray | None) -> bytes:
    """Binary little-endian PLY with float32 ``x y z`` and, if given, uchar/int32 face lists."""
    vertices = np.ascontiguousarray(vertices, dtype="<f4")
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by nrtool",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
    ]
    body = [vertices.tobytes()]
    if faces is not None:
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
        records = np.empty(len(faces), dtype=[("n", "u1"), ("index", "<i4", (3,))])
        records["n"] = 3
        records["index"] = faces
        body.append(records.tobytes())
    header.append("end_header")
    return ("\n".join(header) + "\n").encode("ascii") + b"".join(body)


def _check_write_vertices(points: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{what} must have shape (N, 3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{what} contain NaN or infinite values")
    return points


def save_points_ply(path: PathLike, points: np.ndarray) -> None:
    """Write an ``(N, 3)`` point cloud as binary PLY (float32 coordinates), atomically."""
    from nrtool.artifacts.core import atomic_write_bytes

    points = _check_write_vertices(points, "points")
    atomic_write_bytes(path, _ply_bytes(points, None))


def save_mesh(path: PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh, atomically; the format follows the extension.

    Args:
        path: ``.ply`` (binary, float32), ``.obj``, ``.off`` or ``.stl`` (binary).
        vertices: ``(V, 3)`` float.
        faces: ``(F, 3)`` int indices into ``vertices``.

    Raises:
        NrtoolError: the extension is not a writable mesh format.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in _MESH_WRITE_EXTENSIONS:
        raise NrtoolError(
            f"{p}: cannot write a mesh as '{ext}' (use {', '.join(_MESH_WRITE_EXTENSIONS)})"
        )
    vertices = _check_write_vertices(vertices, "vertices")
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
        raise ValueError(f"faces must be an (F, 3) integer array, got {faces.shape} {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("faces refer to vertices that do not exist")
    if ext == ".ply":
        data = _ply_bytes(vertices, faces)
    else:
        import trimesh

        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
        exported = mesh.export(file_type=ext[1:])
        data = exported.encode("utf-8") if isinstance(exported, str) else bytes(exported)
    from nrtool.artifacts.core import atomic_write_bytes

    atomic_write_bytes(p, data)


# --------------------------------------------------------------------------------------------
# Discovering inputs
# --------------------------------------------------------------------------------------------


@dataclass
class ShapeSource:
    """One shape file to process, as found by :func:`discover_inputs`.

    Attributes:
        path: the file (as given or joined to its folder/list file; not resolved).
        name: unique among the sources of one :func:`discover_inputs` call.
        class_name: the class folder of a ModelNet-style layout, else None.
        split: ``"train"``, ``"test"`` or ``"val"`` where the layout says so, else None.
    """

    path: str
    name: str
    class_name: str | None
    split: str | None


@dataclass
class _Found:
    path: Path
    rel_parts: tuple[str, ...]  # path relative to the folder it was found in (naming fallback)
    class_name: str | None
    split: str | None


def _layout_labels(rel_dirs: Sequence[str]) -> tuple[str | None, str | None]:
    """Class and split from the folders between an input folder and a file.

    ``CLASS/SPLIT/file`` and ``SPLIT/CLASS/file`` give both, ``CLASS/file`` the class only,
    ``SPLIT/file`` the split only. In deeper trees the split folder is looked for at any depth
    and the class is the folder next to it, so the parent of several ModelNet-style roots
    (``ROOT/DATASET/CLASS/SPLIT/file``) is labelled by class and split, not by dataset name;
    without a split folder the first folder is the class.
    """
    if not rel_dirs:
        return None, None
    lowered = [d.lower() for d in rel_dirs]
    at = next((i for i, d in enumerate(lowered) if d in SPLIT_NAMES), None)
    if at is None:
        return rel_dirs[0], None
    if at == 0:
        return (rel_dirs[1] if len(rel_dirs) > 1 else None), lowered[0]
    return rel_dirs[at - 1], lowered[at]


def _tail_labels(path: Path) -> tuple[str | None, str | None]:
    """Class and split from the last folders of a path, only for ``.../CLASS/SPLIT/file``."""
    parent = path.parent
    if parent.name.lower() in SPLIT_NAMES and parent.parent.name not in ("", ".", ".."):
        return parent.parent.name, parent.name.lower()
    return None, None


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_EXTENSIONS


def _scan_directory(root: Path, prefix: tuple[str, ...] = ()) -> list[_Found]:
    """Supported files under ``root``, recursively, hidden files and folders skipped.

    ``prefix`` holds folders between a list file and ``root``, so a folder listed in a list file
    gets its labels from the layout seen from the list file's folder.
    """
    found: list[tuple[tuple[str, ...], Path]] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_folder = Path(folder).relative_to(root).parts
        for filename in filenames:
            if filename.startswith(".") or not _is_supported(Path(filename)):
                continue
            found.append((rel_folder + (filename,), Path(folder) / filename))
    found.sort(key=lambda item: item[0])  # compare path components, not joined strings
    out = []
    for rel_parts, path in found:
        class_name, split = _layout_labels(prefix + rel_parts[:-1])
        out.append(_Found(path, prefix + rel_parts, class_name, split))
    return out


def _read_list_file(list_path: Path) -> list[_Found]:
    """Files named in a list file, one path per line, relative to the list file's folder."""
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(list_path, f"cannot read list file ({_describe(exc)})") from exc
    out: list[_Found] = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry_path = Path(entry).expanduser()
        path = entry_path if entry_path.is_absolute() else list_path.parent / entry_path
        if not path.exists():
            raise InputFileError(
                path, f"no such file or directory (listed in {list_path}:{number})"
            )
        # A relative entry inside the list's folder is laid out like a folder input would be;
        # anything else only trusts the unambiguous .../CLASS/SPLIT/file tail.
        inside = not entry_path.is_absolute() and ".." not in entry_path.parts
        rel = tuple(part for part in entry_path.parts if part != ".") if inside else ()
        if path.is_dir():
            found = _scan_directory(path, prefix=rel)
            if not found:
                raise InputFileError(
                    path, f"contains no supported shape files (listed in {list_path}:{number})"
                )
            out.extend(found)
            continue
        if not _is_supported(path):
            raise InputFileError(
                path,
                f"{_unsupported_extension_problem(path.suffix.lower())} "
                f"(listed in {list_path}:{number})",
            )
        class_name, split = _layout_labels(rel[:-1]) if inside else _tail_labels(path)
        out.append(_Found(path, rel or (path.name,), class_name, split))
    if not out:
        raise InputFileError(list_path, "list file names no shape files")
    return out


def _unique_names(found: Sequence[_Found]) -> list[str]:
    """File stems, disambiguated deterministically where two sources would share one.

    Colliding stems are first prefixed with class and split (``chair_train_model``); names
    still colliding are built from the whole relative path; any remaining ties get ``_2``,
    ``_3``, ... in source order.
    """
    names = [f.path.stem for f in found]
    counts = Counter(names)
    names = [
        "_".join(x for x in (f.class_name, f.split, n) if x) if counts[n] > 1 else n
        for f, n in zip(found, names)
    ]
    counts = Counter(names)
    names = [
        "_".join((*f.rel_parts[:-1], Path(f.rel_parts[-1]).stem)) if counts[n] > 1 else n
        for f, n in zip(found, names)
    ]
    taken = set(names)
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, k = name, 1
        # Skip suffixed names that another source already carries as its own name.
        while candidate in used or (candidate != name and candidate in taken):
            k += 1
            candidate = f"{name}_{k}"
        used.add(candidate)
        unique.append(candidate)
    return unique


def discover_inputs(inputs: Sequence[PathLike]) -> list[ShapeSource]:
    """Expand files, folders and list files into shape sources with unique names.

    Each input is one of:

    - a file with a supported extension (no class or split);
    - a folder, searched recursively in sorted order for supported files (hidden files and
      folders skipped); ModelNet-style ``ROOT/CLASS/{train,test,val}/FILE`` gives class and
      split, ``ROOT/CLASS/FILE`` the class only, always relative to the folder given;
    - a ``.txt``/``.lst`` file listing paths (files or folders) one per line, relative to the
      list file's folder; ``#`` comments and blank lines are ignored.

    Sources keep input order (folders sorted, lists in listed order); a file reached twice is
    kept once, at its first position.

    Raises:
        InputFileError: an input or listed path is missing, a folder holds no supported file,
            a file given or listed explicitly has an unsupported extension.
        NrtoolError: ``inputs`` is empty.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # a lone path is an easy mistake; a str is a Sequence of chars
    if not inputs:
        raise NrtoolError("no input files given")
    found: list[_Found] = []
    for item in inputs:
        p = Path(item).expanduser()
        if not p.exists():
            raise InputFileError(p, "no such file or directory")
        if p.is_dir():
            items = _scan_directory(p)
            if not items:
                raise InputFileError(
                    p, f"contains no supported shape files ({' '.join(SUPPORTED_EXTENSIONS)})"
                )
            found.extend(items)
        elif p.suffix.lower() in LIST_EXTENSIONS:
            found.extend(_read_list_file(p))
        elif _is_supported(p):
            found.append(_Found(p, (p.name,), None, None))
        else:
            raise InputFileError(
                p, _unsupported_extension_problem(p.suffix.lower()) + " (or a .txt/.lst list)"
            )

    seen: set[str] = set()
    deduplicated = []
    for f in found:
        key = os.path.realpath(f.path)
        if key not in seen:
            seen.add(key)
            deduplicated.append(f)
    names = _unique_names(deduplicated)
    return [
        ShapeSource(path=str(f.path), name=name, class_name=f.class_name, split=f.split)
        for f, name in zip(deduplicated, names)
    ]
