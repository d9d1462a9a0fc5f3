"""Headless pictures of posed bodies: a PNG contact sheet of a few frames.

Meshes are drawn with an orthographic camera (front: looking along -Z at a Y-up body facing +Z;
side: looking along -X) and Lambert shading, by one of two interchangeable backends: PyTorch3D's
``rasterize_meshes`` (a z-buffer) or a matplotlib painter's algorithm (faces sorted far to near).
They give the same picture; matplotlib is the default because PyTorch3D's CPU rasterizer is the
naive per-pixel one (no coarse binning on CPU) and is ~4x slower here. Nothing needs a display.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from nrtool.errors import NrtoolError

__all__ = ["VIEWS", "BACKENDS", "render_mesh", "contact_sheet", "garment_sheet"]

BACKENDS = ("auto", "matplotlib", "pytorch3d")

#: View name -> (screen-right axis, screen-up axis, towards-viewer axis) as world unit vectors.
VIEWS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "front": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "side": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)),
}
_BASE_COLOUR = np.array([0.62, 0.72, 0.86])


def _camera_coords(vertices: np.ndarray, view: str, centre: np.ndarray, half: float) -> np.ndarray:
    """``(V, 3)`` in [-1, 1]^2 screen coordinates (right, up) and depth towards the viewer."""
    right, up, towards = (np.asarray(a) for a in VIEWS[view])
    p = (vertices - centre) / half
    return np.stack([p @ right, p @ up, p @ towards], axis=1)


def _shade(normals_cam: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """Lambert shading of faces; ``base`` is ``(3,)`` or per face ``(F, 3)``."""
    light = np.array([-0.3, 0.4, 1.0])
    light /= np.linalg.norm(light)
    lambert = np.clip(np.abs(normals_cam @ light), 0.0, 1.0)  # two-sided: open garments too
    colour = np.broadcast_to(_BASE_COLOUR if base is None else np.asarray(base, dtype=np.float64), normals_cam.shape)
    return np.clip(colour * (0.3 + 0.7 * lambert[:, None]), 0.0, 1.0)


def _face_normals(cam: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = cam[faces[:, 0]], cam[faces[:, 1]], cam[faces[:, 2]]
    n = np.cross(b - a, c - a)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _render_pytorch3d(cam: np.ndarray, faces: np.ndarray, size: tuple[int, int], base: np.ndarray | None) -> np.ndarray:
    import torch
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    height, width = size
    # PyTorch3D NDC: +X points left, +Y up, +Z away from the viewer (depth > 0); the shorter
    # image side spans [-1, 1], as our screen coordinates do.
    ndc = np.stack([-cam[:, 0], cam[:, 1], 2.0 - cam[:, 2]], axis=1)
    meshes = Meshes(verts=[torch.as_tensor(ndc, dtype=torch.float32)], faces=[torch.as_tensor(faces, dtype=torch.int64)])
    pix_to_face, _, _, _ = rasterize_meshes(meshes, image_size=(height, width), faces_per_pixel=1, blur_radius=0.0)
    pix = pix_to_face[0, :, :, 0].numpy()
    colours = _shade(_face_normals(cam, faces), base)
    image = np.ones((height, width, 3))
    hit = pix >= 0
    image[hit] = colours[pix[hit]]
    return image


def _render_matplotlib(cam: np.ndarray, faces: np.ndarray, size: tuple[int, int], base: np.ndarray | None) -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    height, width = size
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    half_w = width / min(width, height)
    half_h = height / min(width, height)
    ax.set_xlim(-half_w, half_w)
    ax.set_ylim(-half_h, half_h)
    ax.set_axis_off()
    order = np.argsort(cam[faces, 2].mean(axis=1))  # far to near
    polys = cam[faces[order]][:, :, :2]
    colours = _shade(_face_normals(cam, faces), base)[order]
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="none", linewidths=0.0, antialiased=False))
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(np.float64) / 255.0
    plt.close(fig)
    return image


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    view: str = "front",
    size: tuple[int, int] = (320, 240),
    centre: np.ndarray | None = None,
    half: float | None = None,
    backend: str = "auto",
    face_colours: np.ndarray | None = None,
) -> np.ndarray:
    """Render one mesh: ``(V, 3)`` vertices, ``(F, 3)`` faces -> ``(H, W, 3)`` float image in [0, 1].

    ``centre``/``half`` fix the world box shown (``half`` = half the shorter image side in
    metres); by default the mesh's own bounding box. ``backend``: ``pytorch3d``, ``matplotlib``
    or ``auto`` (= matplotlib: PyTorch3D's CPU rasterizer is the naive one, measured 1.9 s per
    320x240 frame of 5k faces against 0.44 s here). ``face_colours``: ``(F, 3)`` RGB in [0, 1]
    (default: one light blue).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if centre is None:
        centre = (vertices.min(0) + vertices.max(0)) / 2
    if half is None:
        half = float(np.max(vertices.max(0) - vertices.min(0))) / 2 * 1.05 or 1.0
    cam = _camera_coords(vertices, view, np.asarray(centre, dtype=np.float64), half)
    if backend not in BACKENDS:
        raise NrtoolError(f"unknown renderer {backend!r}; choose {', '.join(BACKENDS)}")
    if backend == "pytorch3d":
        try:
            import pytorch3d.renderer  # noqa: F401
        except ImportError as exc:
            raise NrtoolError("--renderer pytorch3d: PyTorch3D is not installed (pip install easypytorch3d), use --renderer matplotlib") from exc
        return _render_pytorch3d(cam, faces, size, face_colours)
    return _render_matplotlib(cam, faces, size, face_colours)


