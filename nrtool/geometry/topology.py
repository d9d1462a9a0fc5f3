"""Mesh topology: which edges bound an open mesh, and which vertices are one point."""

from __future__ import annotations

import numpy as np


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """``(E, 2)`` sorted vertex pairs of the edges used by exactly one face (the boundary of an
    open mesh; empty for a closed one)."""
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return unique[counts == 1]


def boundary_edge_count(faces: np.ndarray) -> int:
    """Edges used by exactly one face (0 for a closed mesh)."""
    return len(boundary_edges(faces))


def collapse_short_edges(vertices: np.ndarray, faces: np.ndarray,
                         min_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge the ends of every edge shorter than ``min_length`` (transitively).

    Returns ``(V,)`` the merged vertex each vertex belongs to (``0..V'-1``, in first-occurrence
    order) and the ``(F', 3)`` faces re-indexed onto the merged vertices, without the faces that
    collapsed to a line or a point. Marching-cubes meshes (MeshUDF) hold near-duplicate vertices
    where the surface passes close to a grid corner; the needles between them have no usable
    rest shape. Only mesh edges merge, so two sheets that touch without sharing an edge stay apart.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    short = edges[np.linalg.norm(vertices[edges[:, 1]] - vertices[edges[:, 0]], axis=1) < min_length]
    graph = coo_matrix((np.ones(len(short)), (short[:, 0], short[:, 1])), shape=(len(vertices),) * 2)
    _, labels = connected_components(graph, directed=False)
    # Renumber in first-occurrence order so that an untouched mesh keeps its numbering.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    groups = order[inverse.reshape(-1)]
    merged = groups[faces]
    keep = (merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2])
    return groups, merged[keep]
