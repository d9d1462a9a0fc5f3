"""Pictures of shapes and embeddings: reconstruction sheets, point strips, retrieval grids, t-SNE.

The plain figure mechanics (atomic PNG writing, training curves) are in :mod:`nrtool.figures`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.figures import save_figure

#: Points drawn per shape in a preview (enough to read the shape, few enough to stay fast).
PREVIEW_POINTS = 4_000


def _points_of(path: str, seed: int = 0) -> np.ndarray | None:
    from nrtool.geometry.metrics import sample_surface
    from nrtool.io import load_shape

    if not Path(path).exists():
        return None
    shape = load_shape(path)
    if shape.kind == "mesh" and shape.vertices is not None and shape.faces is not None and len(shape.faces):
        return sample_surface(shape.vertices, shape.faces, PREVIEW_POINTS, seed)
    points = shape.points()
    if len(points) > PREVIEW_POINTS:
        points = points[np.random.default_rng(seed).choice(len(points), PREVIEW_POINTS, replace=False)]
    return points


def _scatter(ax: Any, points: np.ndarray | None, title: str, parts: np.ndarray | None = None) -> None:
    """One cloud on a 3-D axis, coloured by height, or by ``parts`` (one integer label per point)."""
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    if points is None or len(points) == 0:
        ax.text2D(0.5, 0.5, "missing", ha="center", transform=ax.transAxes)
        return
    centre = (points.max(0) + points.min(0)) / 2
    radius = float(np.max(points.max(0) - points.min(0)) / 2) or 1.0
    p = (points - centre) / radius
    # Shapes are mostly y-up (ModelNet, PSB): show y as the vertical axis.
    if parts is None:
        ax.scatter(p[:, 0], p[:, 2], p[:, 1], s=0.5, c=p[:, 1], cmap="viridis", linewidths=0)
    else:  # a fixed colour per label (tab10 repeats after 10), so one part looks alike in every cell
        ax.scatter(p[:, 0], p[:, 2], p[:, 1], s=1.0, c=np.asarray(parts) % 10, cmap="tab10", vmin=0, vmax=9,
                   linewidths=0)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_zlim(-1, 1)
    ax.view_init(elev=20, azim=-60)


def reconstruction_sheet(inrs_path: str | os.PathLike[str], results: Sequence[Any], png: str | os.PathLike[str], limit: int = 12) -> None:
    """Sources (top) and their reconstructions (bottom) for up to ``limit`` items, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.artifacts.inrs import load_inrs

    _, items = load_inrs(inrs_path)
    sources = {item.name: item.source for item in items}
    shown = [r for r in results if r.path][:limit]
    if not shown:
        return
    fig = plt.figure(figsize=(2.0 * len(shown), 4.2))
    for col, result in enumerate(shown):
        label = f"{result.name}"
        if result.chamfer is not None:
            label += f"\nCD {result.chamfer:.4f}"
        if result.iou is not None:
            label += f"\nIoU {result.iou:.3f}"
        _scatter(fig.add_subplot(2, len(shown), col + 1, projection="3d"), _points_of(sources[result.name]), f"source\n{result.name}")
        _scatter(fig.add_subplot(2, len(shown), len(shown) + col + 1, projection="3d"), _points_of(result.path), label)
    fig.tight_layout()
    save_figure(fig, png, dpi=110)


def point_strip(clouds: Sequence[np.ndarray | None], labels: Sequence[str], png: str | os.PathLike[str],
                title: str = "") -> None:
    """One row of point clouds (e.g. an interpolation), as a PNG."""
    point_rows([("", clouds, labels)], png, title)


def point_rows(rows: Sequence[tuple[str, Sequence[np.ndarray | None], Sequence[str]]], png: str | os.PathLike[str],
               title: str = "", parts: Sequence[Sequence[np.ndarray | None]] | None = None) -> None:
    """Rows of point clouds, each ``(row title, clouds, labels)`` (e.g. two interpolation lines), as a PNG.

    ``parts``: per row, per cloud, an integer label per point (e.g. predicted parts) to colour by.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max(len(clouds) for _, clouds, _ in rows)
    fig = plt.figure(figsize=(2.0 * n_cols, 2.4 * len(rows)))
    for r, (row_title, clouds, labels) in enumerate(rows):
        for col, (points, label) in enumerate(zip(clouds, labels)):
            ax = fig.add_subplot(len(rows), n_cols, r * n_cols + col + 1, projection="3d")
            _scatter(ax, points, f"{row_title}\n{label}" if row_title and col == 0 else label,
                     None if parts is None else parts[r][col])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, png, dpi=100)


def shape_grid(cells: Sequence[Sequence[tuple[str, str, bool | None]]], png: str | os.PathLike[str],
               title: str = "") -> None:
    """Rows of shapes read from their source files; each cell is ``(path, title, match)`` and
    ``match`` colours its title green (True) or red (False), or leaves it black (None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(cells), max(len(row) for row in cells)
    fig = plt.figure(figsize=(1.9 * n_cols, 2.1 * n_rows))
    for r, row in enumerate(cells):
        for c, (path, label, match) in enumerate(row):
            ax = fig.add_subplot(n_rows, n_cols, r * n_cols + c + 1, projection="3d")
            _scatter(ax, _points_of(path), label)
            if match is not None:
                ax.title.set_color("tab:green" if match else "tab:red")
                ax.title.set_fontweight("bold")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, png, dpi=90)


def tsne_plot(vectors: np.ndarray, class_names: Sequence[str | None], png: str | os.PathLike[str],
              perplexity: float = 30.0, seed: int = 0, title: str = "") -> np.ndarray:
    """2-D t-SNE of embeddings (N, D) coloured by class (App. C.9); returns the (N, 2) layout.

    Perplexity is capped below N (t-SNE needs it); items without a class are drawn in grey.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    count = len(vectors)
    layout = TSNE(n_components=2, perplexity=min(perplexity, max(1.0, (count - 1) / 3)), init="pca",
                  random_state=seed).fit_transform(np.asarray(vectors, dtype=np.float64))
    classes = sorted({c for c in class_names if c is not None})
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(7, 6))
    unknown = np.array([c is None for c in class_names])
    if unknown.any():
        ax.scatter(layout[unknown, 0], layout[unknown, 1], s=10, c="lightgrey", label="(no class)")
    for index, name in enumerate(classes):
        mask = np.array([c == name for c in class_names])
        ax.scatter(layout[mask, 0], layout[mask, 1], s=14, color=cmap(index % cmap.N), label=name)
    ax.set(title=title or f"t-SNE of {count} embeddings", xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    save_figure(fig, png, dpi=110)
    return layout
