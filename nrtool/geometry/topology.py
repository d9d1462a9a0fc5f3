"""Mesh topology: which edges bound an open mesh."""

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
