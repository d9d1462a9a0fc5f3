"""Camera rays of posed frames, and the box a scene is reconstructed in.

Directions are computed once per camera in the camera frame (undistorted with OpenCV, so real
lenses need no undistorted copy of the frames) and rotated per frame: ``(H, W, 3)`` plus a pose
per frame is all a batch of rays needs.
"""

from __future__ import annotations

import numpy as np
import torch

from nrtool.nerf.views import Views


def camera_directions(K: np.ndarray, distortion: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float32 directions ``(x, y, 1)`` in the OpenCV camera frame of every pixel
    centre of a ``size`` = (w, h) image, lens distortion undone."""
    w, h = size
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    if np.any(distortion):
        import cv2

        pixels = np.stack([u.ravel(), v.ravel()], axis=1)[:, None, :]
        normalised = cv2.undistortPoints(pixels, K, distortion).reshape(h, w, 2)
        x, y = normalised[..., 0], normalised[..., 1]
    else:
        x = (u - K[0, 2]) / K[0, 0]
        y = (v - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1).astype(np.float32)


class FrameRays:
    """Rays of every pixel of frames taken with one camera, made on demand on ``device``; with
    ``rgb`` (N, H, W, 3), also the pixels' colours (for training and scoring)."""

    def __init__(self, K: np.ndarray, distortion: np.ndarray, size: tuple[int, int], camera_to_world: np.ndarray,
                 rgb: np.ndarray | None = None, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.width, self.height = size
        self.count = len(camera_to_world)
        self.directions = torch.from_numpy(camera_directions(K, distortion, size)).to(self.device)
        pose = torch.from_numpy(np.asarray(camera_to_world, np.float32)).to(self.device)
        self.rotation, self.centre = pose[:, :3, :3], pose[:, :3, 3]
        self.rgb = torch.from_numpy(rgb).to(self.device) if rgb is not None else None

    @classmethod
    def of(cls, views: Views, device: torch.device | str = "cpu") -> "FrameRays":
        """The rays and colours of loaded frames."""
        return cls(views.K, views.distortion, views.size, views.camera_to_world, views.images, device)

    @property
    def pixels(self) -> int:
        return self.count * self.width * self.height

    def rays(self, frame: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins and unit directions (R, 3) of the given pixels."""
        local = self.directions[row, col]  # (R, 3)
        world = torch.einsum("rij,rj->ri", self.rotation[frame], local)
        return self.centre[frame], world / world.norm(dim=1, keepdim=True)

    def at(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Origins, directions and target colours (None without ``rgb``) of flat pixel indices
        (frame-major)."""
        frame = flat // (self.width * self.height)
        rest = flat % (self.width * self.height)
        row, col = rest // self.width, rest % self.width
        origins, directions = self.rays(frame, row, col)
        return origins, directions, self.rgb[frame, row, col] if self.rgb is not None else None

    def frame(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins and directions (H*W, 3) of one frame, row-major."""
        flat = torch.arange(self.width * self.height, device=self.device) + index * self.width * self.height
        origins, directions, _ = self.at(flat)
        return origins, directions
