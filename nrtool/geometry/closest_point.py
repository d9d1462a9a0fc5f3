"""Exact closest points on a triangle mesh, in PyTorch (any device).

Used for unsigned-distance supervision on a GPU, where the training loop would otherwise wait on
CPU ray casting (Open3D) for every batch, and on machines without Open3D. Brute force over all
faces, chunked over queries: the (queries x faces) work is three matrix products plus
element-wise region tests, which suits an accelerator; on a CPU Open3D's BVH is the faster
choice for large meshes.

The region tests follow the standard Voronoi-region classification of a point against a
triangle (vertex, edge or face region), expressed with barycentric weights so that every
(query, face) pair is handled by the same tensor expressions.
"""

from __future__ import annotations

import numpy as np
import torch

#: Upper bound on query x face pairs held at once (each pair costs ~15 float32 temporaries).
DEFAULT_PAIRS_PER_CHUNK = 1 << 24


def _barycentric_weights(d1: torch.Tensor, d2: torch.Tensor, ab_ab: torch.Tensor, ac_ac: torch.Tensor,
                         ab_ac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (v, w) of the closest point a + v*ab + w*ac, from d1 = ab.ap and d2 = ac.ap.

    The dot products against bp and cp follow from d1 and d2 (bp = ap - ab, cp = ap - ac), and
    every denominator is a squared edge length or the squared double area, so degenerate faces
    only need a floor, not a special case.
    """
    tiny = torch.finfo(d1.dtype).tiny
    d3, d4 = d1 - ab_ab, d2 - ab_ac  # ab.bp, ac.bp
    d5, d6 = d1 - ab_ac, d2 - ac_ac  # ab.cp, ac.cp
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    area2 = (va + vb + vc).clamp_min(tiny)
    v, w = vb / area2, vc / area2  # inside the face
    # Regions in reverse order of precedence: a later assignment wins where regions touch.
    bc = (d4 - d3) + (d5 - d6)  # |bc|^2
    t = (d4 - d3) / bc.clamp_min(tiny)
    on_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    v, w = torch.where(on_bc, 1 - t, v), torch.where(on_bc, t, w)
    on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    v, w = torch.where(on_ac, 0.0, v), torch.where(on_ac, d2 / ac_ac.clamp_min(tiny), w)
    at_c = (d6 >= 0) & (d5 <= d6)
    v, w = torch.where(at_c, 0.0, v), torch.where(at_c, 1.0, w)
    on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    v, w = torch.where(on_ab, d1 / ab_ab.clamp_min(tiny), v), torch.where(on_ab, 0.0, w)
    at_b = (d3 >= 0) & (d4 <= d3)
    v, w = torch.where(at_b, 1.0, v), torch.where(at_b, 0.0, w)
    at_a = (d1 <= 0) & (d2 <= 0)
    v, w = torch.where(at_a, 0.0, v), torch.where(at_a, 0.0, w)
    return v, w


class TriangleMesh:
    """A triangle mesh prepared for closest-point queries on one device.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices (at least one face).
        device: where the queries run (default: the vertices' device).
    """

    def __init__(self, vertices: torch.Tensor | np.ndarray, faces: torch.Tensor | np.ndarray, device: torch.device | str | None = None) -> None:
        if device is None:
            device = vertices.device if isinstance(vertices, torch.Tensor) else "cpu"
        device = torch.device(device)
        v = torch.as_tensor(vertices, dtype=torch.float32).to(device)
        f = torch.as_tensor(faces, dtype=torch.long).to(device)
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise ValueError(f"faces must be a non-empty (F, 3) array, got {tuple(f.shape)}")
        self.device = device
        self.a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        self.ab, self.ac = b - self.a, c - self.a
        self.ab_ab = (self.ab * self.ab).sum(-1)
        self.ac_ac = (self.ac * self.ac).sum(-1)
        self.ab_ac = (self.ab * self.ac).sum(-1)
        self.a_ab = (self.a * self.ab).sum(-1)
        self.a_ac = (self.a * self.ac).sum(-1)
        self.a_a = (self.a * self.a).sum(-1)

    def _nearest_faces(self, p: torch.Tensor) -> torch.Tensor:
        """Index of the closest face for each query of one chunk (squared distances by expansion)."""
        d1 = p @ self.ab.T - self.a_ab
        d2 = p @ self.ac.T - self.a_ac
        v, w = _barycentric_weights(d1, d2, self.ab_ab, self.ac_ac, self.ab_ac)
        ap_ap = (p * p).sum(-1, keepdim=True) - 2 * (p @ self.a.T) + self.a_a
        # |ap - v ab - w ac|^2 expanded; float32 cancellation only affects near-ties between faces,
        # the distance itself is recomputed exactly for the chosen face.
        dist2 = ap_ap - 2 * v * d1 - 2 * w * d2 + v * v * self.ab_ab + 2 * v * w * self.ab_ac + w * w * self.ac_ac
        return dist2.argmin(dim=1)

    @torch.no_grad()
    def closest_points(self, queries: torch.Tensor, pairs_per_chunk: int = DEFAULT_PAIRS_PER_CHUNK
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Closest surface points ``(M, 3)`` and their face indices ``(M,)`` for ``(M, 3)`` queries."""
        p_all = torch.as_tensor(queries, dtype=torch.float32).to(self.device)
        chunk = max(1, pairs_per_chunk // len(self.a))
        index = torch.cat([self._nearest_faces(p_all[s : s + chunk]) for s in range(0, len(p_all), chunk)]) \
            if len(p_all) else torch.zeros(0, dtype=torch.long, device=self.device)
        a, ab, ac = self.a[index], self.ab[index], self.ac[index]
        ap = p_all - a
        v, w = _barycentric_weights((ab * ap).sum(-1), (ac * ap).sum(-1), self.ab_ab[index], self.ac_ac[index],
                                    self.ab_ac[index])
        return a + v[:, None] * ab + w[:, None] * ac, index