def contact_sheet(
    frames: Sequence[np.ndarray],
    faces: np.ndarray,
    png: str | os.PathLike[str],
    titles: Sequence[str] | None = None,
    joints: Sequence[np.ndarray] | None = None,
    views: Sequence[str] = ("front", "side"),
    size: tuple[int, int] = (320, 240),
    suptitle: str | None = None,
    backend: str = "auto",
    face_colours: np.ndarray | None = None,
) -> None:
    """One PNG: a column per frame, a row per view; joints (if given) drawn as red dots.

    Every panel uses the same scale; each is centred on its own frame so that a walking body
    stays in view. ``face_colours (F, 3)``: RGB per face (e.g. body grey, garments blue).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    frames = [np.asarray(f, dtype=np.float64) for f in frames]
    extent = max(float(np.max(f.max(0) - f.min(0))) for f in frames)
    half = extent / 2 * 1.08 * min(size) / max(size)
    height, width = size
    fig, axes = plt.subplots(len(views), len(frames), figsize=(1.6 * len(frames) + 0.2, 2.1 * len(views) + 0.4), squeeze=False)
    for col, verts in enumerate(frames):
        centre = (verts.min(0) + verts.max(0)) / 2
        for row, view in enumerate(views):
            ax = axes[row][col]
            image = render_mesh(verts, faces, view, size, centre, half, backend, face_colours)
            ax.imshow(image, extent=(-width / min(size), width / min(size), -height / min(size), height / min(size)))
            if joints is not None:
                cam = _camera_coords(np.asarray(joints[col], dtype=np.float64), view, centre, half)
                front = cam[:, 2] >= np.median(cam[:, 2]) - 1.0
                ax.scatter(cam[front, 0], cam[front, 1], s=4, c="#d62728", linewidths=0)
            ax.set_xlim(-width / min(size), width / min(size))
            ax.set_ylim(-height / min(size), height / min(size))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0 and titles is not None:
                ax.set_title(titles[col], fontsize=7)
            if col == 0:
                ax.set_ylabel(view, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=8)
    fig.tight_layout()
    save_figure(fig, png, dpi=110)


def garment_sheet(
    body: tuple[np.ndarray, np.ndarray],
    garments: Sequence[tuple[np.ndarray, np.ndarray, str]],
    png: str | os.PathLike[str],
    size: tuple[int, int] = (300, 300),
    backend: str = "auto",
) -> None:
    """One PNG: each garment (blue) on the body (grey), front and side views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    body_v, body_f = (np.asarray(a) for a in body)
    centre = (body_v.min(0) + body_v.max(0)) / 2
    half = float(np.max(body_v.max(0) - body_v.min(0))) / 2 * 1.05
    fig, axes = plt.subplots(2, len(garments), figsize=(1.9 * len(garments) + 0.2, 4.2), squeeze=False)
    for col, (verts, faces, title) in enumerate(garments):
        all_v = np.vstack([body_v, verts])
        all_f = np.vstack([body_f, np.asarray(faces) + len(body_v)])
        colours = np.vstack([np.tile([0.75, 0.75, 0.75], (len(body_f), 1)), np.tile([0.25, 0.45, 0.85], (len(faces), 1))])
        for row, view in enumerate(("front", "side")):
            ax = axes[row][col]
            ax.imshow(render_mesh(all_v, all_f, view, size, centre, half, backend, colours))
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize=7)
    fig.tight_layout()
    save_figure(fig, png, dpi=110)
