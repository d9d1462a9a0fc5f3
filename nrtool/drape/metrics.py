"""Draping metrics (thesis Tab. 2.1 and A.1): how much garment is inside the body (B2G), how much
bottom pokes out through the top (G2G), and the physical energies per frame.

The inside/outside tests use the posed body's vertices and normals only (no mesh ray casting): a
point is inside when it lies below the tangent plane of its nearest body vertex. That is the test
the collision energy penalises (:func:`nrtool.drape.physics.collision_energy`), so the metric and
the loss agree on what "inside" means, and it runs batched on any device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from nrtool.drape.physics import (
    ClothRest,
    Material,
    bending_energy,
    face_areas,
    face_centroids,
    gather_points,
    gravity_energy,
    nearest_vertex,
    strain_energy,
)
from nrtool.errors import NrtoolError

__all__ = [
    "COVER_RADIUS_EDGES",
    "body_to_garment",
    "face_centroids",
    "frame_metrics",
    "garment_to_garment",
    "inside_body",
]

#: Default coverage radius of :func:`garment_to_garment`, in mean top edge lengths.
COVER_RADIUS_EDGES = 2.0


def inside_body(points: Tensor, body_vertices: Tensor, body_normals: Tensor) -> Tensor:
    """Whether each point is inside the body: ``n_b . (p - x_b) < 0``, ``x_b`` its nearest body vertex.

    Args:
        points: ``(B, N, 3)``.
        body_vertices: ``(B, Vb, 3)`` posed body vertices.
        body_normals: ``(B, Vb, 3)`` their unit outward normals.

    Returns:
        ``(B, N)`` bool.
    """
    index = nearest_vertex(points, body_vertices)
    xb = gather_points(body_vertices.to(points.dtype), index)
    nb = gather_points(body_normals.to(points.dtype), index)
    return (nb * (points - xb)).sum(-1) < 0


def body_to_garment(x: Tensor, faces: Tensor, body_vertices: Tensor, body_normals: Tensor) -> Tensor:
    """B2G: the fraction of garment area inside the body, ``(B,)`` in [0, 1].

    Area (posed) of the faces whose centroid is inside the body (:func:`inside_body`) divided by
    the garment's total posed area.

    Args:
        x: ``(B, V, 3)`` posed garment.
        faces: ``(F, 3)`` its faces.
        body_vertices, body_normals: ``(B, Vb, 3)`` the posed body.
    """
    with torch.no_grad():
        areas = face_areas(x, faces)
        inside = inside_body(face_centroids(x, faces), body_vertices, body_normals)
        return (areas * inside).sum(-1) / areas.sum(-1).clamp_min(1e-30)


def garment_to_garment(bottom: Tensor, bottom_faces: Tensor, top: Tensor, top_faces: Tensor,
                       body_vertices: Tensor, body_normals: Tensor, radius: float | None = None) -> Tensor:
    """G2G: the fraction of the bottom's area that is outside the top where the top covers it, ``(B,)``.

    For each bottom face with centroid ``p`` (all posed):

    - ``n_b`` is the normal of the body vertex nearest to ``p`` (the local "outward" direction);
    - ``t`` is the top vertex nearest to ``p``; the offset ``p - t`` splits into a part along
      ``n_b`` and a lateral part in the body's tangent plane;
    - the top **covers** the face when that lateral part is at most ``radius`` (default
      :data:`COVER_RADIUS_EDGES` x the top's mean posed edge length, per batch element): some
      top vertex lies right above or below ``p`` along the body normal. Bottom faces where no top
      is (trouser legs below a shirt's hem) are never counted, however far out they are;
    - a covered face is **outside** the top when ``n_b . (p - t) > 0``: it is farther from the
      body than the top there.

    G2G = (posed area of covered faces that are outside) / (total posed area of the bottom). The
    denominator is the whole bottom, as in the thesis' Tab. 2.1, so the value is the share of the
    bottom that shows through the top.

    Args:
        bottom: ``(B, V, 3)`` posed bottom, ``bottom_faces (F, 3)``.
        top: ``(B, Vt, 3)`` posed top, ``top_faces (Ft, 3)``.
        body_vertices, body_normals: ``(B, Vb, 3)`` the posed body.
        radius: coverage radius, m (None: from the top's edge length).
    """
    with torch.no_grad():
        dtype = torch.promote_types(bottom.dtype, top.dtype)
        bottom, top = bottom.to(dtype), top.to(dtype)
        areas = face_areas(bottom, bottom_faces)
        p = face_centroids(bottom, bottom_faces)
        nb = gather_points(body_normals.to(dtype), nearest_vertex(p, body_vertices))
        t = gather_points(top, nearest_vertex(p, top))
        offset = p - t
        along = (offset * nb).sum(-1)
        lateral = torch.linalg.vector_norm(offset - along[..., None] * nb, dim=-1)
        if radius is None:
            edges = top_faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
            lengths = torch.linalg.vector_norm(top[:, edges[:, 0]] - top[:, edges[:, 1]], dim=-1)
            limit = COVER_RADIUS_EDGES * lengths.mean(-1, keepdim=True)  # (B, 1)
        else:
            limit = torch.full((top.shape[0], 1), float(radius), dtype=dtype, device=top.device)
        outside = (lateral <= limit) & (along > 0)
        return (areas * outside).sum(-1) / areas.sum(-1).clamp_min(1e-30)


def frame_metrics(garment: Tensor | np.ndarray, rest: ClothRest, body_vertices: Tensor | np.ndarray,
                  body_normals: Tensor | np.ndarray, material: Material | None = None,
                  bottom: Tensor | np.ndarray | None = None, bottom_rest: ClothRest | None = None,
                  batch_size: int = 64, device: Any = None) -> dict[str, np.ndarray]:
    """Per-frame metrics of a draped sequence, numpy ``(T,)`` float64 arrays.

    Args:
        garment: ``(T, V, 3)`` posed vertices of the garment (the top when a bottom is given).
        rest: its :class:`ClothRest` (faces, rest state).
        body_vertices, body_normals: ``(T, Vb, 3)`` the posed body per frame.
        material: the fabric (default :class:`Material`).
        bottom, bottom_rest: ``(T, Vbm, 3)`` and the rest state of a bottom worn under the top.
        batch_size: frames evaluated at once (bounds memory on long sequences).
        device: where to compute (default: ``rest``'s device).

    Returns:
        ``b2g``, ``strain``, ``bending``, ``gravity`` of ``garment`` (J; gravity with its zero at
        the body's lowest vertex in each frame, so a body walking up stairs does not change it);
        with a bottom also ``g2g`` (:func:`garment_to_garment`, bottom under the top) and
        ``bottom_b2g``, ``bottom_strain``, ``bottom_bending``, ``bottom_gravity``.
    """
    if (bottom is None) != (bottom_rest is None):
        raise NrtoolError("frame_metrics needs both the bottom's vertices and its rest state, or neither")
    material = material or Material()
    device = torch.device(device) if device is not None else rest.faces.device
    dtype = rest.masses.dtype
    rest = rest.to(device)
    bottom_rest = bottom_rest.to(device) if bottom_rest is not None else None

    def frames(array: Tensor | np.ndarray, start: int, stop: int) -> Tensor:
        return torch.as_tensor(array[start:stop]).to(device=device, dtype=dtype)

    count = len(garment)
    if len(body_vertices) != count or len(body_normals) != count or (bottom is not None and len(bottom) != count):
        raise NrtoolError("frame_metrics: garment, bottom and body must have the same number of frames")
    names = ["b2g", "strain", "bending", "gravity"]
    if bottom is not None:
        names += ["g2g", "bottom_b2g", "bottom_strain", "bottom_bending", "bottom_gravity"]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    with torch.no_grad():
        for start in range(0, count, max(1, batch_size)):
            stop = min(count, start + max(1, batch_size))
            x = frames(garment, start, stop)
            bv, bn = frames(body_vertices, start, stop), frames(body_normals, start, stop)
            floor = bv[..., 1].min(dim=1).values
            values = {
                "b2g": body_to_garment(x, rest.faces, bv, bn),
                "strain": strain_energy(x, rest, material),
                "bending": bending_energy(x, rest, material),
                "gravity": gravity_energy(x, rest, material, floor),
            }
            if bottom is not None and bottom_rest is not None:
                y = frames(bottom, start, stop)
                values.update({
                    "g2g": garment_to_garment(y, bottom_rest.faces, x, rest.faces, bv, bn),
                    "bottom_b2g": body_to_garment(y, bottom_rest.faces, bv, bn),
                    "bottom_strain": strain_energy(y, bottom_rest, material),
                    "bottom_bending": bending_energy(y, bottom_rest, material),
                    "bottom_gravity": gravity_energy(y, bottom_rest, material, floor),
                })
            for name, value in values.items():
                parts[name].append(value.detach().cpu().numpy().astype(np.float64))
    return {name: np.concatenate(chunks) if chunks else np.zeros(0) for name, chunks in parts.items()}
