"""Camera intrinsics: read them from a file (OpenCV YAML or JSON), write them, or calibrate them
from ChArUco detections.

Distortion follows OpenCV's order ``k1, k2, p1, p2[, k3[, k4, k5, k6]]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError


@dataclass
class Intrinsics:
    """Pinhole camera with OpenCV distortion, for images of ``width`` x ``height`` pixels."""

    K: np.ndarray  # (3, 3)
    distortion: np.ndarray  # (D,), D in {4, 5, 8, ...}; zeros = none
    width: int
    height: int
    source: str = ""  # "file:PATH" or "calibrated"
    rms: float | None = None  # reprojection RMS (px) of the calibration that produced them

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def distortion5(self) -> np.ndarray:
        """``k1, k2, p1, p2, k3`` (zero-padded), the coefficients NeRF tools understand."""
        out = np.zeros(5)
        out[: min(5, len(self.distortion))] = self.distortion[:5]
        return out

    def scaled_to(self, width: int, height: int) -> "Intrinsics":
        """The same camera for images resized to ``width`` x ``height`` (e.g. a calibration made
        at another resolution of the same sensor; the aspect ratio must match)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0] *= sx
        K[1] *= sy
        return Intrinsics(K, self.distortion.copy(), width, height, self.source, self.rms)


def _matrix(value: Any, shape: tuple[int, ...], path: Path, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
        return array.reshape(shape) if shape else array.reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputFileError(path, f"{name} is not a {'x'.join(map(str, shape)) or 'list of'} numbers") from exc


def _from_mapping(data: dict[str, Any], path: Path) -> Intrinsics:
    """JSON layouts: ``{camera_matrix|K, distortion_coefficients|distortion|dist, image_width|width|w,
    image_height|height|h}`` or nerfstudio's ``{fl_x, fl_y, cx, cy, w, h, k1, k2, p1, p2, k3}``."""

    def pick(*keys: str) -> Any:
        return next((data[k] for k in keys if k in data), None)

    width, height = pick("image_width", "width", "w"), pick("image_height", "height", "h")
    if "fl_x" in data:
        K = np.array([[data["fl_x"], 0, data["cx"]], [0, data.get("fl_y", data["fl_x"]), data["cy"]], [0, 0, 1]], float)
        dist = np.array([float(data.get(k, 0.0)) for k in ("k1", "k2", "p1", "p2", "k3")])
    else:
        K_value = pick("camera_matrix", "K")
        if K_value is None:
            raise InputFileError(path, "no camera matrix (expected 'camera_matrix' or 'K', or nerfstudio's fl_x/fl_y/cx/cy)")
        if isinstance(K_value, dict) and "data" in K_value:  # an OpenCV matrix written as JSON
            K_value = K_value["data"]
        K = _matrix(K_value, (3, 3), path, "camera_matrix")
        dist_value = pick("distortion_coefficients", "distortion", "dist", "D")
        if isinstance(dist_value, dict) and "data" in dist_value:
            dist_value = dist_value["data"]
        dist = _matrix(dist_value if dist_value is not None else [], (), path, "distortion")
    if width is None or height is None:
        raise InputFileError(path, "image size missing (expected image_width/image_height, width/height or w/h)")
    return Intrinsics(K, dist, int(width), int(height), f"file:{path}")


def read_intrinsics(path: str | os.PathLike[str]) -> Intrinsics:
    """Intrinsics from an OpenCV YAML/XML file (``camera_matrix``, ``distortion_coefficients``,
    ``image_width``, ``image_height``, as written by OpenCV's calibration samples) or JSON."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file" if not path.exists() else "is not a file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise InputFileError(path, "expected a JSON object with the camera matrix")
        intrinsics = _from_mapping(data, path)
    else:
        intrinsics = _read_opencv(path)
    K = intrinsics.K
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        raise InputFileError(path, "camera matrix must be [[fx,0,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0")
    if len(intrinsics.distortion) not in (0, 4, 5, 8, 12, 14):
        raise InputFileError(path, f"{len(intrinsics.distortion)} distortion coefficients (OpenCV takes 4, 5, 8, 12 or 14)")
    if intrinsics.width <= 0 or intrinsics.height <= 0:
        raise InputFileError(path, "image size must be positive")
    if len(intrinsics.distortion) == 0:
        intrinsics.distortion = np.zeros(5)
    return intrinsics


def _read_opencv(path: Path) -> Intrinsics:
    import cv2

    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except cv2.error as exc:
        raise InputFileError(path, "not an OpenCV YAML/XML file (or a .json)") from exc
    try:
        if not storage.isOpened():
            raise InputFileError(path, "not an OpenCV YAML/XML file (or a .json)")
        K = storage.getNode("camera_matrix").mat()
        dist = storage.getNode("distortion_coefficients").mat()
        width = storage.getNode("image_width").real()
        height = storage.getNode("image_height").real()
    finally:
        storage.release()
    if K is None:
        raise InputFileError(path, "no 'camera_matrix' entry")
    if not width or not height:
        raise InputFileError(path, "no 'image_width'/'image_height' entries")
    dist = np.zeros(5) if dist is None else np.asarray(dist, np.float64).reshape(-1)
    return Intrinsics(np.asarray(K, np.float64).reshape(3, 3), dist, int(width), int(height), f"file:{path}")


def write_intrinsics(path: str | os.PathLike[str], intrinsics: Intrinsics, note: str = "") -> None:
    """Write OpenCV YAML (what :func:`read_intrinsics` and OpenCV's samples read)."""
    import cv2

    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", int(intrinsics.width))
    storage.write("image_height", int(intrinsics.height))
    storage.write("camera_matrix", np.asarray(intrinsics.K, np.float64))
    storage.write("distortion_coefficients", np.asarray(intrinsics.distortion, np.float64).reshape(1, -1))
    if intrinsics.rms is not None:
        storage.write("avg_reprojection_error", float(intrinsics.rms))
    if note:
        storage.write("info", note)
    storage.release()


def calibrate(object_points: Sequence[np.ndarray], image_points: Sequence[np.ndarray], width: int,
              height: int) -> Intrinsics:
    """Zhang calibration (``cv2.calibrateCamera``) of K and 5 distortion coefficients from
    per-frame board/image correspondences ((M_i, 3) board coordinates, (M_i, 2) pixels).

    Planar targets need views from several directions: 3+ frames, at different tilts.
    """
    import cv2

    if len(object_points) < 3:
        raise NrtoolError(f"--calibrate needs at least 3 frames with a well-detected board, found {len(object_points)}")
    objects = [np.asarray(o, np.float32).reshape(-1, 1, 3) for o in object_points]
    images = [np.asarray(i, np.float32).reshape(-1, 1, 2) for i in image_points]
    try:
        rms, K, dist, _, _ = cv2.calibrateCamera(objects, images, (width, height), None, None)
    except cv2.error as exc:
        raise NrtoolError(f"camera calibration failed ({str(exc).strip().splitlines()[-1]})") from exc
    if not np.isfinite(rms) or K[0, 0] <= 0:
        raise NrtoolError("camera calibration diverged: too few or too similar views of the board")
    return Intrinsics(np.asarray(K, np.float64), np.asarray(dist, np.float64).reshape(-1), width, height,
                      "calibrated", float(rms))
