"""Per-frame camera pose from ChArUco corners: ``solvePnP`` + Levenberg-Marquardt refinement.

Poses are camera-to-world (4, 4) matrices in OpenCV's camera convention (x right, y down,
z forward, the direction the camera looks) in the board's world frame (see :mod:`board`).
For OpenGL/NeRF tools (x right, y up, z backward) flip the camera's y and z axes:
``c2w_gl = c2w_cv @ diag(1, -1, -1, 1)`` (:func:`opencv_to_opengl`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nrtool.scan import filtering
from nrtool.scan.board import ChArUcoBoard
from nrtool.scan.detection import Detection
from nrtool.scan.intrinsics import Intrinsics

#: Camera-axis flip between OpenCV (y down, z forward) and OpenGL (y up, z backward) cameras.
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at(azimuth: float, zenith: float, distance: float) -> np.ndarray:
    """(4, 4) camera-to-world (OpenCV axes) of a camera at (azimuth, zenith, distance) looking at
    the origin with the world's z up in the picture."""
    a, z = np.radians(azimuth), np.radians(zenith)
    centre = distance * np.array([np.sin(z) * np.cos(a), np.sin(z) * np.sin(a), np.cos(z)])
    forward = -centre / np.linalg.norm(centre)
    up = np.array([0.0, 0.0, 1.0])
    down = -(up - forward * (up @ forward))
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, centre
    return pose


#: Outlier corners: residual above OUTLIER_FACTOR x the frame's median and above OUTLIER_FLOOR_PX.
OUTLIER_FACTOR = 4.0
OUTLIER_FLOOR_PX = 1.0


@dataclass
class PoseResult:
    """A frame's pose, or why it has none (``reason`` is a :mod:`filtering` code, ``detail`` says more)."""

    camera_to_world: np.ndarray | None  # (4, 4) OpenCV camera convention
    reprojection_error: float  # RMS pixels over the corners used (outliers left out); NaN without a pose
    reason: str = ""
    detail: str = ""


class BoardGeometry:
    """The board's OpenCV object and the world transform, built once and shared by all frames."""

    def __init__(self, board: ChArUcoBoard) -> None:
        self.board = board
        self.cv_board = board.cv_board()
        self.world_from_board = board.world_from_board()

    def correspondences(self, detection: Detection) -> tuple[np.ndarray, np.ndarray]:
        """((M, 3) board-frame points, (M, 2) pixels) of a detection's corners."""
        objects, images = self.cv_board.matchImagePoints(detection.corners.reshape(-1, 1, 2), detection.corner_ids)
        return np.asarray(objects, np.float64).reshape(-1, 3), np.asarray(images, np.float64).reshape(-1, 2)

    def usable(self, detection: Detection, min_corners: int) -> tuple[str, str]:
        """("", "") when the corners can fix a pose, else (reason code, detail)."""
        count = len(detection.corner_ids)
        if count == 0:
            return filtering.NO_BOARD, f"no ChArUco corners ({detection.markers} markers decoded)"
        if count < min_corners:
            return filtering.WEAK, f"{count} corners < {min_corners} required ({detection.markers} markers)"
        # All corners on one line leave the rotation about that line free: no pose.
        if self.cv_board.checkCharucoCornersCollinear(detection.corner_ids.reshape(-1, 1)):
            return filtering.COLLINEAR, f"all {count} corners lie on one board line"
        return "", ""


def estimate_pose(detection: Detection, geometry: BoardGeometry, intrinsics: Intrinsics,
                  min_corners: int = 6) -> PoseResult:
    """Camera-to-world pose of one frame, with its RMS reprojection error (pixels)."""
    import cv2

    reason, detail = geometry.usable(detection, min_corners)
    if reason:
        return PoseResult(None, float("nan"), reason, detail)
    objects, pixels = geometry.correspondences(detection)
    K, dist = intrinsics.K, intrinsics.distortion
    # IPPE is the closed-form solver made for planar targets (it resolves the two-fold
    # ambiguity of a plane's pose); LM then polishes the estimate on all corners.
    ok, rvec, tvec = cv2.solvePnP(objects, pixels, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        return PoseResult(None, float("nan"), filtering.POSE_FAILED, "solvePnP found no solution")
    rvec, tvec = cv2.solvePnPRefineLM(objects, pixels, K, dist, rvec, tvec)
    residuals = _residuals(objects, pixels, rvec, tvec, intrinsics)
    # One round of outlier rejection: a corner whose sub-pixel window is crossed by the object's
    # silhouette, or seen at a grazing angle, can sit pixels off while the rest agree to a
    # tenth of a pixel; it would pull the pose, so the pose is refit without it.
    inliers = residuals <= max(OUTLIER_FLOOR_PX, OUTLIER_FACTOR * float(np.median(residuals)))
    if not inliers.all() and inliers.sum() >= min_corners:
        objects, pixels = objects[inliers], pixels[inliers]
        rvec, tvec = cv2.solvePnPRefineLM(objects, pixels, K, dist, rvec, tvec)
        residuals = _residuals(objects, pixels, rvec, tvec, intrinsics)
    rms = float(np.sqrt(np.mean(residuals**2)))
    camera_from_board = np.eye(4)
    camera_from_board[:3, :3] = cv2.Rodrigues(rvec)[0]
    camera_from_board[:3, 3] = tvec.reshape(3)
    if camera_from_board[2, 3] <= 0:
        return PoseResult(None, rms, filtering.POSE_FAILED, "solvePnP put the board behind the camera")
    camera_to_world = geometry.world_from_board @ np.linalg.inv(camera_from_board)
    return PoseResult(camera_to_world, rms)


def _residuals(objects: np.ndarray, pixels: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
               intrinsics: Intrinsics) -> np.ndarray:
    """(M,) reprojection distances in pixels."""
    import cv2

    projected, _ = cv2.projectPoints(objects, rvec, tvec, intrinsics.K, intrinsics.distortion)
    return np.linalg.norm(projected.reshape(-1, 2) - pixels, axis=1)


def project_world(points: np.ndarray, camera_to_world: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(N, 2) pixels of (N, 3) world points seen by a camera (OpenCV convention, with distortion)."""
    import cv2

    world_to_camera = np.linalg.inv(camera_to_world)
    rvec = cv2.Rodrigues(world_to_camera[:3, :3])[0]
    pixels, _ = cv2.projectPoints(np.asarray(points, np.float64).reshape(-1, 1, 3), rvec, world_to_camera[:3, 3],
                                  intrinsics.K, intrinsics.distortion)
    return pixels.reshape(-1, 2)


def camera_angles(centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in [0, 360) (from +x towards +y) and zenith (from +z) in degrees of (N, 3) camera centres."""
    centres = np.asarray(centres, np.float64).reshape(-1, 3)
    azimuth = np.degrees(np.arctan2(centres[:, 1], centres[:, 0])) % 360.0
    radius = np.linalg.norm(centres, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        zenith = np.degrees(np.arccos(np.clip(centres[:, 2] / radius, -1.0, 1.0)))
    return azimuth, zenith


def opencv_to_opengl(camera_to_world: np.ndarray) -> np.ndarray:
    """Camera-to-world (..., 4, 4) from OpenCV's camera axes to OpenGL's (what NeRF tools read)."""
    return np.asarray(camera_to_world) @ CV_TO_GL


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) of the rotation taking rotation matrix ``a`` to ``b``."""
    cos = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
