"""Which frames of a capture to keep (thesis Sec. 3.3.2), and why each dropped frame was dropped.

The scan station films continuously, also while the arm lowers the camera to the next zenith
step; the base is still then, so those frames barely change azimuth. A frame whose azimuth
differs from the previous posed frame's by less than ``min_azimuth_step`` is dropped as taken
while the arm moved. Frames without a reliable pose are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nrtool.config import Config, option

#: Reason codes, stored per dropped frame ("" = kept), each with a human detail string.
UNREADABLE = "unreadable"  # the image file could not be read or decoded
SIZE_MISMATCH = "size-mismatch"  # not the capture's image size
NO_BOARD = "no-board"  # no ChArUco corner found
WEAK = "weak-detection"  # fewer corners than required
COLLINEAR = "collinear-corners"  # corners on one line: the pose is undetermined
POSE_FAILED = "pose-failed"  # solvePnP failed
HIGH_ERROR = "high-reprojection-error"  # pose does not explain the corners
ARM_MOVING = "arm-moving"  # azimuth step below the threshold: taken while the arm moved
REASONS: tuple[str, ...] = (UNREADABLE, SIZE_MISMATCH, NO_BOARD, WEAK, COLLINEAR, POSE_FAILED, HIGH_ERROR, ARM_MOVING)


@dataclass(frozen=True)
class FilterConfig(Config):
    """Thresholds of the frame filter (defaults: the thesis's 1.15 deg, and a 2 px pose error)."""

    WHAT = "frame filter"
    VALIDATE_ON_INIT = True

    min_azimuth_step: float = option(1.15, help="Drop frames that moved less than this azimuth (degrees) since the "
                                     "previous posed one (the arm was moving).")
    max_reprojection_error: float = option(2.0, help="Drop frames whose board reprojects worse than this RMS (pixels).")
    min_corners: int = option(6, help="Drop frames with fewer ChArUco corners.")

    def checks(self) -> dict[str, bool]:
        return {"min_azimuth_step": self.min_azimuth_step >= 0, "max_reprojection_error": self.max_reprojection_error > 0,
                "min_corners": self.min_corners >= 4}


def azimuth_steps(azimuth: np.ndarray, posed: np.ndarray) -> np.ndarray:
    """|azimuth - azimuth of the previous posed frame| wrapped to [0, 180] degrees; NaN for frames
    without a pose and for the first posed frame (nothing to compare with)."""
    steps = np.full(len(azimuth), np.nan)
    previous = None
    for i in np.flatnonzero(posed):
        if previous is not None:
            delta = (azimuth[i] - azimuth[previous] + 180.0) % 360.0 - 180.0
            steps[i] = abs(delta)
        previous = i
    return steps


def filter_frames(reasons: list[str], details: list[str], reprojection_error: np.ndarray, azimuth: np.ndarray,
                  config: FilterConfig) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """Apply the pose-quality and arm-motion rules.

    ``reasons``/``details`` hold what detection and pose estimation already decided ("" = has a
    pose). Returns (kept (N,) bool, reasons, details, azimuth steps (N,)).
    """
    reasons, details = list(reasons), list(details)
    for i, error in enumerate(reprojection_error):
        if not reasons[i] and not error <= config.max_reprojection_error:
            reasons[i] = HIGH_ERROR
            details[i] = f"reprojection error {error:.2f} px > {config.max_reprojection_error:g} px"
    # The azimuth step is measured against the previous *reliably posed* frame, moving or not:
    # a run of descent frames all sit at one azimuth, so each differs little from the last.
    posed = np.array([not r for r in reasons], dtype=bool)
    steps = azimuth_steps(azimuth, posed)
    for i in np.flatnonzero(posed):
        if np.isfinite(steps[i]) and steps[i] < config.min_azimuth_step:
            reasons[i] = ARM_MOVING
            details[i] = f"azimuth step {steps[i]:.3f} deg < {config.min_azimuth_step:g} deg (arm moving)"
    kept = np.array([not r for r in reasons], dtype=bool)
    return kept, reasons, details, steps


def reason_counts(reasons: list[str]) -> dict[str, int]:
    """Dropped frames per reason code (only the reasons that occur)."""
    return {code: reasons.count(code) for code in REASONS if code in reasons}
