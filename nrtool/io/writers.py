"""Writing shapes: meshes and point clouds, atomically, in the format the extension names.

Encoding is trimesh's (binary PLY with float32 coordinates, OBJ, OFF, binary STL); every file
is renamed into place complete (:func:`nrtool.artifacts.core.atomic_write_bytes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nrtool.errors import NrtoolError
from nrtool.io.shapes import PathLike

#: Extensions :func:`save_mesh` can write.
MESH_WRITE_EXTENSIONS = (".ply", ".obj", ".off", ".stl")


def _check_write_vertices(points: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{what} must have shape (N, 3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{what} contain NaN or infinite values")
    return points


def _encoded(geometry: object, file_type: str) -> bytes:
    exported = geometry.export(file_type=file_type)  # type: ignore[attr-defined]
    return exported.encode("utf-8") if isinstance(exported, str) else bytes(exported)


def save_points_ply(path: PathLike, points: np.ndarray) -> None:
    """Write an ``(N, 3)`` point cloud as binary PLY (float32 coordinates), atomically."""
    import trimesh

    from nrtool.artifacts.core import atomic_write_bytes

    points = _check_write_vertices(points, "points")
    atomic_write_bytes(path, _encoded(trimesh.PointCloud(points), "ply"))


def save_mesh(path: PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh, atomically; the format follows the extension.

    Args:
        path: ``.ply`` (binary, float32), ``.obj``, ``.off`` or ``.stl`` (binary).
        vertices: ``(V, 3)`` float.
        faces: ``(F, 3)`` int indices into ``vertices``.

    Raises:
        NrtoolError: the extension is not a writable mesh format.
    """
    import trimesh

    from nrtool.artifacts.core import atomic_write_bytes

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in MESH_WRITE_EXTENSIONS:
        raise NrtoolError(f"{p}: cannot write a mesh as '{ext}' (use {', '.join(MESH_WRITE_EXTENSIONS)})")
    vertices = _check_write_vertices(vertices, "vertices")
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
        raise ValueError(f"faces must be an (F, 3) integer array, got {faces.shape} {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("faces refer to vertices that do not exist")
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    atomic_write_bytes(p, _encoded(mesh, ext[1:]))


def save_obj_parts(path: PathLike, parts: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """Write several meshes into one Wavefront OBJ, one named object (``o NAME``) each, atomically.

    ``parts``: ``(name, vertices (V, 3), faces (F, 3))``. Viewers (Blender, MeshLab) list the
    objects separately, so a draped frame keeps its body and garments apart. Written directly
    (6 decimals: micrometres) rather than through trimesh, which exports one mesh per file.
    """
    import io

    from nrtool.artifacts.core import atomic_write_bytes

    buffer = io.StringIO()
    buffer.write("# written by nrtool\n")
    offset = 1  # OBJ indices are 1-based and global over the file
    for name, vertices, faces in parts:
        vertices = _check_write_vertices(vertices, f"{name} vertices")
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and (faces.min() < 0 or faces.max() >= len(vertices))):
            raise ValueError(f"{name}: faces must be (F, 3) indices into its vertices")
        buffer.write(f"o {name}\n")
        np.savetxt(buffer, vertices, fmt="v %.6f %.6f %.6f")
        np.savetxt(buffer, faces + offset, fmt="f %d %d %d")
        offset += len(vertices)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
