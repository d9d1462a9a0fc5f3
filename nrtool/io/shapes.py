"""Read 3D shape files: meshes, point clouds and voxel grids (writers: :mod:`nrtool.io.writers`,
binvox: :mod:`nrtool.io.binvox`, finding inputs: :mod:`nrtool.io.discovery`).

Every reader returns a :class:`Shape` holding plain numpy arrays; every problem with a file
(missing, empty, corrupt, unsupported, non-finite coordinates, wrong array shape, no geometry)
raises :class:`~nrtool.errors.InputFileError`, whose message starts with the file's path.

Supported inputs (see :data:`SUPPORTED_EXTENSIONS`):

- meshes: ``.off .obj .ply .stl .glb`` (read with trimesh; scenes are flattened into one mesh)
- point clouds: ``.ply`` without faces, ``.xyz``/``.pts`` text, ``.npy``/``.npz`` holding ``(N, 3)``
- voxel grids: ``.binvox``, ``.npy``/``.npz`` holding a 3-D bool (or 0/1 integer) array

trimesh is imported inside the functions that need it: importing this module stays cheap, so the
CLI can import it at start-up without slowing ``nrtool --help``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from nrtool.errors import InputFileError

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
    check_readable_file(p)
    ext = p.suffix.lower()
    if ext in MESH_EXTENSIONS:
        return _load_mesh_file(p, ext)
    if ext in POINT_CLOUD_EXTENSIONS:
        return _load_text_points(p)
    if ext in ARRAY_EXTENSIONS:
        return _load_array_file(p, ext)
    if ext in VOXEL_EXTENSIONS:
        from nrtool.io.binvox import load_binvox

        return load_binvox(p)
    raise InputFileError(p, unsupported_extension_problem(ext))


def unsupported_extension_problem(ext: str) -> str:
    shown = f"'{ext}'" if ext else "no extension"
    return f"unsupported file type ({shown}); supported: {' '.join(SUPPORTED_EXTENSIONS)}"


def check_readable_file(p: Path) -> None:
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
        raise InputFileError(p, f"cannot read as {ext[1:].upper()}: {describe_error(exc)}") from exc

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
        raise InputFileError(p, f"cannot read as {ext[1:].upper()}: {describe_error(exc)}") from exc

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


def describe_error(exc: BaseException) -> str:
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
        raise InputFileError(p, f"cannot read as {ext[1:].upper()}: {describe_error(exc)}") from exc

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




