"""The boxes a NeRF lives in: the scene's (where it is trained) and, for masking, the render box.

In a scan's world frame (the board's: origin at its centre, z up) the boxes follow the board;
for a NeRF dataset without a board, the box is what every camera looks at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.nerf.views import Views


def board_boxes(board: Any, box_height: float | None = None, train_margin: float = 1.25) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """The training box, and the render box's top, of a board (world = the board's frame)."""
    w, h = board.size
    height = box_height if box_height is not None else 0.5 * max(w, h)
    half = train_margin * np.array([w / 2, h / 2])
    # A little below the board (its surface must sit inside), and above the render box's top.
    lo = np.array([-half[0], -half[1], -0.05 * max(w, h)])
    hi = np.array([half[0], half[1], 1.25 * height])
    return (lo, hi), float(height)


def render_box(board: Any, z_offset: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    w, h = board.size
    return np.array([-w / 2, -h / 2, z_offset]), np.array([w / 2, h / 2, height])


def default_z_offset(voxel: float, board: Any) -> float:
    # The board's density is a few millimetres thick whatever the voxel (with 2.6 mm voxels 5.1 mm
    # let 0.16 % of its pixels into the masks, 6.2 mm none): hence a floor in board units.
    return max(2 * voxel, board.square / 8)


def scene_box(source: str | os.PathLike[str], views: Views) -> tuple[np.ndarray, np.ndarray]:
    """For a scan: the board's footprint up to the render box's top when the frames are masked
    (object only), the masking's training box otherwise; for a NeRF dataset: the cameras'
    common view."""
    if Path(source).suffix.lower() in (".h5", ".hdf5"):
        from nrtool.scan.artifact import load_scan

        board = load_scan(source).board
        if views.alpha is None:
            return board_boxes(board)[0]
        (lo, hi), height = board_boxes(board, train_margin=1.0)
        return lo, np.array([hi[0], hi[1], height])
    return box_from_cameras(views)


def box_from_cameras(views: Views, margin: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A cube around what every camera looks at: centred on the point nearest to all optical
    axes (least squares), with a half side that the narrowest half field of view covers at the
    median camera distance. For object captures whose frames show the whole object."""
    centres = views.camera_to_world[:, :3, 3]
    axes = views.camera_to_world[:, :3, 2]
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    # sum_i (I - a_i a_i^T) (x - c_i) = 0
    projections = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    centre = np.linalg.lstsq(projections.sum(0), np.einsum("nij,nj->i", projections, centres), rcond=None)[0]
    distance = float(np.median(np.linalg.norm(centres - centre, axis=1)))
    w, h = views.size
    half_fov = min(np.arctan((w / 2) / views.K[0, 0]), np.arctan((h / 2) / views.K[1, 1]))
    half = margin * distance * np.sin(half_fov)
    return centre - half, centre + half
